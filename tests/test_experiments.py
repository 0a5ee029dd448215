"""The experiment pipeline end to end on real GLUE, in its fast variant (tiny slices and models)."""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "experiments"))

import declarations  # noqa: E402  (experiments/declarations.py)
import run as experiments  # noqa: E402  (experiments/run.py)
import tables  # noqa: E402  (experiments/tables.py)
from beexnp.sweep import choose  # noqa: E402

GLUE_DIR = os.environ.get("GLUE_DIR")
pytestmark = [pytest.mark.glue, pytest.mark.skipif(
    not GLUE_DIR or not (Path(GLUE_DIR) / "SST-2").is_dir(), reason="needs GLUE_DIR with SST-2 (CI sets it)")]


def test_fast_pipeline_writes_records_and_tables(tmp_path):
    out = tmp_path / "results"
    assert experiments.main(["--fast", "--only", "sst2-beexformer-seed0", "sst2-full_precision-seed0",
                             "rte-beexformer-seed0", "stsb-beexformer-seed0", "qqp-beexformer-seed0",
                             "--results", str(out)]) == 0
    record = json.loads((out / "sst2-beexformer-seed0.json").read_text())
    m = record["metric"]
    assert m == "accuracy" and 0 <= record["dev_full_depth"][m] <= 1
    assert record["early_exit"]["criterion"] == "fractional" and record["early_exit"]["delta"] is not None
    assert 0 <= record["flops"]["cut"] < 1 and record["flops"]["early_exit"] <= record["flops"]["full"]
    assert record["size_ratio"] > 1 and record["packed_bytes"] < record["twin_bytes"]
    assert sum(record["early_exit"]["exit_histogram"]) == 100                  # the fast dev slice
    assert json.loads((out / "stsb-beexformer-seed0.json").read_text())["metric"] == "pearson"
    skipped = json.loads((out / "skipped.json").read_text())
    if not (Path(GLUE_DIR) / "QQP").is_dir():
        assert "qqp-beexformer-seed0" in skipped
    assert tables.main(["--results", str(out)]) == 0
    text = (out / "TABLES.md").read_text()
    assert "| sst2 | accuracy |" in text and "not trained here" in text
    assert "](accuracy_flops.png)" in text and (out / "accuracy_flops.png").stat().st_size > 10_000
    assert tables.accuracy_flops_figure(tables.load_records(out), tmp_path / "f.png") == ["sst2", "stsb", "rte"]
    # a second call finds the records and trains nothing
    assert experiments.main(["--fast", "--only", "sst2-beexformer-seed0", "--results", str(out)]) == 0


def test_fast_honest_groups_choose_everything_on_the_heldout_rows(tmp_path):
    out = tmp_path / "results"
    args = ["--fast", "--tasks", "sst2", "--seeds", "0", "--results", str(out)]
    assert experiments.main(["--only", "depth", *args]) == 0                   # its grid is not there yet: it waits
    assert "waits for 6 run(s) of group 'grid'" in json.loads((out / "skipped.json").read_text())["sst2-blocks2-seed0"]
    assert experiments.main(["--only", "distill", *args]) == 0                 # nor its teacher
    assert "waits for" in json.loads((out / "skipped.json").read_text())["sst2-distilled-seed0"]
    assert experiments.main(["--only", "grid", "twin", "depth", "distill", *args]) == 0
    records = experiments.read_records(out)
    grid = [r for r in records.values() if r["group"] == "grid"]
    assert len(grid) == 6 and all(r["selection"]["split"] == "heldout" for r in grid)
    for r in grid:                                                             # delta chosen on held-out, dev reported
        picked = choose(r["selection"]["sweep"])
        assert r["early_exit"]["delta"] == picked["threshold"]
        assert r["matched"]["budget"] == picked["mean_flops"]
    stored = json.loads((out / "heldout" / "sst2.json").read_text())
    assert (stored["n_rows"], len(stored["rows"]), stored["seed"], stored["unit"]) == (300, 29, 0, "sentences")
    scores = {r["point"]: r["selection"]["score"] for r in grid if r["variant"] == "beexformer"}
    point = max(scores, key=lambda p: (scores[p], p))
    depth = records["sst2-blocks12-seed0"]
    assert depth["chosen_point"] == point and depth["model_config"]["blocks"] == 12
    chosen = next(r for r in grid if r["variant"] == "beexformer" and r["point"] == point)
    assert depth["train_config"]["lr"] == chosen["train_config"]["lr"]
    assert depth["model_config"]["dropout"] == chosen["model_config"]["dropout"]
    twin = records["sst2-twin-seed0"]                                          # the twin runs at the chosen point
    assert twin["chosen_point"] == point and twin["model_config"]["binarize"] is False
    assert twin["train_config"]["lr"] == chosen["train_config"]["lr"]
    teacher = records["sst2-distilled-seed0"]["train_config"]["teacher"]
    assert teacher == "runs/sst2-twin-seed0/best"                              # relative to the records folder
    # seed 1 runs the chosen point only; the choice stays seed 0's, whatever seed 1 scores
    assert experiments.main(["--only", "grid", "--fast", "--tasks", "sst2", "--seeds", "1", "--results", str(out)]) == 0
    seed1 = [r for r in experiments.read_records(out).values() if r["group"] == "grid" and r["seed"] == 1]
    assert [r["point"] for r in seed1] == [point]
    reported = tables.reported(list(experiments.read_records(out).values()), "grid", "beexformer", "sst2")
    assert [(r["point"], r["seed"]) for r in reported] == [(point, 0), (point, 1)]
    # a seed-1 student waits for the seed-1 twin, its teacher
    assert experiments.main(["--only", "sst2-distilled-seed1", "--fast", "--results", str(out)]) == 0
    skipped = json.loads((out / "skipped.json").read_text())
    assert skipped["sst2-distilled-seed1"] == "waits for its teacher sst2-twin-seed1"
    assert tables.main(["--results", str(out)]) == 0
    text = (out / "TABLES.md").read_text()
    assert "### Every choice on the held-out slice" in text and "| sst2 | blocks12 |" in text
    assert f"| sst2 | BEExformer | {point} |" in text


def test_jobs_run_side_by_side_with_one_blas_thread_and_resume(tmp_path, capsys):
    out = tmp_path / "results"
    names = ["wnli-beexformer-seed0", "rte-beexformer-seed0", "wnli-full_precision-seed0"]
    assert experiments.main(["--fast", "--jobs", "2", "--only", *names, "--results", str(out)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert len(lines) == 3 and lines[-1].startswith("[3 done, 0 running, 0 waiting, 0 to start, 0 failed;")
    assert all(json.loads((out / f"{n}.json").read_text())["name"] == n for n in names)
    log = (out / "logs" / "rte-beexformer-seed0.log").read_text()
    assert "rte-beexformer-seed0: accuracy full depth" in log
    assert experiments.ONE_THREAD == {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    assert experiments.main(["--fast", "--jobs", "2", "--only", *names, "--results", str(out)]) == 0
    assert "[" not in capsys.readouterr().out                                   # all done: nothing started


@pytest.mark.parametrize("own", [None, "3"])
def test_a_campaign_started_as_a_script_has_one_blas_thread_unless_you_set_one(own):
    """``python experiments/run.py`` sets one BLAS thread before numpy loads (so ``--jobs 1`` scores as the
    one-thread subprocesses of ``--jobs 2`` do); a thread count set in the environment is kept."""
    env = {k: v for k, v in os.environ.items() if k not in experiments.ONE_THREAD}
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "experiments")]),   # as `python run.py` has it
               **({"OPENBLAS_NUM_THREADS": own} if own else {}))
    probe = ("import os, runpy, sys\n"
             "assert 'numpy' not in sys.modules\n"
             "sys.argv = ['run.py', '--help']\n"
             "try:\n    runpy.run_path(%r, run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "print([os.environ.get(k) for k in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS')])\n"
             "import ctypes, glob, numpy\n"           # numpy's own OpenBLAS, where its wheel has one: its threads
             "libs = glob.glob(os.path.join(os.path.dirname(numpy.__file__), os.pardir, 'numpy.libs', '*openblas*'))\n"
             "get = getattr(ctypes.CDLL(libs[0]), 'scipy_openblas_get_num_threads64_', None) if libs else None\n"
             "print(get() if get else None)"
             % str(ROOT / "experiments" / "run.py"))
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-2] == str(["1", own or "1", "1"])
    if not own:                                          # numpy loaded its BLAS after the thread count was set
        assert out.stdout.splitlines()[-1] in ("1", "None")


def test_a_record_of_the_replaced_slice_is_set_aside_and_run_again(tmp_path):
    out = tmp_path / "results"
    runs = list(declarations.expand(dict(group="grid", tasks=["cola"], variants={"beexformer": {}},
                                        train={"select_on": "heldout"})))
    old = dict(name=runs[0]["name"], task="cola", selection=dict(split="heldout", score=0.1))   # no unit: rows
    out.mkdir()
    (out / f"{old['name']}.json").write_text(json.dumps(old))
    (out / "runs" / old["name"] / "last").mkdir(parents=True)
    status, _ = experiments.prepare(runs[0], runs, out, GLUE_DIR, {old["name"]: old})
    assert status == "ready"
    assert json.loads((out / "old-slices" / "rows" / f"{old['name']}.json").read_text()) == old
    assert (out / "old-slices" / "rows" / "runs" / old["name"] / "last").is_dir()
    assert not (out / "runs" / old["name"]).exists()
    current = dict(old, selection=dict(old["selection"], unit="near-duplicate groups"))
    (out / f"{old['name']}.json").write_text(json.dumps(current))
    assert experiments.prepare(runs[0], runs, out, GLUE_DIR, {old["name"]: current})[0] == "done"


def test_the_campaign_estimate_is_the_total_over_jobs_or_the_longest_chain():
    runs = [dict(name=n, teacher=t, from_best=f, point=p, seed=s) for n, t, f, p, s in
            [("a", None, None, "x", 0), ("b", None, None, "y", 0), ("c", None, {"g": 1}, "", 0),
             ("d", {"g": 1}, None, "", 0), ("e", None, None, "x", 1)]]
    records = {n: dict(run_seconds=t) for n, t in zip("abcde", (10, 30, 5, 7, 2))}
    assert experiments.campaign_seconds(runs, records, 1) == 54                           # one at a time
    assert experiments.campaign_seconds(runs, records, 2) == 30 + 5 + 7                   # b, then c or e, then d


@settings(max_examples=40, deadline=None)
@given(scores=st.lists(st.floats(0, 1), min_size=6, max_size=6),
       current=st.lists(st.booleans(), min_size=6, max_size=6),
       old_scores=st.lists(st.floats(0, 1), min_size=6, max_size=6))
def test_no_choice_reads_a_record_of_a_replaced_slice(scores, current, old_scores):
    """Seed 1 waits while any seed-0 point has only a record of the replaced slice (not yet set aside), and once
    all are current it runs exactly the point the current records choose, whatever the old ones scored."""
    spec = dict(group="grid", tasks=["cola"], variants={"beexformer": {}}, seeds=[0, 1],
                grid={"train.lr": [1e-3, 2e-3, 3e-3], "model.dropout": [0.1, 0.3]}, train={"select_on": "heldout"})
    runs = list(declarations.expand(spec))
    grid = [r for r in runs if r["seed"] == 0]
    records = {r["name"]: dict(name=r["name"], task="cola",
                               selection=dict(split="heldout", score=s, unit="near-duplicate groups") if now
                               else dict(split="heldout", score=o))                  # no unit: single rows
               for r, s, o, now in zip(grid, scores, old_scores, current)}
    best = max((r["point"] for r in grid), key=lambda p: (scores[[g["point"] for g in grid].index(p)], p))
    for run in (r for r in runs if r["seed"] == 1):
        if not all(current):
            with pytest.raises(LookupError, match="waits for"):
                experiments.resolve(run, runs, records, Path("unused"))
        elif run["point"] == best:
            assert experiments.resolve(run, runs, records, Path("unused"))["point"] == best
        else:
            with pytest.raises(experiments.NotChosen):
                experiments.resolve(run, runs, records, Path("unused"))


def test_one_serial_call_runs_a_grid_and_the_pretrained_and_bpe_runs_at_its_point(tmp_path):
    out = tmp_path / "results"
    assert experiments.main(["--fast", "--only", "grid", "pretrain", "bpe", "--tasks", "mrpc", "--seeds", "0",
                             "--results", str(out)]) == 0
    records = experiments.read_records(out)
    declared = declarations.load_runs(experiments.HERE / "runs.json")
    point = experiments.chosen_point(declared, records, "grid", "beexformer", "mrpc")[0]
    pretrained, bpe = records["mrpc-pretrained-seed0"], records["mrpc-bpe-seed0"]
    assert pretrained["chosen_point"] == bpe["chosen_point"] == point
    assert (out / pretrained["pretrain"]["checkpoint"] / "checkpoint.json").is_file()
    assert pretrained["pretrain"]["epochs"] == experiments.FAST_TRAIN["epochs"]
    assert 0 <= pretrained["pretrain"]["masked_accuracy"] <= 1
    assert bpe["train_config"]["tokenizer"] == "bpe" and records["mrpc-beexformer-" + point + "-seed0"][
        "train_config"].get("tokenizer", "word") == "word"


def test_a_serial_call_runs_what_waits_for_none_first(tmp_path, monkeypatch):
    """The declared order interleaves a grid's seeds (point 1 seed 0, point 1 seed 1, point 2 seed 0, ...): run in
    that order, seed 1 would wait for a point not run yet."""
    spec = dict(group="grid", tasks=["rte"], variants={"beexformer": {}}, seeds=[0, 1], grid={"train.lr": [1e-3, 2e-3]})
    runs = list(declarations.expand(spec))
    assert [experiments.level(r) for r in runs] == [0, 1, 0, 1]
    order = []
    monkeypatch.setattr(experiments, "prepare", lambda run, *a, **k: (order.append(experiments.level(run)),
                                                                       ("not run", "-"))[1])
    experiments.run_serially(runs, runs, tmp_path, argparse.Namespace(glue_dir=None, fast=True))
    assert order == [0, 0, 1, 1]


def test_a_run_folder_trained_with_other_settings_is_refused_not_reported_under_the_new_ones(tmp_path, capsys):
    out, name = tmp_path / "results", "sst2-beexformer-seed1"
    assert experiments.main(["--fast", "--only", name, "--results", str(out)]) == 0
    first = json.loads((out / f"{name}.json").read_text())
    assert first["run_seconds"] >= first["train_seconds"]                  # every attempt's time counted
    seeds = next(s for s in json.loads((experiments.HERE / "runs.json").read_text()) if s["group"] == "seeds")
    changed = tmp_path / "runs.json"
    changed.write_text(json.dumps([dict(seeds, train=dict(seeds["train"], lr=0.005))]))
    (out / f"{name}.json").unlink()                                         # redo it, now declared with lr 0.005
    capsys.readouterr()
    assert experiments.main(["--fast", "--runs", str(changed), "--only", name, "--results", str(out)]) == 1
    said = capsys.readouterr().err.strip().splitlines()
    assert said[0].startswith(f"{name}: failed: the run folder was trained with other settings") and "lr: " \
        "checkpoint 0.001, given 0.005" in said[0]
    assert said[1:] == [f"error: 1 run(s) failed, the first: {name} ({said[0].split(': failed: ')[1]})"]
    assert not (out / f"{name}.json").exists()
    assert experiments.main(["--fast", "--only", name, "--results", str(out)]) == 0   # as trained: evaluated again
    again = json.loads((out / f"{name}.json").read_text())
    assert again["train_seconds"] == first["train_seconds"] and again["dev_full_depth"] == first["dev_full_depth"]
    assert again["run_seconds"] >= again["train_seconds"]                  # the first attempt's training counted
