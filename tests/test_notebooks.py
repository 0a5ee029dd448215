"""The notebooks: each one runs top to bottom, and each is committed clean.

Execution: every ``notebooks/*.ipynb`` (sorted) runs in a fresh kernel of *this*
interpreter with ``BEEXNP_FAST=1`` (small sizes) and ``MPLBACKEND=Agg``, from
``notebooks/`` as working directory and with this checkout first on the
``PYTHONPATH``.  Any error fails the test and shows the failing cell.

Static checks (no kernel): valid nbformat 4 with the "python3" kernel; no
outputs, execution counts or stored tracebacks (a cell tagged "keep-output"
may keep its figure); no absolute paths; no global ``np.random`` state; fast
mode read in the first code cell; a final cell that asserts what the notebook
claimed.
"""
import os
import re
import sys
from pathlib import Path

import pytest

# nbformat and nbclient are imported inside the tests: importing them (jsonschema)
# takes seconds, which every collection of the suite would otherwise pay.

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 600                     # seconds per cell, in fast mode
KERNEL = "python3"                     # resolves to sys.executable when ipykernel is installed here

FAST_LINE = re.compile(r"""FAST\s*=\s*os\.environ\.get\(\s*["']BEEXNP_FAST["']\s*\)\s*==\s*["']1["']""")
ABSOLUTE_PATH = re.compile(r"(?<![\w.~])(/work/|/tmp/|/home/|/root/|/Users/|/mnt/|/var/)")
GLOBAL_RANDOM = re.compile(r"np\.random\.(?!default_rng\b|Generator\b)\w+")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def kernel_env():
    """The environment the kernel inherits: fast mode, no display, one BLAS thread, this checkout importable."""
    path = [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    # One BLAS/OpenMP thread: on two shared cores, competing BLAS threads made fast mode 5-8x slower.
    return {"BEEXNP_FAST": "1", "MPLBACKEND": "Agg", "PYTHONPATH": os.pathsep.join(path),
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def run(nb, monkeypatch):
    """Execute ``nb`` in place in a fresh kernel, from notebooks/."""
    from nbclient import NotebookClient
    for name, value in kernel_env().items():
        monkeypatch.setenv(name, value)
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=CELL_TIMEOUT,
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()
    return nb


def code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOK_DIR}"
    for path in NOTEBOOKS:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), f"{path.name}: expected NN_name.ipynb"


def test_kernel_is_this_interpreter(monkeypatch):
    """The "python3" kernel runs sys.executable (same environment) and imports this checkout."""
    from nbformat.v4 import new_code_cell, new_notebook
    nb = new_notebook(cells=[new_code_cell("import sys, beexnp\n"
                                           "print(sys.executable)\nprint(sys.prefix)\nprint(beexnp.__file__)")])
    run(nb, monkeypatch)
    printed = "".join(out.get("text", "") for out in nb.cells[0].outputs)
    executable, prefix, package = printed.split("\n")[:3]
    assert os.path.normcase(executable) == os.path.normcase(sys.executable)
    assert os.path.normcase(prefix) == os.path.normcase(sys.prefix)
    assert Path(package).resolve().parent == ROOT / "beexnp"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, monkeypatch):
    import nbformat
    from nbclient.exceptions import CellExecutionError
    nb = nbformat.read(path, as_version=4)
    try:
        run(nb, monkeypatch)
        return
    except CellExecutionError as error:
        message = ANSI.sub("", str(error))             # the failing cell's source and its traceback
    failing = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
               and any(out.get("output_type") == "error" for out in cell.get("outputs", []))]
    where = f"cell {failing[0]} (0-based, counting markdown cells)" if failing else "a cell"
    pytest.fail(f"{path.name}: {where} failed in fast mode\n\n{message}", pytrace=False)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean(path):
    import nbformat
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata.get("kernelspec", {}).get("name") == KERNEL, "kernelspec name must be python3"
    problems = []
    for i, cell in enumerate(nb.cells):
        source = cell.source
        if ABSOLUTE_PATH.search(source):
            problems.append(f"cell {i}: absolute path {ABSOLUTE_PATH.search(source).group(0)!r}")
        if cell.cell_type != "code":
            continue
        if GLOBAL_RANDOM.search(source):
            problems.append(f"cell {i}: global NumPy random state ({GLOBAL_RANDOM.search(source).group(0)}); "
                            "use np.random.default_rng(seed)")
        outputs = cell.get("outputs", [])
        if any(out.get("output_type") == "error" for out in outputs):
            problems.append(f"cell {i}: stored traceback")
        if "keep-output" in cell.metadata.get("tags", []):
            continue
        if outputs:
            problems.append(f"cell {i}: stored outputs (clear them, or tag the cell keep-output)")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {i}: execution_count {cell.execution_count} (clear it)")
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_shape(path):
    """Fast mode read in the first code cell; the last cell asserts the lesson."""
    import nbformat
    nb = nbformat.read(path, as_version=4)
    code = code_cells(nb)
    assert code, f"{path.name}: no code cells"
    assert FAST_LINE.search(code[0].source), \
        f'{path.name}: the first code cell must set FAST = os.environ.get("BEEXNP_FAST") == "1"'
    last = nb.cells[-1]
    assert last.cell_type == "code" and re.search(r"^\s*assert\b", last.source, re.M), \
        f"{path.name}: the last cell must be a code cell of asserts (the 'check yourself' cell)"
