"""The campaign's inputs, checked in one place each: experiments/runs.json (``declarations.load_runs``) and the
run records (``records.read_records``), and the commands that read them (run.py, tables.py) answering a damaged
one with one error line, before anything runs or is written.  No GLUE data needed."""
import copy
import os
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "experiments"))

import declarations  # noqa: E402  (experiments/declarations.py)
import records  # noqa: E402  (experiments/records.py)
import run as experiments  # noqa: E402  (experiments/run.py)
import tables  # noqa: E402  (experiments/tables.py)
from beexnp.outputs import UserError  # noqa: E402

RUNS = ROOT / "experiments" / "runs.json"
SPECS = json.loads(RUNS.read_text())


def write_runs(tmp_path, specs):
    path = tmp_path / "runs.json"
    path.write_text(json.dumps(specs))
    return path


def refused(path):
    """The one-line UserError ``load_runs`` raises for the file ``path`` (the test fails if it loads)."""
    with pytest.raises(UserError) as err:
        declarations.load_runs(path)
    assert "\n" not in str(err.value) and f"(--runs {path})" in str(err.value)
    return str(err.value)


# ---- runs.json ---------------------------------------------------------------------------------------------
def test_the_declared_campaign_loads():
    runs = declarations.load_runs(RUNS)
    assert len({r["name"] for r in runs}) == len(runs) > 0


# Each damage is one kind of mistake a hand-edited runs.json holds: (name, what it does to a group spec).
DAMAGES = {
    "unknown key": lambda s: s.update(colour="red"),
    "no group": lambda s: s.pop("group"),
    "group with a slash": lambda s: s.update(group="a/b"),
    "tasks a string": lambda s: s.update(tasks=s["tasks"][0]),
    "unknown task": lambda s: s.update(tasks=["nosuchtask"]),
    "task in another spelling": lambda s: s.update(tasks=["SST-2"]),
    "task twice": lambda s: s.update(tasks=[s["tasks"][0]] * 2),
    "variants a list": lambda s: s.update(variants=list(s["variants"])),
    "no variants": lambda s: s.update(variants={}),
    "variant section typo": lambda s: s.update(variants={"v": {"modle": {"blocks": 1}}}),
    "variant name escapes": lambda s: s.update(variants={"a b/../c": {}}),
    "unknown train setting": lambda s: s.update(train=dict(s.get("train", {}), lernrate=1)),
    "negative epochs": lambda s: s.update(train=dict(s.get("train", {}), epochs=-1)),
    "lr a word": lambda s: s.update(train=dict(s.get("train", {}), lr="fast")),
    "train sets the seed": lambda s: s.update(train=dict(s.get("train", {}), seed=3)),
    "unknown model setting": lambda s: s.update(model={"colour": 1}),
    "negative blocks": lambda s: s.update(model={"blocks": -2}),
    "task_train of another task": lambda s: s.update(task_train={"mnli_nosuch": {}}),
    "seeds negative": lambda s: s.update(seeds=[-1]),
    "seeds twice": lambda s: s.update(seeds=[0, 0]),
    "seeds empty": lambda s: s.update(seeds=[]),
    "grid empty list": lambda s: s.update(grid={"train.lr": []}),
    "grid scalar": lambda s: s.update(grid={"train.lr": 0.001}),
    "grid key without section": lambda s: s.update(grid={"lr": [0.001]}),
    "grid of words": lambda s: s.update(grid={"train.tokenizer": ["bpe", "word"]}),
    "grid values alike": lambda s: s.update(grid={"train.lr": [0.001, 0.0010000001]}),
    "grid over the seed": lambda s: s.update(grid={"train.seed": [1, 2]}),
    "from_best a string": lambda s: s.update(from_best="grid"),
    "from_best undeclared": lambda s: s.update(from_best={"group": "nosuch", "variant": "x"}),
    "teacher undeclared variant": lambda s: s.update(teacher={"group": "grid", "variant": "nosuch"}),
    "from_best the group itself": lambda s: s.update(from_best={"group": s["group"], "variant": next(iter(s["variants"]))}),
    "from_best a group without a grid": lambda s: s.update(from_best={"group": "seeds", "variant": "beexformer"}),
    "from_best a grid without the task": lambda s: (s.pop("task_train", None), s.pop("task_pretrain", None),
                                                    s.update(tasks=["sst2"], from_best={"group": "width",
                                                                                        "variant": "width256"})),
    "train sets the teacher": lambda s: s.update(train=dict(s.get("train", {}), teacher="runs/x/best")),
    "grid value overflows": lambda s: s.update(grid={"train.lr": [10 ** 400]}),
    "pretrain a list": lambda s: s.update(pretrain=[]),
    "bad pretrain setting": lambda s: s.update(pretrain={"epochs": 0}),
    "task_pretrain without pretrain": lambda s: (s.pop("pretrain", None), s.update(task_pretrain={})),
}
FILE_DAMAGES = {
    "not JSON": "[{",
    "empty": "",
    "an object": '{"group": "g"}',
    "a list of numbers": "[1, 2]",
    "an empty list": "[]",
    "not UTF-8": b"\xff\xfe[",
    "a group twice": json.dumps([SPECS[0], SPECS[0]]),
}


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(DAMAGES)), st.integers(0, len(SPECS) - 1))
def test_every_kind_of_mistake_in_a_group_is_one_error_line(tmp_path_factory, damage, index):
    specs = copy.deepcopy(SPECS)
    DAMAGES[damage](specs[index])
    path = write_runs(tmp_path_factory.mktemp("runs"), specs)
    message = refused(path)
    assert damage == "no group" or specs[index]["group"] in message, message


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_each_kind_of_mistake_is_refused_on_the_grid_group(tmp_path, damage):
    """Every damage at least once, whatever the draws above: on the group the others build on."""
    specs = copy.deepcopy(SPECS)
    DAMAGES[damage](next(s for s in specs if s["group"] == "grid"))
    refused(write_runs(tmp_path, specs))


@pytest.mark.parametrize("damage", sorted(FILE_DAMAGES))
def test_a_damaged_file_is_one_error_line(tmp_path, damage):
    path = tmp_path / "runs.json"
    content = FILE_DAMAGES[damage]
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    refused(path)


def test_a_missing_file_or_a_folder_is_one_error_line(tmp_path):
    refused(tmp_path / "nosuch.json")
    refused(tmp_path)


def test_a_variant_overrides_its_tasks_setting(tmp_path):
    spec = dict(group="g", tasks=["mrpc"], variants={"a": {}, "b": {"train": {"batch_size": 16}}},
                task_train={"mrpc": {"batch_size": 32}})
    runs = {r["variant"]: r for r in declarations.load_runs(write_runs(tmp_path, [spec]))}
    assert runs["a"]["train"]["batch_size"] == 32 and runs["b"]["train"]["batch_size"] == 16


def test_two_groups_declaring_one_run_name_are_refused(tmp_path):
    twin = dict(copy.deepcopy(SPECS[1]), group="seeds_again")
    assert "is declared twice" in refused(write_runs(tmp_path, [SPECS[1], twin]))


names = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)


@settings(max_examples=40, deadline=None)
@given(tasks=st.lists(st.sampled_from(["sst2", "cola", "mrpc", "rte"]), min_size=1, max_size=3, unique=True),
       variants=st.lists(names, min_size=1, max_size=3, unique=True),
       lrs=st.lists(st.sampled_from([1e-4, 3e-4, 1e-3, 2e-3]), min_size=1, max_size=3, unique=True),
       seeds=st.lists(st.integers(0, 5), min_size=1, max_size=3, unique=True))
def test_a_sound_group_loads_into_one_run_per_task_variant_point_and_seed(tmp_path_factory, tasks, variants, lrs,
                                                                          seeds):
    """The guard refuses mistakes only: any well-formed group loads, whole."""
    spec = dict(group="g", tasks=tasks, variants={v: {} for v in variants}, grid={"train.lr": lrs}, seeds=seeds,
                train={"epochs": 2})
    runs = declarations.load_runs(write_runs(tmp_path_factory.mktemp("runs"), [spec]))
    assert len(runs) == len(tasks) * len(variants) * len(lrs) * len(seeds)


def test_without_the_guard_no_damage_is_an_error_line(tmp_path, monkeypatch):
    """The test of the test: with ``load_runs``'s checks switched off, each damage above either loads (and would
    train and write records under settings nobody meant) or crashes with a traceback, never one error line; so
    the tests above fail if the guard goes, and each damage is caught by the guard, not by accident."""
    monkeypatch.setattr(declarations, "shape_problem", lambda specs: None)
    monkeypatch.setattr(declarations, "runs_problem", lambda runs, specs: None)
    for damage, apply in DAMAGES.items():
        specs = copy.deepcopy(SPECS)
        apply(next(s for s in specs if s["group"] == "grid"))
        try:
            declarations.load_runs(write_runs(tmp_path, specs))
        except UserError as err:
            raise AssertionError(f"{damage}: refused without the guard ({err})") from None
        except Exception:
            pass


# ---- records -----------------------------------------------------------------------------------------------
def record(name="sst2-v-seed0", **kw):
    return dict(dict(name=name, group="g", task="sst2", variant="v", seed=0, fast=False, metric="accuracy",
                     dev_full_depth={"accuracy": 0.8}, run_seconds=10.0, train_seconds=9.0, size_ratio=1.5), **kw)


def write_records(folder, *rs):
    folder.mkdir(parents=True, exist_ok=True)
    for r in rs:
        (folder / f"{r['name']}.json").write_text(json.dumps(r))
    return folder


RECORD_DAMAGES = {
    "no name": lambda r: r.pop("name"), "name of another file": lambda r: r.update(name="other"),
    "unknown task": lambda r: r.update(task="nosuch"), "seed a string": lambda r: r.update(seed="0"),
    "seed negative": lambda r: r.update(seed=-1), "fast a string": lambda r: r.update(fast="no"),
    "no metric value": lambda r: r.update(dev_full_depth={}), "metric nan": lambda r: r.update(
        dev_full_depth={"accuracy": float("nan")}), "run_seconds a string": lambda r: r.update(run_seconds="5"),
    "run_seconds nan": lambda r: r.update(run_seconds=float("nan")), "run_seconds null": lambda r: r.update(
        run_seconds=None), "size_ratio a string": lambda r: r.update(size_ratio="1.5"),
    "group missing": lambda r: r.pop("group"), "variant empty": lambda r: r.update(variant=""),
}


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(RECORD_DAMAGES)), st.integers(0, 3))
def test_a_damaged_record_among_sound_ones_is_one_error_line_naming_it(tmp_path_factory, damage, position):
    folder = tmp_path_factory.mktemp("records")
    sound = [record(f"sst2-v-seed{s}", seed=s) for s in range(1, 4)]
    write_records(folder, *sound)
    assert set(records.read_records(folder)) == {r["name"] for r in sound}
    bad = record(f"cola-v-seed{position}", task="cola", seed=position)
    RECORD_DAMAGES[damage](bad)
    path = folder / f"cola-v-seed{position}.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(UserError) as err:
        records.read_records(folder)
    assert "\n" not in str(err.value) and f"({path})" in str(err.value), str(err.value)


def test_without_the_record_check_no_damage_is_an_error_line(tmp_path, monkeypatch):
    """The test of the test, for records: with ``record_problem`` switched off every damage above reads as a
    record (a row of nonsense in a table, a nan in the estimate) or crashes later, never as one error line."""
    monkeypatch.setattr(records, "record_problem", lambda record, stem: None)
    for damage, apply in RECORD_DAMAGES.items():
        bad = record()
        apply(bad)
        folder = tmp_path / damage.replace(" ", "_")
        folder.mkdir()
        (folder / "sst2-v-seed0.json").write_text(json.dumps(bad))
        try:
            records.read_records(folder)
        except UserError as err:
            raise AssertionError(f"{damage}: refused without the check ({err})") from None
        except Exception:
            pass


@pytest.mark.parametrize("content", ["", '{"name": "x"', "[1, 2]", "null", b"\xff\xfe{"])
def test_a_file_that_is_no_record_is_one_error_line(tmp_path, content):
    path = tmp_path / "x.json"
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    with pytest.raises(UserError, match=r"\(.*x\.json\)"):
        records.read_records(tmp_path)


def test_a_folder_named_like_a_record_is_one_error_line(tmp_path):
    (tmp_path / "x.json").mkdir()
    with pytest.raises(UserError, match="cannot read a record"):
        records.read_records(tmp_path)


def test_fast_and_real_records_never_mix(tmp_path):
    folder = write_records(tmp_path / "r", record("sst2-v-seed0"), record("sst2-v-seed1", seed=1, fast=True))
    with pytest.raises(UserError, match="a --fast run's record among real ones"):
        records.read_records(folder)
    only_fast = write_records(tmp_path / "f", record("sst2-v-seed1", seed=1, fast=True))
    assert records.read_records(only_fast, fast=True)
    with pytest.raises(UserError, match="a --fast run's record among real ones"):
        records.read_records(only_fast, fast=False)
    with pytest.raises(UserError, match="a real run's record among --fast ones"):
        records.read_records(write_records(tmp_path / "x", record()), fast=True)


def test_the_committed_records_are_sound():
    assert len(records.read_records(ROOT / "results" / "experiments", fast=False)) > 100


# ---- the commands: one error line, status 1, nothing written ---------------------------------------------
def test_run_py_answers_a_damaged_runs_file_or_record_with_one_line(tmp_path, capsys):
    bad = write_runs(tmp_path, [dict(SPECS[1], colour="red")])
    assert experiments.main(["--runs", str(bad), "--estimate", "1"]) == 1
    assert capsys.readouterr().err.strip().startswith("error: group seeds: unknown key 'colour'")
    folder = write_records(tmp_path / "r", record())
    (folder / "broken.json").write_text("{")
    assert experiments.main(["--results", str(folder), "--estimate", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: a damaged record") and "broken.json" in err and "\n" not in err


def test_run_py_estimate_of_a_missing_folder_is_an_error_that_makes_no_folder(tmp_path, capsys):
    assert experiments.main(["--results", str(tmp_path / "typo"), "--estimate", "1"]) == 1
    assert "no such folder" in capsys.readouterr().err and not (tmp_path / "typo").exists()
    (tmp_path / "file").write_text("x")
    assert experiments.main(["--results", str(tmp_path / "file"), "--estimate", "1"]) == 1
    assert "not a folder" in capsys.readouterr().err


def test_an_estimate_of_runs_without_any_record_says_so_instead_of_zero_hours(tmp_path, capsys):
    folder = tmp_path / "records"
    folder.mkdir()
    assert experiments.main(["--results", str(folder), "--only", "grid", "--estimate", "2"]) == 0
    out = capsys.readouterr().out
    selected = len(experiments.select(declarations.load_runs(RUNS), ["grid"], None, None))
    assert out == (f"no estimate: none of the {selected} selected runs has a record in {folder} yet (the estimate "
                   "reads their run times)\n")


def test_the_estimate_counts_at_least_a_records_training_time():
    assert experiments.run_seconds(dict(run_seconds=25.0, train_seconds=1111.0)) == 1111.0
    assert experiments.run_seconds(dict(run_seconds=30.0, train_seconds=20.0)) == 30.0


def test_tables_py_refuses_an_empty_records_folder_and_writes_nothing(tmp_path, capsys):
    readme = tmp_path / "R.md"
    readme.write_text(f"prose\n{tables.START}\nold tables\n{tables.END}\nmore prose\n")
    before = readme.read_text()
    (tmp_path / "empty").mkdir()
    assert tables.main(["--results", str(tmp_path / "empty"), "--results-readme", str(readme)]) == 1
    assert "no run records" in capsys.readouterr().err
    assert readme.read_text() == before and not (tmp_path / "empty" / "TABLES.md").exists()


def test_tables_py_checks_every_readme_before_writing_anything(tmp_path, capsys):
    folder = write_records(tmp_path / "r", record())
    good, reversed_ = tmp_path / "good.md", tmp_path / "reversed.md"
    good.write_text(f"{tables.START}\nold\n{tables.END}\n")
    reversed_.write_text(f"{tables.SUMMARY_END}\n{tables.SUMMARY_START}\n")
    assert tables.main(["--results", str(folder), "--results-readme", str(good), "--readme", str(reversed_)]) == 1
    assert "are missing (--readme" in capsys.readouterr().err
    assert good.read_text() == f"{tables.START}\nold\n{tables.END}\n" and not (folder / "TABLES.md").exists()


def test_tables_leaves_a_read_only_readme_as_it_was(tmp_path, capsys, monkeypatch):
    # the command that rewrites both READMEs: a read-only one is one error line before anything is written
    monkeypatch.setattr(tables, "load_records", lambda folder: [{"name": "a record"}])
    readme = tmp_path / "README.md"
    text = f"# r\n{tables.START}\nold\n{tables.END}\n"
    readme.write_text(text)
    readme.chmod(0o444)
    try:
        status = tables.main(["--results", str(tmp_path), "--results-readme", str(readme)])
    finally:
        readme.chmod(0o644)
    err = capsys.readouterr().err
    assert status == 1 and err == (f"error: the file is read-only (--results-readme {readme}): make it writable "
                                   "(chmod u+w) to replace it, or choose another path\n")
    assert readme.read_text() == text and sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]


# ---- a stopped parent stops its runs ----------------------------------------------------------------------
def test_stop_ends_every_child_still_running_and_waits_for_it():
    children = {"a": subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]),
                "b": subprocess.Popen([sys.executable, "-c", "pass"])}
    children["b"].wait()                                              # a run that had ended: left as it ended
    start = time.perf_counter()
    experiments.stop(children)
    assert all(child.poll() is not None for child in children.values()) and time.perf_counter() - start < 30
    assert children["a"].returncode != 0 and children["b"].returncode == 0


def test_skipped_json_keeps_the_runs_a_call_did_not_look_at_and_drops_those_that_ran(tmp_path):
    records.write_skipped(tmp_path, {"a", "b"}, {"a": "no data", "b": "waits"})
    records.write_skipped(tmp_path, {"b", "c"}, {"c": "no data"})          # b ran, c is new, a untouched
    assert records.read_skipped(tmp_path) == {"a": "no data", "c": "no data"}
    records.write_skipped(tmp_path, {"a", "c"}, {})
    assert not (tmp_path / records.SKIPPED).exists() and records.read_skipped(tmp_path) == {}


@pytest.mark.parametrize("content", ["{", "[1]", '{"a": 3}'])
def test_a_damaged_skipped_json_is_one_error_line(tmp_path, content):
    (tmp_path / records.SKIPPED).write_text(content)
    with pytest.raises(UserError, match="skipped runs"):
        records.read_skipped(tmp_path)


# ---- paths that are no records folder or no file to read ---------------------------------------------------
def test_a_checkpoint_is_no_records_folder_and_its_card_is_never_called_a_damaged_record(tmp_path, capsys):
    checkpoint = tmp_path / "runs" / "x" / "best"
    checkpoint.mkdir(parents=True)
    (checkpoint / "checkpoint.json").write_text("{}")
    with pytest.raises(UserError, match="not a records folder: it is inside the checkpoint"):
        records.read_records(checkpoint)
    assert experiments.main(["--results", str(checkpoint), "--estimate", "1"]) == 1
    assert tables.main(["--results", str(checkpoint)]) == 1
    err = capsys.readouterr().err
    assert "damaged record" not in err and err.count("inside the checkpoint") == 2
    assert (checkpoint / "checkpoint.json").read_text() == "{}" and not (checkpoint / "TABLES.md").exists()


def test_a_fifo_or_a_device_as_runs_json_or_readme_is_refused_not_read(tmp_path, capsys):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)                                                   # reading it would wait for a writer forever
    assert "the input is a FIFO" in refused(fifo)
    folder = write_records(tmp_path / "r", record())
    assert tables.main(["--results", str(folder), "--readme", os.devnull]) == 1
    assert "the input is a device, not a regular file (--readme" in capsys.readouterr().err


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_run_that_waits_is_named_with_why_serial_or_side_by_side(tmp_path, capsys, jobs):
    # every selected run waits for its grid: the campaign starts nothing, and says so run by run, --jobs 2 as
    # --jobs 1 does (side by side it used to print nothing at all and leave the why to skipped.json)
    (tmp_path / "glue").mkdir()
    out = tmp_path / "results"
    argv = ["--fast", "--jobs", jobs, "--only", "depth", "--tasks", "sst2", "--seeds", "0", "--results", str(out),
            "--glue-dir", str(tmp_path / "glue")]
    assert experiments.main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    skipped = json.loads((out / "skipped.json").read_text())
    assert sorted(skipped) == [f"sst2-blocks{n}-seed0" for n in (12, 2, 4, 8)]
    assert sorted(printed) == sorted(f"{name}: skipped, {why}" for name, why in skipped.items())


@pytest.mark.parametrize("what", ["train", "pretrain"])
def test_an_interrupted_campaign_run_says_to_run_the_campaign_again_and_resumes(tmp_path, glue_dir, capsys,
                                                                                 monkeypatch, what):
    # Ctrl-C inside a campaign's run (its pretraining, or its training) names the campaign's command as the way on:
    # `python -m beexnp train --resume` would finish the training and write no record
    from beexnp.pretrain import Pretrainer
    from beexnp.train import Trainer
    specs = [dict(group="study", tasks=["sst2"], variants={"plain": {}}, seeds=[0], train={"epochs": 1},
                  **({"pretrain": {"epochs": 1}} if what == "pretrain" else {}))]
    argv = ["--fast", "--runs", str(write_runs(tmp_path, specs)), "--results", str(tmp_path / "out"),
            "--glue-dir", str(glue_dir)]
    kind = Pretrainer if what == "pretrain" else Trainer
    real = kind.train_step

    def step(self, *args):
        loss = real(self, *args)
        if type(self) is kind and self.state["step"] == 2:
            signal.raise_signal(signal.SIGINT)                               # as a user's Ctrl-C, mid-step
        return loss
    monkeypatch.setattr(kind, "train_step", step)
    assert experiments.main(argv) == 130
    err = capsys.readouterr().err
    assert "interrupted at step 3: saved " in err and f"continue with: {experiments.RESUME_HINT}\n" in err
    assert "python -m beexnp" not in err
    monkeypatch.setattr(kind, "train_step", real)
    assert experiments.main(argv) == 0                                   # run again: resumed, and its record written
    assert json.loads((tmp_path / "out" / "sst2-plain-seed0.json").read_text())["name"] == "sst2-plain-seed0"
