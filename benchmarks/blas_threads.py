"""--threads N for the benchmark scripts: set the BLAS thread count before NumPy loads.

BLAS fixes its thread count when NumPy is imported, so the flag is read from
sys.argv and written to the environment first:

    import blas_threads
    blas_threads.apply(sys.argv[1:])      # before `import numpy`
"""
import os

BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def threads_flag(argv):
    """The value of --threads N / --threads=N in ``argv``, or None."""
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return None


def apply(argv):
    """Set every BLAS thread variable to the --threads value, if one is given."""
    value = threads_flag(argv)
    if value:
        for var in BLAS_THREAD_VARS:
            os.environ[var] = value
