"""The notebooks: each runs top to bottom, its exercises are graded, and each is committed rendered.

There are exactly seven, ``01_*`` to ``07_*``.  Every notebook runs in a fresh
kernel of *this* interpreter, in fast mode (``BEEXNP_FAST=1``), from
``notebooks/`` (``tools/notebook_kernel.py``), on an in-memory copy: the
committed files are never rewritten (the last test checks it).

Exercises: a cell tagged ``exercise`` defines functions whose bodies raise
``NotImplementedError``; the next cell, tagged ``grade``, calls a grader of
``notebooks/grading.py`` that prints ``GRADE: PASS | FAIL | TODO | ERROR``.

* **With the solutions**: every exercise cell is replaced by an import of its
  reference solution (``notebooks/solutions/exNN.py``) and the whole notebook
  runs: every grader must say PASS, and a figure must come out.
* **As committed, and with mistakes**: only the first code cell and the
  exercise and grade cells run, first as committed (every grader says TODO,
  nothing crashes), then with a deliberately wrong answer in each exercise
  cell (``tests/exercise_mistakes.py``): every grader must say FAIL.

No data files: 01-04 and 07 run as on a fresh clone without GLUE (a first
cell makes every implicit GLUE lookup fail, as if none were there; an explicit
folder, such as the synthetic task's, still works), and so does 06, which
then teaches its synthetic lesson and says in one line how to get SST-2.  05
trains on SST-2 and 06's second part reads it: they run with it when it is
found (``$GLUE_DIR``, ``data/glue``), else 05 is skipped.

Committed: outputs of a full-mode run (``python tools/render_notebooks.py``),
at least one figure each, no error and no machine path in them, under 2 MB;
exercises committed as stubs (their graders say TODO).
"""
import ast
import hashlib
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))
from exercise_mistakes import MISTAKES  # noqa: E402
from notebook_kernel import (MACHINE_PATH, MAX_BYTES, NOTEBOOK_DIR, execute, grades, images,  # noqa: E402
                             output_problems, text_of)

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
NUMBERED = [f"{n:02d}" for n in range(1, 8)]
NEEDS_SST2 = {"05"}                       # trains on SST-2 (06 reads it for its second part only)
COMMITTED = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in NOTEBOOKS}
SST2_HINT = "python -m beexnp download --tasks sst2"

FAST_LINE = re.compile(r"""FAST\s*=\s*os\.environ\.get\(\s*["']BEEXNP_FAST["']\s*\)\s*==\s*["']1["']""")
GLOBAL_RANDOM = re.compile(r"np\.random\.(?!default_rng\b|Generator\b)\w+")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
NO_GLUE = '''
import beexnp.glue.location as _location
def _no_glue_files(glue_dir=None, _look=_location.candidate_dirs):
    """Test harness: a fresh clone without GLUE files.  Only a folder named explicitly is looked at."""
    return _look(glue_dir) if glue_dir is not None else []
_location.candidate_dirs = _no_glue_files
'''


def read(path):
    import nbformat                        # imported here: it takes seconds (jsonschema)
    return nbformat.read(path, as_version=4)


def code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def tagged(cell, tag):
    return tag in cell.metadata.get("tags", [])


def defined_functions(source):
    """Names of the top-level functions a cell defines."""
    return [node.name for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)]


def exercises(nb):
    """[(index of the exercise cell, names of the functions it defines)]."""
    return [(i, defined_functions(cell.source)) for i, cell in enumerate(nb.cells) if tagged(cell, "exercise")]


def number(path):
    return path.name[:2]


def with_answers(nb, answer):
    """A copy of ``nb`` whose exercise cells hold ``answer(names)`` instead of the stubs."""
    import copy
    nb = copy.deepcopy(nb)
    for i, names in exercises(nb):
        nb.cells[i].source = answer(names)
    return nb


def without_glue(nb):
    """A copy of ``nb`` that starts with the NO_GLUE cell."""
    from nbformat.v4 import new_code_cell
    import copy
    nb = copy.deepcopy(nb)
    nb.cells.insert(0, new_code_cell(NO_GLUE))
    return nb


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


def run(path, nb):
    """Execute ``nb`` in fast mode; on an error fail naming the cell, its source and the traceback."""
    from nbclient.exceptions import CellExecutionError
    try:
        return execute(nb, fast=True)
    except CellExecutionError as error:
        failing = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
                   and any(out.get("output_type") == "error" for out in cell.get("outputs", []))]
        where = f"cell {failing[0]} of the run (0-based, markdown included)" if failing else "a cell"
        pytest.fail(f"{path.name}: {where} failed in fast mode\n\n{ANSI.sub('', str(error))}", pytrace=False)


# ---- the set of notebooks, and their exercises --------------------------------------------
def test_there_are_the_seven_notebooks():
    names = [path.name for path in NOTEBOOKS]
    for name in names:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", name), f"{name}: expected NN_name.ipynb"
    assert [name[:2] for name in names] == NUMBERED, f"expected notebooks 01..07, one each; found {names}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_are_stubs_with_a_grader_a_solution_and_a_mistake(path):
    import importlib
    nb = read(path)
    found = exercises(nb)
    assert 1 <= len(found) <= 3, f"{path.name}: {len(found)} exercise cells, expected 1 to 3"
    sys.path.insert(0, str(NOTEBOOK_DIR))
    try:
        solution = importlib.import_module(f"solutions.ex{number(path)}")
    finally:
        sys.path.remove(str(NOTEBOOK_DIR))
    for i, names in found:
        cell, grader = nb.cells[i], nb.cells[i + 1]
        assert names, f"{path.name} cell {i}: an exercise cell must define its functions"
        for node in ast.parse(cell.source).body:                  # only functions, each a stub
            assert isinstance(node, ast.FunctionDef), f"{path.name} cell {i}: only function definitions, please"
            last = node.body[-1]
            assert isinstance(last, ast.Raise) and ast.unparse(last.exc) == "NotImplementedError", \
                f"{path.name} cell {i}: {node.name} must end with raise NotImplementedError"
        assert tagged(grader, "grade") and re.search(rf"check_\w+\({', '.join(names)}\)", grader.source), \
            f"{path.name} cell {i + 1}: the exercise's grader, check_...({', '.join(names)}), must follow it"
        missing = [name for name in names if not callable(getattr(solution, name, None))]
        assert not missing, f"solutions/ex{number(path)}.py lacks {missing}"
        assert defined_functions(MISTAKES[names[0]]) == names, f"tests/exercise_mistakes.py: {names[0]}"


def test_kernel_is_this_interpreter():
    """The "python3" kernel runs sys.executable (same environment) and imports this checkout."""
    from nbformat.v4 import new_code_cell, new_notebook
    nb = execute(new_notebook(cells=[new_code_cell("import sys, beexnp\n"
                                                   "print(sys.executable)\nprint(sys.prefix)\nprint(beexnp.__file__)")]),
                 fast=True)
    executable, prefix, package = text_of(nb.cells[0]).split("\n")[:3]
    assert Path(executable).resolve() == Path(sys.executable).resolve()
    assert Path(prefix).resolve() == Path(sys.prefix).resolve()
    assert Path(package).resolve().parent == ROOT / "beexnp"


# ---- running them ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_with_the_solutions(path, monkeypatch):
    nb = read(path)
    solved = with_answers(nb, lambda names: f"from solutions.ex{number(path)} import {', '.join(names)}")
    if number(path) in NEEDS_SST2 or number(path) == "06":
        why = missing_sst2(monkeypatch)
        if why and number(path) in NEEDS_SST2:
            pytest.skip(f"{path.name} trains on GLUE SST-2, which was not found (set GLUE_DIR): {why}")
    else:
        solved = without_glue(solved)
    run(path, solved)
    verdicts = grades(solved)
    assert [v for v, _ in verdicts] == ["PASS"] * len(exercises(nb)), verdicts
    assert images(solved) >= 1, f"{path.name}: ran, but no cell produced a figure (an image/png output)"


def test_notebook_06_without_sst2_teaches_the_synthetic_lesson_and_says_how_to_get_sst2():
    path = next(p for p in NOTEBOOKS if number(p) == "06")
    nb = without_glue(read(path))
    run(path, nb)
    printed = [text_of(cell) for cell in code_cells(nb)]
    hints = [text for text in printed if SST2_HINT in text]
    assert len(hints) == 1 and len(hints[0].strip().splitlines()) == 1, hints
    assert images(nb) >= 3, "the synthetic lesson's figures"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_graders_say_todo_for_the_stubs_and_fail_the_mistakes(path):
    """Only the first code cell, the exercise cells and their graders: as committed, then with a mistake each."""
    from nbformat.v4 import new_code_cell, new_notebook
    nb = read(path)
    first = code_cells(nb)[0].source
    pairs = [(nb.cells[i].source, nb.cells[i + 1].source) for i, _ in exercises(nb)]
    mistaken = [(MISTAKES[names[0]], nb.cells[i + 1].source) for i, names in exercises(nb)]
    cells = [NO_GLUE, first] + [source for pair in pairs + mistaken for source in pair]
    small = new_notebook(cells=[new_code_cell(source) for source in cells], metadata=nb.metadata)
    run(path, small)
    verdicts = [v for v, _ in grades(small)]
    assert verdicts == ["TODO"] * len(pairs) + ["FAIL"] * len(pairs), grades(small)


# ---- what is committed ------------------------------------------------------------------------
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_rendered_in_full_mode(path):
    import nbformat
    nb = read(path)
    nbformat.validate(nb)
    assert nb.nbformat == 4 and nb.metadata.get("kernelspec", {}).get("name") == "python3"
    assert path.stat().st_size < MAX_BYTES, f"{path.name}: {path.stat().st_size:,} bytes (limit {MAX_BYTES:,})"
    assert nb.metadata.get("beexnp", {}).get("rendered") == "full mode", \
        f"{path.name}: not rendered in full mode; run python tools/render_notebooks.py"
    problems = output_problems(nb)
    for i, cell in enumerate(nb.cells):
        if MACHINE_PATH.search(cell.source):
            problems.append(f"cell {i}: a machine path in the source: {MACHINE_PATH.search(cell.source).group(0)!r}")
        if cell.cell_type == "code" and GLOBAL_RANDOM.search(cell.source):
            problems.append(f"cell {i}: global NumPy random state ({GLOBAL_RANDOM.search(cell.source).group(0)}); "
                            "use np.random.default_rng(seed)")
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)
    assert [v for v, _ in grades(nb)] == ["TODO"] * len(exercises(nb)), "exercises are committed as stubs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_shape(path):
    """Fast mode read in the first code cell; the last cell asserts the lesson."""
    nb = read(path)
    code = code_cells(nb)
    assert code, f"{path.name}: no code cells"
    assert FAST_LINE.search(code[0].source), \
        f'{path.name}: the first code cell must set FAST = os.environ.get("BEEXNP_FAST") == "1"'
    last = nb.cells[-1]
    assert last.cell_type == "code" and re.search(r"^\s*assert\b", last.source, re.M), \
        f"{path.name}: the last cell must be a code cell of asserts (the 'check yourself' cell)"


def test_the_run_left_the_committed_notebooks_unchanged():
    """Last in this file: every test above ran on copies."""
    now = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in NOTEBOOKS}
    assert now == COMMITTED
