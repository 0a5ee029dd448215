"""The notebooks: each one runs top to bottom, and each is committed clean.

There are exactly seven, ``01_*`` to ``07_*``.

Execution: every ``notebooks/*.ipynb`` (sorted) runs in a fresh kernel of *this*
interpreter with ``BEEXNP_FAST=1`` (small sizes) and matplotlib's inline backend
(figures become ``image/png`` outputs, no display needed), from ``notebooks/``
as working directory and with this checkout first on the ``PYTHONPATH``.  Any
error fails the test and shows the failing cell; a notebook that ran must have
produced at least one figure.  The notebooks that read GLUE SST-2 (their code
names the task ``"sst2"``) are skipped, with the places looked at, when no
SST-2 is found the way the notebooks look for it (``$GLUE_DIR``, else
``data/glue`` from ``notebooks/``, else the project's ``data/glue``); the
others need no data.

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
ABSOLUTE_PATH = re.compile(r"(?<![\w.~])/(work|tmp|home|root|Users|mnt|var)/")
GLOBAL_RANDOM = re.compile(r"np\.random\.(?!default_rng\b|Generator\b)\w+")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
READS_GLUE = re.compile(r"""["']sst2["']""")
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"   # renders PNGs headless, as a notebook server would
NUMBERED = [f"{n:02d}" for n in range(1, 8)]


def kernel_env():
    """The environment the kernel inherits: fast mode, inline figures, one BLAS thread, this checkout importable."""
    path = [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    # One BLAS/OpenMP thread: on two shared cores, competing BLAS threads made fast mode 5-8x slower.
    return {"BEEXNP_FAST": "1", "MPLBACKEND": INLINE_BACKEND, "PYTHONPATH": os.pathsep.join(path),
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


def reads_glue(path):
    """True when the notebook's code reads GLUE SST-2 (names the task "sst2")."""
    import nbformat
    return any(READS_GLUE.search(cell.source) for cell in code_cells(nbformat.read(path, as_version=4)))


def missing_sst2(monkeypatch):
    """None when the kernel (working directory notebooks/) will find SST-2's train and dev files, else why not."""
    from beexnp.glue import find_glue_dir, get_task
    task = get_task("sst2")
    monkeypatch.chdir(NOTEBOOK_DIR)                  # data/glue is looked for from where the kernel runs
    try:
        folder = find_glue_dir(task=task) / task.dir
    except FileNotFoundError as error:
        return str(error)
    absent = [name for name in ("train.tsv", "dev.tsv") if not (folder / name).is_file()]
    return f"{folder} lacks {', '.join(absent)}" if absent else None


def figure_count(nb):
    """How many image/png outputs the executed notebook holds."""
    return sum("image/png" in out.get("data", {}) for cell in code_cells(nb) for out in cell.get("outputs", []))


def test_there_are_the_seven_notebooks():
    names = [path.name for path in NOTEBOOKS]
    for name in names:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", name), f"{name}: expected NN_name.ipynb"
    assert [name[:2] for name in names] == NUMBERED, f"expected notebooks 01..07, one each; found {names}"


def test_the_first_two_notebooks_need_no_data():
    """01 and 02 teach single layers on random inputs: they must run without GLUE."""
    assert [reads_glue(path) for path in NOTEBOOKS[:2]] == [False, False]


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


def fail_at_cell(path, nb, error):
    """Fail the test naming the cell that raised, with its source and traceback."""
    message = ANSI.sub("", str(error))
    failing = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
               and any(out.get("output_type") == "error" for out in cell.get("outputs", []))]
    where = f"cell {failing[0]} (0-based, counting markdown cells)" if failing else "a cell"
    pytest.fail(f"{path.name}: {where} failed in fast mode\n\n{message}", pytrace=False)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, monkeypatch):
    import nbformat
    from nbclient.exceptions import CellExecutionError
    nb = nbformat.read(path, as_version=4)
    if reads_glue(path) and (why := missing_sst2(monkeypatch)):
        pytest.skip(f"{path.name} reads GLUE SST-2, which was not found (set GLUE_DIR): {why}")
    try:
        run(nb, monkeypatch)
    except CellExecutionError as error:
        fail_at_cell(path, nb, error)
    assert figure_count(nb) >= 1, f"{path.name}: ran, but no cell produced a figure (an image/png output)"


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
