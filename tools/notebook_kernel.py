"""Run a notebook in a fresh kernel of this interpreter: what the tests and the renderer both do.

The kernel starts in ``notebooks/`` (so ``import grading`` and ``models/...``
resolve as they do for a learner), with this checkout first on the
``PYTHONPATH``, matplotlib's inline backend (figures become ``image/png``
outputs, no display needed), one thread for every BLAS and OpenMP library
(OMP, OpenBLAS, MKL: the same sums in the same order on every run, and on two
shared cores competing BLAS threads made fast mode 5-8x slower), Python's
string hashing seeded (``PYTHONHASHSEED=0``: set and dict orders repeat), no
progress bars, and ``BEEXNP_FAST=1`` or not.  The notebooks seed every random
number themselves (``np.random.default_rng(seed)``; tests/test_notebooks.py
refuses NumPy's global random state), so a rerun prints the same numbers.
"""
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
KERNEL = "python3"                     # resolves to sys.executable when ipykernel is installed here
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
GRADE = re.compile(r"^GRADE: (PASS|FAIL|TODO|ERROR)  (.+)$", re.M)      # a grader's verdict line
MACHINE_PATH = re.compile(r"(?<![\w.~])/(work|tmp|home|root|Users|mnt|var|usr|opt)/")   # no such path in a tracked file
MAX_BYTES = 2_000_000                  # a committed notebook, outputs included
WIDGET = "application/vnd.jupyter.widget-view+json"    # a live progress bar: plain viewers show "0/1053 [00:00<?]"
NUMBER = re.compile(r"[-+]?\d[\d,]*\.?\d*(?:e[-+]?\d+)?")
TIMED = re.compile(r"\d\s?(?:s|ms|seconds?|minutes?)\b|time|wall-clock|measured|slower|faster|/s\b", re.I)   # a line that reports a time


def kernel_env(fast):
    """The variables the kernel inherits (None: removed)."""
    path = [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(ROOT)]
    return {"BEEXNP_FAST": "1" if fast else None, "MPLBACKEND": INLINE_BACKEND, "PYTHONPATH": os.pathsep.join(path),
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0",
            "TQDM_DISABLE": "1"}


def set_environ(values):
    """Set (or, for None, remove) environment variables; returns their previous values."""
    previous = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    return previous


def execute(nb, fast, timeout=600):
    """Execute ``nb`` in place (its outputs filled in) in a fresh kernel; raises CellExecutionError on an error."""
    from nbclient import NotebookClient                # imported here: it takes seconds (jsonschema)
    previous = set_environ(kernel_env(fast))           # the kernel inherits this process's environment
    try:
        NotebookClient(nb, kernel_name=KERNEL, timeout=timeout, record_timing=False,
                       resources={"metadata": {"path": str(NOTEBOOK_DIR)}}).execute()
    finally:
        set_environ(previous)
    return nb


def text_of(cell):
    """Everything a code cell printed (streams and text/plain results), as one string."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif "text/plain" in out.get("data", {}):
            parts.append(out["data"]["text/plain"])
    return "".join(parts)


def grades(nb):
    """[(verdict, exercise)] of every grader line the executed notebook printed, in order."""
    return [m.groups() for cell in nb.cells if cell.cell_type == "code" for m in GRADE.finditer(text_of(cell))]


def images(nb):
    """How many image/png outputs the notebook holds."""
    return sum("image/png" in out.get("data", {}) for cell in nb.cells if cell.cell_type == "code"
               for out in cell.get("outputs", []))


def output_problems(nb):
    """What is wrong with an executed notebook's outputs, one line each ([] when nothing)."""
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("execution_count") is None:
            problems.append(f"cell {i}: not executed")
        if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
            problems.append(f"cell {i}: an error in the outputs")
        if any(WIDGET in out.get("data", {}) for out in cell.get("outputs", [])):
            problems.append(f"cell {i}: a widget output (a progress bar a plain viewer shows at 0%); "
                            "print progress as text")
        if MACHINE_PATH.search(text_of(cell)):
            problems.append(f"cell {i}: a machine path in the outputs: {MACHINE_PATH.search(text_of(cell)).group(0)!r}")
    if images(nb) == 0:
        problems.append("no figure (an image/png output)")
    return problems


def printed_numbers(nb):
    """[(cell index, [numbers])]: every number each code cell printed, lines that report a time left out
    (a rerun on the same machine repeats everything else, tests/test_notebooks.py checks)."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            lines = [line for line in text_of(cell).splitlines() if not TIMED.search(line)]
            found.append((i, NUMBER.findall("\n".join(lines))))
    return found
