"""Render the notebooks with the outputs of a full (not fast) run: what the repository shows.

    python tools/render_notebooks.py              every notebook, rewritten in place
    python tools/render_notebooks.py 05 06        only these
    python tools/render_notebooks.py --fast       run them in fast mode and print the times; write nothing

Full mode needs SST-2 (``GLUE_DIR``, or ``python -m beexnp download --tasks
sst2``): notebook 5 trains on it and notebook 6's second part reads it, and
the committed notebooks must show everything, so the renderer refuses to run
without it.  Each notebook runs in a fresh kernel from ``notebooks/`` with one
BLAS thread and no progress bars (``tools/notebook_kernel.py``); the exercises
run as committed (stubs: their graders print TODO).  Before a file is
written its outputs are checked (every cell ran, no error, a figure, no
machine path, under 2 MB), and the run time goes into its metadata
(``beexnp.seconds``).  ``tests/test_notebooks.py`` checks the committed files
the same way; it never rewrites them.
"""
import argparse
import sys
import time

from notebook_kernel import MAX_BYTES, NOTEBOOK_DIR, ROOT, execute, output_problems


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Run the notebooks and write them back with their outputs "
                                                 "(full mode), or time them in fast mode.")
    parser.add_argument("notebooks", nargs="*", metavar="NN", help="the notebooks' numbers (default: all)")
    parser.add_argument("--fast", action="store_true", help="run in fast mode and print the times; write nothing")
    return parser.parse_args(argv)


def main(argv):
    import nbformat
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))                      # this checkout's beexnp, as the kernels get it
    from beexnp.glue import find_glue_dir
    fast, chosen = args.fast, args.notebooks
    paths = [p for p in sorted(NOTEBOOK_DIR.glob("*.ipynb")) if not chosen or p.name[:2] in chosen]
    if not fast:
        try:
            find_glue_dir(task="sst2")
        except FileNotFoundError as error:
            raise SystemExit(f"full mode needs SST-2 (notebooks 5 and 6):\n{error}")
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        execute(nb, fast=fast, timeout=1800)
        seconds = time.perf_counter() - start
        problems = output_problems(nb)
        nb.metadata["beexnp"] = {"rendered": "fast mode" if fast else "full mode", "seconds": round(seconds)}
        size = len(nbformat.writes(nb).encode())
        if size >= MAX_BYTES:
            problems.append(f"{size:,} bytes (limit {MAX_BYTES:,})")
        print(f"{path.name}: {seconds:.0f} s in {'fast' if fast else 'full'} mode, {size:,} bytes"
              + ("".join(f"\n  problem: {p}" for p in problems)), flush=True)
        if problems:
            raise SystemExit(f"{path.name} not written: fix the problems above")
        if not fast:
            nbformat.write(nb, path)


if __name__ == "__main__":
    main(sys.argv[1:])
