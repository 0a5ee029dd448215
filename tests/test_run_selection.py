"""experiments/run.py's selection (--only, --tasks, --seeds) and counts (--jobs, --estimate): what a command line
selects, or one error line; no GLUE data needed."""
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "experiments"))

import declarations  # noqa: E402  (experiments/declarations.py)
import run as experiments  # noqa: E402  (experiments/run.py)
from beexnp.glue import get_task  # noqa: E402


DECLARED = declarations.load_runs(ROOT / "experiments" / "runs.json")
GROUPS, TASKS = sorted({r["group"] for r in DECLARED}), sorted({r["task"] for r in DECLARED})
SPELLED = sorted(get_task(t).dir for t in TASKS)             # SST-2, CoLA, ...: folder names, also accepted


def spelled(name):
    """The task ``name`` means to the package (``get_task``, as the CLI's --task), else ``name``."""
    try:
        return get_task(name).name
    except ValueError:
        return name
names = st.one_of(st.sampled_from(GROUPS), st.sampled_from([r["name"] for r in DECLARED]), st.text(min_size=1))


def matches(run, only, tasks, seeds):
    """What --only, --tasks and --seeds mean for one run (the oracle of the test below)."""
    tasks = tasks and [spelled(t) for t in tasks]
    return ((not only or run["group"] in only or run["name"] in only) and (not tasks or run["task"] in tasks)
            and (seeds is None or run["seed"] in seeds))


@settings(max_examples=200, deadline=None)
@given(only=st.none() | st.lists(names, max_size=3),
       tasks=st.none() | st.lists(st.sampled_from(TASKS) | st.sampled_from(SPELLED) | st.text(min_size=1),
                                  max_size=3),
       seeds=st.none() | st.lists(st.integers(-2, 9), max_size=3))
def test_a_selection_is_the_runs_it_names_or_one_line_saying_why_not(only, tasks, seeds):
    unknown = sorted(n for n in only or () if n not in GROUPS and all(r["name"] != n for r in DECLARED))
    unknown_tasks = sorted(t for t in tasks or () if spelled(t) not in TASKS)
    wanted = [r for r in DECLARED if matches(r, only, tasks, seeds)]
    try:
        selected = experiments.select(DECLARED, only, tasks, seeds)
    except ValueError as err:
        why = str(err)
        assert "\n" not in why
        if unknown:                                                     # the first unknown name is the one named
            assert why.startswith(f"--only {unknown[0]!r}: no such group or run")
        elif unknown_tasks:
            assert why.startswith(f"--tasks {unknown_tasks[0]!r}: no such task")
        else:                                                           # every name known, no run has all three
            assert why.startswith("no declared run matches") and not wanted
        return
    assert not unknown and not unknown_tasks and selected == wanted and selected


@pytest.mark.parametrize("argv", [["--jobs", "0"], ["--estimate", "0"], ["--only", "no_such_group"],
                                  ["--tasks", "sst3"], ["--only", "depth", "--tasks", "cola"]])
def test_a_bad_selection_or_count_is_one_error_line_and_creates_nothing(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        experiments.main([*argv, "--results", str(tmp_path / "made")])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and not (tmp_path / "made").exists()
    assert [line for line in err if "error:" in line] == err[-1:]       # argparse's usage, then one error line
