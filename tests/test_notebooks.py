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
then teaches its synthetic lesson and says in one line how to get SST-2; so
does 05, whose first part and exercise need no data.  05 trains on SST-2 and
06's second part reads it: they run with it when it is found (``$GLUE_DIR``,
``data/glue``), else 05's full run is skipped.

Committed: outputs of a full-mode run (``python tools/render_notebooks.py``),
at least one figure each, no error, no widget and no machine path in them,
under 2 MB; exercises committed as stubs (their graders say TODO).  A full-mode
rerun prints the committed numbers (times aside): 01 and 02 here, the others
marked slow.  Every measured number in the prose is declared below with what
checks it, and notebooks/README.md's numbers are what the renderer writes.
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
                             output_problems, printed_numbers, text_of)

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


@pytest.mark.parametrize("nn, figures", [("05", 1), ("06", 3)])
def test_notebook_without_sst2_teaches_what_needs_no_data_and_says_how_to_get_sst2(nn, figures):
    """05: the loss, the toy example and the exercise; 06: the synthetic lesson; then one line each."""
    path = next(p for p in NOTEBOOKS if number(p) == nn)
    nb = without_glue(read(path))
    run(path, nb)
    printed = [text_of(cell) for cell in code_cells(nb)]
    hints = [text for text in printed if SST2_HINT in text]
    assert len(hints) == 1 and len(hints[0].strip().splitlines()) == 1, hints
    assert images(nb) >= figures, "the figures of the part that needs no data"
    assert [v for v, _ in grades(nb)] == ["TODO"] * len(exercises(nb))


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


def test_an_error_in_a_learners_cell_shows_that_cells_line():
    """In a real kernel: GRADE: ERROR quotes the learner's own line, not the NumPy line that raised."""
    from nbformat.v4 import new_code_cell, new_notebook
    path = next(p for p in NOTEBOOKS if number(p) == "06")
    nb = read(path)
    (i, _), = [(i, names) for i, names in exercises(nb) if names == ["exit_entropy"]]
    answer = "import numpy as np\n\ndef exit_entropy(z):\n    return np.concatenate([z, z], axis=5)   # mine\n"
    small = new_notebook(cells=[new_code_cell(NO_GLUE), new_code_cell(code_cells(nb)[0].source),
                                new_code_cell(answer), new_code_cell(nb.cells[i + 1].source)], metadata=nb.metadata)
    run(path, small)
    printed = text_of(small.cells[-1])
    assert "GRADE: ERROR" in printed and "at line 4 of your code (exit_entropy): " \
        "return np.concatenate([z, z], axis=5)   # mine" in printed, printed


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


# ---- the numbers a learner reads -------------------------------------------------------------
UNIT = r"%|×|x\b|times\b|seconds?\b|minutes?\b|s\b|bytes\b|MB\b|KB\b|points?\b"
MEASURED = re.compile(rf"(?<![\w.§,])(\d[\d,]*\.\d+|\d[\d,]*)(\s?(?:{UNIT}))?")
NOT_PROSE = re.compile(r"\$\$.*?\$\$|\$[^$]*\$|`[^`]*`|^#+ [^\n]*$", re.S | re.M)        # math, code, headings
REFERENCE = re.compile(r"(?i)\b(?:exercises?|notebooks?|parts?|sections?|blocks?|exits?|DESIGN)\s+\d[\d.]*|§\s*\d[\d.]*")


def committed_model_megabytes():
    return round((ROOT / "notebooks" / "models" / "sst2_small.npz").stat().st_size / 1e6, 1)


# Every measured number in a notebook's prose (a decimal, or a number with a unit; math, code and
# references such as "exercise 5.1" or "§6.2" aside), with what checks it: a callable (it must return
# True) or, for a definition or another paper's number, why it needs no check.
DECLARED = {
    "02": {"32 times": "definition: one bit in place of a 32-bit float"},
    "06": {"0.02": "the prose's example; the check cell asserts (0.02 - 0.005) / 0.02 = 0.75",
           "0.005": "the prose's example; the check cell asserts (0.02 - 0.005) / 0.02 = 0.75",
           "2.89%": "the paper's number, quoted as such"},
    "07": {"0.3 MB": lambda: committed_model_megabytes() == 0.3,
           "8 bytes": "definition: a 64-bit word",
           "32 times": "definition: one bit in place of a 32-bit float"},
}


def prose_numbers(nb, nn):
    """The measured numbers of the markdown cells, as 'number unit' strings."""
    exercise_numbers = {f"{int(nn)}.{k}" for k in range(1, 4)}
    found = set()
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            text = REFERENCE.sub(" ", NOT_PROSE.sub(" ", cell.source))
            for value, unit in MEASURED.findall(text):
                if ("." in value or unit) and value not in exercise_numbers:
                    found.add(value + unit)
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_measured_number_in_the_prose_is_declared_and_checked(path):
    nn = number(path)
    found, declared = prose_numbers(read(path), nn), DECLARED.get(nn, {})
    assert found == set(declared), (f"{path.name}: numbers in the prose not declared in DECLARED (say what checks "
                                    f"them, or print them from a cell): {sorted(found - set(declared))}; "
                                    f"declared but gone: {sorted(set(declared) - found)}")
    wrong = [claim for claim, check in declared.items() if callable(check) and not check()]
    assert not wrong, f"{path.name}: the prose says {wrong}, its check disagrees"


def test_the_prose_check_finds_a_measured_number():
    """The check above bites: the sentences this project once had are found."""
    from nbformat.v4 import new_markdown_cell, new_notebook
    nb = new_notebook(cells=[new_markdown_cell("about 3 minutes (3.5 minutes, measured), 81 to 83%, about 20 times "
                                               "smaller; exercise 5.1, DESIGN §6.2, $q_1 = 0.5$, `delta=0.1`")])
    assert prose_numbers(nb, "05") == {"3 minutes", "3.5 minutes", "83%", "20 times"}


def test_notebooks_readme_numbers_are_what_the_renderer_writes():
    """Run times (from the notebooks' metadata) and the trained models' paragraph (records and files)."""
    from render_notebooks import README, readme_text
    text = README.read_text()
    assert readme_text(text) == text, "notebooks/README.md: run python tools/render_notebooks.py --readme"
    assert "<!-- models:" in text and "<!-- end of models -->" in text


def rerun_matches(nn):
    """Re-execute the committed notebook NN in full mode and compare every printed number, times aside."""
    path = next(p for p in NOTEBOOKS if number(p) == nn)
    committed = read(path)
    again = execute(read(path), fast=False, timeout=1800)
    differ = [(i, a, b) for (i, a), (_, b) in zip(printed_numbers(again), printed_numbers(committed)) if a != b]
    assert not differ, f"{path.name}: a full-mode rerun printed other numbers than the committed ones: " + \
        "; ".join(f"cell {i}: {a[:12]} vs committed {b[:12]}" for i, a, b in differ[:3])


@pytest.mark.parametrize("nn", ["01", "02"])
def test_a_full_mode_rerun_prints_the_committed_numbers(nn):
    rerun_matches(nn)


@pytest.mark.slow
@pytest.mark.parametrize("nn", ["03", "04", "06", "07"])
def test_a_full_mode_rerun_prints_the_committed_numbers_slow(nn, monkeypatch):
    if nn == "06" and missing_sst2(monkeypatch):
        pytest.skip("notebook 6's committed outputs include its SST-2 part")
    rerun_matches(nn)


def test_the_run_left_the_committed_notebooks_unchanged():
    """Last in this file: every test above ran on copies."""
    now = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in NOTEBOOKS}
    assert now == COMMITTED
