"""The graders bite (tools/grader_mutation_check.py): every reference solution passes its grader, and
every deliberate mutation of it, and every learner-style mistake of tests/exercise_mistakes.py, fails.

In-process, about a second for the whole table.  Also: a grader's ERROR names the line of the
learner's own code, and a failed exact-match check shows one differing case (input, yours, expected).
"""
import contextlib
import io
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import grader_mutation_check as check  # noqa: E402

ROWS = check.rows()


def test_every_exercise_has_at_least_six_mutations():
    counts = {exercise: sum(m.exercise == exercise for m in check.MUTATIONS) for exercise in check.EXERCISES}
    assert all(n >= 6 for n in counts.values()), counts


@pytest.mark.parametrize("row", ROWS, ids=lambda row: f"{row[0]} {row[1]}")
def test_grader_verdict(row):
    exercise, name, expected, source = row
    got, printed = check.verdict(exercise, source, f"{exercise} {name}")
    assert got in expected, f"exercise {exercise}, {name}: the grader said {got}, expected {expected}\n{printed}"


def test_the_tool_runs_and_reports_every_row():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = check.main(["--only", "7.1"])
    assert status == 0
    assert out.getvalue().count("\n7.1 ") == sum(row[0] == "7.1" for row in ROWS)


def test_error_shows_the_line_of_the_learners_own_code():
    grading = check.grading()
    source = ("import numpy as np\n\ndef exit_entropy(z):\n    p = np.exp(z)\n"
              "    return np.concatenate([p, p], axis=7)   # the learner's bad line\n")
    cell = "<ipython-input-3-learner>"
    namespace = {}
    exec(compile(source, cell, "exec"), namespace)
    import linecache
    linecache.cache[cell] = (len(source), None, source.splitlines(True), cell)   # as IPython registers a cell
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        grading.check_exit_entropy(namespace["exit_entropy"])
    printed = out.getvalue()
    assert "GRADE: ERROR" in printed
    assert "at line 5 of your code (exit_entropy): return np.concatenate([p, p], axis=7)" in printed, printed
    assert "numpy" not in printed.split("\n")[1], printed


def test_error_in_what_the_learner_returned_shows_the_graders_use_of_it():
    grading = check.grading()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        grading.check_slfn_backward(lambda dy, H, f1, l, f2, c: dy)            # one array, not two
    assert "GRADE: ERROR" in out.getvalue() and "while the grader used what your code returned" in out.getvalue()


def test_a_failed_exact_check_shows_one_case_input_yours_expected():
    grading = check.grading()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        grading.check_xnor_dot(lambda a, w, n: 0)
    lines = [line for line in out.getvalue().splitlines() if "e.g." in line]
    assert len(lines) == 3 and all("pair" in line and "yours 0, expected" in line for line in lines), out.getvalue()
    case = grading.equal("x", np.array([1, 2, 3]), np.array([1, 5, 3]), describe=lambda i: f"input {i[0]}").case
    assert case == "at [1] (input 1): yours 2, expected 5"


def test_a_whole_layer_check_names_the_gate_that_differs():
    grading = check.grading()
    sys.path.insert(0, str(check.NOTEBOOK_DIR))
    from solutions.ex04 import slfn_backward

    def wrong_l_gate(dy, H, f1, l, f2, c):
        dH, dz = slfn_backward(dy, H, f1, l, f2, c)
        d = H.shape[-1]
        dz = dz.copy()
        dz[..., d:2 * d] *= 2                                                   # only dz_l is wrong
        return dH, dz
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        grading.check_slfn_backward(wrong_l_gate)
    wrong = [line for line in out.getvalue().splitlines() if line.endswith("WRONG")]
    gate_lines = [line for line in wrong if line.strip().startswith("dz_")]
    assert len(gate_lines) == 1 and gate_lines[0].strip().startswith("dz_l "), out.getvalue()
