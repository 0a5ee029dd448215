"""Training and the command line never lose work and never answer nonsense.

* fault injection: a training process killed with SIGKILL at random points (after steps, before a file
  of a save, between the two renames of a save) always leaves a loadable checkpoint, and resuming from
  each gives, at the end, the uninterrupted run's parameters bit for bit;
* a full disk (or an I/O error) during a save leaves the previous checkpoint as it was;
* a second run into a folder in use is refused while the first goes on;
* every bad input is one ``error:`` line, status 1, no traceback, and no existing file changed;
* Ctrl-C at any step writes ``last``; every hint names a checkpoint that exists.
"""
import dataclasses
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import beexnp.checkpoint as checkpoint
from beexnp.checkpoint import (aside, checkpoint_folder, load_model, output_lock, read_card,
                               recover_checkpoints, save_checkpoint)
from beexnp.cli import main
from beexnp.config import DATA_DERIVED, ConfigProblem, ModelConfig, TrainConfig, build_settings
from beexnp.model import BEExformer
from beexnp.pretrain import Pretrainer
from beexnp.train import RUN_FILES, Trainer, TrainingDiverged
from conftest import TINY_MODEL, sentiment_glue

ROOT = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).with_name("fault_driver.py")

# ---- a tiny task: 64 training rows, 8 steps an epoch ------------------------------------
SMALL = ["--token-dim", "8", "--position-dim", "0", "--heads", "2", "--blocks", "2", "--min-freq", "1",
         "--batch-size", "8", "--no-progress", "--save-every", "3"]


@pytest.fixture
def small_glue(tmp_path):
    return sentiment_glue(tmp_path, train=64, dev=16, seed=1)


def child_env():
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env.pop("PYTHONWARNINGS", None)
    return env


def driver(args, pause=0.0):
    """A ``python -m beexnp`` process whose saves announce themselves on stdout (tests/fault_driver.py)."""
    return subprocess.Popen([sys.executable, str(DRIVER), str(pause), *args], cwd=ROOT, env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)


def arrays(folder):
    """Every array of a checkpoint: the model's and the optimizer's."""
    card, blobs = checkpoint.read_checkpoint(folder)
    return {f"{name}/{k}": v for name in ("model.npz", "trainer.npz")
            for k, v in checkpoint.arrays_from(blobs, name, folder).items()}


def assert_same_arrays(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def kill_at(proc, target):
    """Read ``proc``'s announcements until ``target(kind, words)`` says so, then SIGKILL it.  Returns the
    event it was killed at, or None if it ended first."""
    for line in proc.stdout:
        if not line.startswith("@@ "):
            continue
        kind, *words = line[3:].split()
        if target(kind, words):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
            return kind, words
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    return None


def event_counter(kind, nth, dst=None):
    """A target: the ``nth`` event of ``kind`` (a rename: onto a name ending in ``dst``)."""
    seen = [0]

    def target(k, words):
        if k == kind and (dst is None or words[-1].endswith(dst)):
            seen[0] += 1
        return seen[0] == nth
    return target


# kinds of kill point: after a step; before a file of a save is written; before a save sets the previous
# 'last' aside (rename 1); between the two renames (before rename 2); before history.json is renamed in
KILL_POINTS = [("step", None), ("write", None), ("replace", ".last.old"), ("replace", "last"),
               ("replace", "history.json")]


EPOCHS = 12                                                   # 96 steps: more than 20 kills can use up


def resume_to_the_end(last, glue):
    """Start ``train --resume last`` to the end of the run; ``finished`` waits for it."""
    return subprocess.Popen([sys.executable, "-m", "beexnp", "train", "--resume", str(last), "--glue-dir", str(glue),
                             "--epochs", str(EPOCHS), "--patience", str(EPOCHS), "--no-progress"],
                            cwd=ROOT, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finished(proc):
    _, err = proc.communicate()
    assert proc.returncode == 0, err


def run_with_kills(tmp_path, glue, kills, seed, reference):
    """Kill a training run ``kills`` times at random points.  After each kill the newest checkpoint must
    load, and a copy of the folder resumed to the end must give ``reference``'s arrays bit for bit; the
    run itself is resumed (from that same checkpoint) until the next kill, then let it finish.
    Returns (output folder, kill events, steps of the newest checkpoint after each kill, how many kills
    left no 'last' but its aside copy: between the two renames)."""
    out = tmp_path / "killed"
    common = ["--glue-dir", str(glue), "--epochs", str(EPOCHS), "--patience", str(EPOCHS)]
    rng = np.random.default_rng(seed)
    events, steps, between, pending = [], [], 0, None
    for k in range(kills):
        kind, dst = KILL_POINTS[int(rng.integers(len(KILL_POINTS)))]
        nth = 1 if dst == "history.json" else int(rng.integers(1, 4))
        if k in (1, kills - 1):                                   # the second rename of a segment's second save
            kind, dst, nth = "replace", "last", 2
        start = ["train", "--resume", str(out / "last")] if checkpoint.has_checkpoint(out / "last") else \
            ["train", *SMALL, "--out", str(out)]
        event = kill_at(driver(start + common, pause=0.02), event_counter(kind, nth, dst))
        assert event is not None, f"kill {k}: the run ended before its kill point ({kind} #{nth})"
        events.append(event)
        between += aside(out / "last").is_dir() and not (out / "last").exists()
        if checkpoint.has_checkpoint(out / "last"):                  # the newest complete checkpoint loads
            model, card = load_model(out / "last")
            steps.append(card["state"]["step"])
            assert steps == sorted(steps), steps                    # and never goes back
            if pending:                                                # the previous kill's copy, resumed
                check_copy(*pending, reference)
            copy = tmp_path / f"copy{k}"
            shutil.copytree(out, copy)
            pending = copy, resume_to_the_end(copy / "last", glue)    # runs beside the next segment
    check_copy(*pending, reference)
    finished(resume_to_the_end(out / "last", glue))
    assert not [p.name for p in out.iterdir() if ".tmp-" in p.name or p.name.endswith(".old")]
    return out, events, steps, between


def check_copy(copy, proc, reference):
    finished(proc)
    assert_same_arrays(arrays(copy / "last"), reference)
    shutil.rmtree(copy)


def uninterrupted(tmp_path, glue):
    out = tmp_path / "whole"
    whole = subprocess.run([sys.executable, "-m", "beexnp", "train", *SMALL, "--out", str(out),
                            "--glue-dir", str(glue), "--epochs", str(EPOCHS), "--patience", str(EPOCHS)],
                           cwd=ROOT, env=child_env(), capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    return out


def test_twenty_kills_then_resume_is_bit_identical(tmp_path, small_glue):
    kills = 20
    whole = uninterrupted(tmp_path, small_glue)
    out, events, steps, between = run_with_kills(tmp_path, small_glue, kills, 20, arrays(whole / "last"))
    assert_same_arrays(arrays(out / "last"), arrays(whole / "last"))       # bit for bit, the optimizer too
    assert_same_arrays(arrays(out / "best"), arrays(whole / "best"))
    state = read_card(out / "last")["state"]
    assert state["finished"] and state["step"] == 8 * EPOCHS
    history, reference = (json.loads((o / "history.json").read_text()) for o in (out, whole))
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in history] == \
        [{k: v for k, v in r.items() if k != "seconds"} for r in reference]      # the same curves, to the bit
    in_save = [e for e in events if e[0] != "step"]
    print(f"{kills} kills: {len(in_save)} before a file or a rename of a save, {between} between its two renames; "
          f"newest checkpoint's step after each: {steps}")
    assert len(in_save) >= kills // 3 and between >= 2 and len(steps) >= kills - 2


# ---- a save that fails ---------------------------------------------------------------------
def make_trainer(glue_dir, out, **train):
    cfg = TrainConfig(**{**dict(task="sst2", epochs=2, batch_size=16, min_freq=1, lr=3e-3, warmup=0.1,
                                save_every=5), **train})
    return Trainer(cfg, TINY_MODEL, out, glue_dir=glue_dir, progress=False)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_a_failing_write_leaves_the_previous_checkpoint(glue_dir, tmp_path, monkeypatch, code):
    trainer = make_trainer(glue_dir, tmp_path / "run", max_steps=12)
    real = checkpoint.write_file
    calls = []

    def full_disk(path, write):
        calls.append(path)
        if len(calls) == 5:                                   # the second save, its second file
            raise OSError(code, os.strerror(code))
        return real(path, write)

    monkeypatch.setattr(checkpoint, "write_file", full_disk)
    with pytest.raises(OSError) as err:
        trainer.fit()
    message = str(err.value)
    assert os.strerror(code) in message and "the last good checkpoint is" in message and "(step 5)" in message
    before = arrays(tmp_path / "run" / "last")
    assert read_card(tmp_path / "run" / "last")["state"]["step"] == 5
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [".lock", "last"]   # no temporary left
    monkeypatch.setattr(checkpoint, "write_file", real)
    resumed = Trainer.resume(tmp_path / "run" / "last", glue_dir=glue_dir, progress=False)
    assert_same_arrays(before, arrays(tmp_path / "run" / "last"))
    assert resumed.state["step"] == 5


def test_a_failing_rename_puts_the_previous_checkpoint_back(tmp_path, monkeypatch):
    model = BEExformer(ModelConfig(vocab_size=9, token_dim=4, position_dim=0, heads=2, blocks=1),
                       np.random.default_rng(0))
    folder = save_checkpoint(tmp_path / "last", model, {"step": 1})
    real = os.replace
    failed = []

    def failing(src, dst):
        if Path(dst) == folder and not failed:                 # step 2, the new one into place: once
            failed.append(src)
            raise OSError(errno.EIO, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", failing)
    with pytest.raises(OSError, match="Input/output"):
        save_checkpoint(folder, model, {"step": 2})
    monkeypatch.setattr(checkpoint.os, "replace", real)
    assert read_card(folder)["step"] == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["last"]


def test_recovery_rule_between_and_after_the_two_renames(tmp_path):
    """A kill between rename 1 and 2 leaves only the aside copy: readers fall back to it, and the next run
    puts it back.  A kill during step 3 leaves a partial aside copy: ignored, then removed."""
    model = BEExformer(ModelConfig(vocab_size=9, token_dim=4, position_dim=0, heads=2, blocks=1),
                       np.random.default_rng(0))
    folder = save_checkpoint(tmp_path / "last", model, {"step": 1})
    os.replace(folder, aside(folder))                             # killed after rename 1
    assert checkpoint_folder(folder) == aside(folder) and read_card(folder)["step"] == 1
    load_model(folder)
    assert recover_checkpoints(tmp_path, RUN_FILES) == [f"restored {folder} from .last.old (a save was interrupted)"]
    assert read_card(folder)["step"] == 1 and not aside(folder).exists()
    save_checkpoint(folder, model, {"step": 2})
    aside(folder).mkdir()                                        # killed while removing the aside copy
    (aside(folder) / "model.npz").write_bytes(b"partial")
    assert read_card(folder)["step"] == 2
    recover_checkpoints(tmp_path, RUN_FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_files_get_the_users_umask(glue_dir, tmp_path, mask):
    previous = os.umask(mask)
    try:
        make_trainer(glue_dir, tmp_path / "run", epochs=1).fit()
        assert main(["export", str(tmp_path / "run" / "best"), str(tmp_path / "m.npz")]) == 0
    finally:
        os.umask(previous)
    files = [tmp_path / "m.npz", tmp_path / "run" / "history.json"] + \
        [p for name in ("best", "last") for p in (tmp_path / "run" / name).iterdir()]
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask, path
    for name in ("best", "last"):
        assert (tmp_path / "run" / name).stat().st_mode & 0o777 == 0o777 & ~mask


# ---- one run per folder -----------------------------------------------------------------
def test_a_second_run_into_a_folder_in_use_is_refused_while_the_first_goes_on(tmp_path, small_glue, capsys):
    out = tmp_path / "busy"
    first = driver(["train", *SMALL, "--out", str(out), "--glue-dir", str(small_glue), "--epochs", "3"], pause=0.05)
    for line in first.stdout:                                   # wait until it is training
        if line.startswith("@@ step 2"):
            break
    second = ["train", *SMALL, "--out", str(out), "--glue-dir", str(small_glue), "--epochs", "1"]
    assert main(second + ["--overwrite"]) == 1                  # would delete its files: refused, in use
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{out} is in use by another run (pid {first.pid}" in err
    assert main(second) == 1                                    # plain: in use, or already holds a run
    err = capsys.readouterr().err
    assert "in use by another run" in err or "already holds a run" in err
    assert first.poll() is None                                 # the first one is still writing
    rest = first.stdout.read()
    assert first.wait() == 0, first.stderr.read()
    first.stderr.close()
    first.stdout.close()
    assert "@@ step 24" in rest and read_card(out / "last")["state"]["finished"]
    assert len(json.loads((out / "history.json").read_text())) == 3


def test_output_lock_is_reentrant_in_a_process_and_released(tmp_path):
    with output_lock(tmp_path / "o"):
        with output_lock(tmp_path / "o"):
            pass
        code = "import sys; from beexnp.checkpoint import output_lock\nwith output_lock(sys.argv[1]): pass"
        other = subprocess.run([sys.executable, "-c", code, str(tmp_path / "o")], cwd=ROOT, env=child_env(),
                               capture_output=True, text=True)
        assert other.returncode == 1 and "OutputInUse" in other.stderr and f"pid {os.getpid()}" in other.stderr
    other = subprocess.run([sys.executable, "-c", code, str(tmp_path / "o")], cwd=ROOT, env=child_env(),
                           capture_output=True, text=True)
    assert other.returncode == 0, other.stderr


# ---- Ctrl-C and the hints ------------------------------------------------------------------
@pytest.mark.parametrize("where", ["step", "evaluation"])
def test_ctrl_c_before_the_first_save_writes_last(glue_dir, tmp_path, capsys, where):
    """save_every=500: nothing was saved when Ctrl-C comes; 'last' is written at the step reached (after a
    step, or at once during a dev evaluation), and resuming from it ends bit for bit where the whole run does."""
    whole = make_trainer(glue_dir, tmp_path / "whole", save_every=500)
    whole.fit()
    run = make_trainer(glue_dir, tmp_path / "run", save_every=500)
    if where == "step":
        real = run.train_step

        def step(*args):
            loss = real(*args)
            if run.state["step"] == 2:
                signal.raise_signal(signal.SIGINT)             # as a user's Ctrl-C, mid-step
            return loss
        run.train_step = step
        at = 3
    else:
        real_eval = run.evaluate

        def evaluate(encoded):
            signal.raise_signal(signal.SIGINT)
            return real_eval(encoded)
        run.evaluate = evaluate
        at = 16                                                 # the end of epoch 1 (256 rows / 16)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        run.fit()
    assert signal.getsignal(signal.SIGINT) is handler                         # the handler is given back
    err = capsys.readouterr().err
    last = tmp_path / "run" / "last"
    assert read_card(last)["state"]["step"] == at
    assert f"interrupted at step {at}: saved {last} (step {at}); continue with: python -m beexnp train " \
           f"--resume {last}" in err
    resumed = Trainer.resume(last, glue_dir=glue_dir, progress=False)
    resumed.fit()
    assert_same_arrays(arrays(last), arrays(tmp_path / "whole" / "last"))
    def curves(history):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in history]
    assert curves(resumed.history) == curves(whole.history)           # the epoch's running sums were saved too


def test_hints_name_checkpoints_that_exist(glue_dir, tmp_path, capsys):
    common = ["--glue-dir", str(glue_dir), "--min-freq", "1", "--batch-size", "16", "--no-progress",
              "--token-dim", "12", "--position-dim", "4", "--heads", "2", "--blocks", "3"]
    assert main(["train", *common, "--max-steps", "1", "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "no dev evaluation ran (stopped at step 1, before the end of epoch 1), so there is no best " \
           f"checkpoint; the model is in {tmp_path / 'a' / 'last'}" in out
    assert not (tmp_path / "a" / "best").exists() and read_card(tmp_path / "a" / "last")["state"]["step"] == 1
    # resumed into a new folder: its 'best' and history come along, so the hint's 'best' exists
    assert main(["train", "--resume", str(tmp_path / "a" / "last"), "--glue-dir", str(glue_dir), "--epochs", "2",
                 "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    assert main(["train", "--resume", str(tmp_path / "b" / "last"), "--glue-dir", str(glue_dir), "--epochs", "3",
                 "--max-steps", "40", "--out", str(tmp_path / "c"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    hint = out.strip().splitlines()[-1]
    assert f"best checkpoint: {tmp_path / 'c' / 'best'}" in hint
    assert read_card(tmp_path / "c" / "best")["state"]["epoch"] in (1, 2)
    assert [r["epoch"] for r in json.loads((tmp_path / "c" / "history.json").read_text())] == [1, 2]


def test_nan_loss_names_a_checkpoint_that_exists(glue_dir, tmp_path):
    for steps, expected in ((2, "no 'last' checkpoint was written yet"), (7, "the last good checkpoint is")):
        trainer = make_trainer(glue_dir, tmp_path / f"run{steps}", max_steps=20)
        real = trainer.objective.forward

        def poisoned(*args, trainer=trainer, real=real, steps=steps):
            loss = real(*args)
            return np.float32(np.nan) if trainer.state["step"] == steps else loss

        trainer.objective.forward = poisoned
        with pytest.raises(TrainingDiverged, match=f"loss is nan at step {steps}.*{expected}"):
            trainer.fit()
    assert read_card(tmp_path / "run7" / "last")["state"]["step"] == 5


# ---- every bad input: one line, status 1, nothing changed ------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A folder with GLUE data, a trained run, configs and broken checkpoints, for the table below."""
    root = tmp_path_factory.mktemp("world")
    sst = sentiment_glue(root, train=96, dev=24) / "SST-2"
    (sst / "test.tsv").write_text("index\tsentence\n0\ta good film\n")
    empty = root / "empty" / "SST-2"
    empty.mkdir(parents=True)
    (empty / "train.tsv").write_text("sentence\tlabel\n")
    (empty / "dev.tsv").write_text((sst / "dev.tsv").read_text())
    cfg = TrainConfig(task="sst2", epochs=1, batch_size=16, min_freq=1)
    Trainer(cfg, TINY_MODEL, root / "run", glue_dir=root / "glue", progress=False).fit()
    Pretrainer(cfg, TINY_MODEL, root / "mlm", glue_dir=root / "glue", progress=False).fit()
    (root / "packed").mkdir()
    assert main(["export", str(root / "run" / "best"), str(root / "packed" / "m.npz")]) == 0
    configs = {"epochs_str.json": {"train": {"epochs": "3"}}, "epochs_float.json": {"train": {"epochs": 2.5}},
               "heads_str.json": {"model": {"heads": "2"}}, "list.json": [1, 2],
               "section.json": {"optim": {}}, "unknown_key.json": {"model": {"depth": 3}},
               "derived.json": {"model": {"vocab_size": 50}}, "delta_nan.json": {"train": {"delta": float("nan")}},
               "calibrate.json": {"train": {"calibrate": True}}}
    for name, value in configs.items():
        (root / name).write_text(json.dumps(value))
    (root / "broken.json").write_text('{"train": {"epochs": 3')
    (root / "empty.json").write_text("")
    (root / "latin1.json").write_bytes(b'{"train": {"task": "caf\xe9"}}')
    (root / "confdir.json").mkdir()
    rows = (sst / "train.tsv").read_text().splitlines()
    for name, train in (("truncated", "\n".join(rows[:5]) + "\nonly a sentence\n"),      # a row cut short
                        ("nolabel", "sentence\n" + "\n".join(r.split("\t")[0] for r in rows[1:]) + "\n"),
                        ("garbage", rows[0] + "\n" + "\xff\xfe\x00 ok\t1\n"),
                        ("badlabel", rows[0] + "\nfine\t7\n")):
        folder = root / name / "SST-2"
        folder.mkdir(parents=True)
        (folder / "train.tsv").write_bytes(train.encode("latin-1", "surrogateescape") if name == "garbage"
                                           else train.encode())
        (folder / "dev.tsv").write_text((sst / "dev.tsv").read_text())
    for name, spoil in (("badcard", lambda f: (f / "checkpoint.json").write_text('{"format')),
                        ("badnpz", lambda f: (f / "model.npz").write_bytes(b"PK not an npz")),
                        ("nocard", lambda f: (f / "checkpoint.json").unlink())):
        folder = root / name / "last"
        folder.mkdir(parents=True)
        for path in (root / "run" / "last").iterdir():
            (folder / path.name).write_bytes(path.read_bytes())
        spoil(folder)
    model = BEExformer(ModelConfig(vocab_size=9, token_dim=4, position_dim=0, heads=2, blocks=1),
                       np.random.default_rng(0))
    save_checkpoint(root / "bare" / "last", model, {"note": "saved without task or tokenizer"})
    (root / "a_file").write_text("not a folder\n")
    (root / "adir").mkdir()
    os.mkfifo(root / "fifo")
    (root / "link_model").symlink_to(root / "run" / "best" / "model.npz")
    (root / "link_last").symlink_to(root / "run" / "last", target_is_directory=True)
    (root / "link_history").symlink_to(root / "run" / "history.json")
    (root / "readonly").mkdir()
    (root / "readonly").chmod(0o555)
    return root


def tree_hashes(root):
    """sha256 of every file under ``root`` but the lock files (which record the pid of their last holder)."""
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".lock"}


G = ["--glue-dir", "glue"]
T = ["train", *G, "--no-progress", "--min-freq", "1", "--out", "fresh"]
CK = "run/best"
BAD_INPUTS = [
    # train: configs, flags, data, folders, resume
    (T + ["--config", "epochs_str.json"], "epochs must be int, got '3' (--config epochs_str.json: train.epochs): give a JSON integer"),
    (T + ["--config", "epochs_float.json"], "epochs must be int, got 2.5"),
    (T + ["--config", "heads_str.json"], "heads must be int, got '2' (--config heads_str.json: model.heads)"),
    (T + ["--config", "list.json"], "got list (--config list.json): write {"),
    (T + ["--config", "section.json"], "unknown sections ['optim']"),
    (T + ["--config", "unknown_key.json"], "unknown model keys: depth"),
    (T + ["--config", "derived.json"], "vocab_size is set from the data (--config derived.json: model.vocab_size): remove it"),
    (T + ["--config", "delta_nan.json"], "delta must be a finite number"),
    (T + ["--config", "broken.json"], "not valid JSON: Expecting ',' delimiter at line 1 column 23 (--config broken.json)"),
    (T + ["--config", "missing.json"], "missing.json"),
    (T + ["--lr", "x"], "argument --lr: not a number: 'x'"),
    (T + ["--lr", "nan"], "argument --lr: must be a finite number, got 'nan'"),
    (T + ["--delta", "nan"], "argument --delta: must be a finite number, got 'nan'"),
    (T + ["--delta", "1.5"], "fractional criterion's threshold) must be in [0, 1), got 1.5"),
    (T + ["--delta", "-0.1"], "must be in [0, 1), got -0.1"),
    (T + ["--heads", "3"], "width d=128 is not divisible by heads=3"),
    (T + ["--task", "nosuch"], "unknown GLUE task 'nosuch'"),
    (T + ["--epochs", "0"], "epochs must be > 0"),
    (T + ["--patience", "0"], "patience must be > 0"),
    (T + ["--max-len", "2"], "max_len must be >= 3"),
    (T + ["--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
    (T + ["--nosuch-flag"], "python -m beexnp train: unrecognized arguments: --nosuch-flag (python -m beexnp train)"),
    (["export", "run/best", "out.npz", "--out", "x"], "python -m beexnp export: unrecognized arguments: --out x"),
    (T + ["--min-freq", "1000"], "no token occurs min_freq=1000 times"),
    (["train", "--glue-dir", "empty", "--out", "fresh", "--no-progress"], "the training split is empty"),
    (["train", *G, "--out", "run"], "the folder already holds a run (best, last, history.json) (--out run): "
                                    "continue it with --resume run/last"),
    (["train", *G, "--out", "a_file"], "the output folder is a file (--out a_file)"),
    (["train", *G, "--resume", "run/last", "--blocks", "2"], "blocks: checkpoint 3, given 2"),
    (["train", *G, "--resume", "run/last", "--lr", "0.5", "--seed", "3"], "lr: checkpoint 0.001, given 0.5; seed"),
    (["train", *G, "--resume", "run/last", "--full-precision"], "binarize: checkpoint True, given False"),
    (["train", *G, "--resume", "run/last", "--overwrite"], "--resume lies inside the run files of run, which "
                                                           "--overwrite deletes (--resume run/last)"),
    (["train", *G, "--resume", "nosuch/last"], "not a checkpoint: nothing there (nosuch/last)"),
    (["train", *G, "--resume", "badcard/last"], "not valid JSON: Unterminated string starting at: line 1 column 2 (char 1) (badcard/last/checkpoint.json)"),
    (["train", *G, "--resume", "nocard/last"], "not a checkpoint: the folder has no checkpoint.json (nocard/last)"),
    # evaluate
    (["evaluate", CK, *G, "--delta", "-1"], "fractional criterion's threshold) must be in [0, 1), got -1.0"),
    (["evaluate", CK, *G, "--delta", "nan"], "argument --delta: must be a finite number, got 'nan'"),
    (["evaluate", CK, *G, "--delta", "5"], "must be in [0, 1), got 5.0"),
    (["evaluate", CK, *G, "--criterion", "patience", "--delta", "-3"], "must be an integer >= 1, got -3.0"),
    (["evaluate", CK, *G, "--criterion", "patience", "--delta", "2.5"], "must be an integer >= 1, got 2.5"),
    (["evaluate", CK, *G, "--criterion", "maxprob", "--delta", "1.5"], "maxprob criterion's threshold) must be"),
    (["evaluate", CK, *G, "--criterion", "entropy", "--delta", "-0.5"], "entropy criterion's threshold) must be"),
    (["evaluate", CK, *G, "--criterion", "coinflip"], "argument --criterion: invalid choice: 'coinflip'"),
    (["evaluate", CK, *G, "--limit", "0"], "argument --limit: must be an integer >= 1, got '0'"),
    (["evaluate", CK, *G, "--batch-size", "0"], "argument --batch-size: must be an integer >= 1, got '0'"),
    (["evaluate", CK, *G, "--json", "missing/dir/out.json"],
     "missing/dir does not exist (--json missing/dir/out.json)"),
    (["evaluate", CK, *G, "--json", "adir"], "the output is a folder, not a regular file (--json adir)"),
    (["evaluate", CK, *G, "--split", "test"], "sst2 test has no labels"),
    (["evaluate", CK, *G, "--split", "nosuch"], "has no split 'nosuch'"),
    (["evaluate", "badcard/last", *G], "not valid JSON: Unterminated string starting at: line 1 column 2 (char 1) (badcard/last/checkpoint.json)"),
    (["evaluate", "badnpz/last", *G], "model.npz does not match its checksum in checkpoint.json (badnpz/last)"),
    (["evaluate", "/no/such/checkpoint", *G], "not a checkpoint: nothing there (/no/such/checkpoint)"),
    # predict, sweep, export, size, gradcheck, data
    (["predict", CK, "a good film", "a second text"], "sst2 is a single-sentence task (text_b): give one text, not two"),
    (["predict", CK, "a good film", "--delta", "nan"], "argument --delta: must be a finite number, got 'nan'"),
    (["predict", CK, "a good film", "--criterion", "patience", "--delta", "0"], "must be an integer >= 1, got 0.0"),
    (["predict", "badnpz/last", "a good film"], "model.npz does not match its checksum"),
    (["predict"], "the following arguments are required: checkpoint, text"),
    (["predict", "bare/last", "a good film"], "the card has no task or tokenizer (bare/last/checkpoint.json)"),
    (["train", *G, "--resume", "bare/last"], "the checkpoint holds no trainer state (bare/last)"),
    (["sweep", CK, *G, "--out", "a_file"], "the output folder is a file (--out a_file)"),
    (["sweep", CK, *G, "--limit", "0"], "argument --limit: must be an integer >= 1, got '0'"),
    (["export", CK, "adir"], "the output is a folder, not a regular file (OUT adir): give a file name inside it"),
    (["export", CK, "missing/dir/m.npz"], "missing/dir does not exist"),
    (["export", "nocard/last", "m.npz"], "not a checkpoint: the folder has no checkpoint.json"),
    (["size", "badcard/last"], "not valid JSON: Unterminated string starting at: line 1 column 2 (char 1) (badcard/last/checkpoint.json)"),
    (["gradcheck", "--dim", "8", "--heads", "3"], "the heads must divide the width (--heads 3, --dim 8): choose --heads among 1, 2, 4, 8"),
    (["gradcheck", "--batch", "0"], "argument --batch: must be an integer >= 1, got '0'"),
    (["data", "--task", "nosuch"], "unknown GLUE task 'nosuch'"),
    (["download", "--tasks", "cola,nosuch", "--dir", "glue_new"], "unknown GLUE task 'nosuch'"),
    (["nosuch-command"], "invalid choice: 'nosuch-command'"),
]


@pytest.mark.parametrize("argv, message", BAD_INPUTS, ids=[" ".join(a)[:60] for a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_status_1_and_changes_nothing(world, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(world)
    before = tree_hashes(world)
    status = main(argv)
    out, err = capsys.readouterr()
    assert status == 1, (out, err)
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert message in err, err
    assert "Traceback" not in err + out
    after = tree_hashes(world)
    assert {p: h for p, h in after.items() if p in before} == before         # no existing file changed
    assert not [p for p in after if p not in before and p.parent == world]   # and nothing new written beside them


def test_the_table_has_enough_cases():
    assert len(BAD_INPUTS) >= 35


# ---- the cases the table above did not list: writers, sizes, order, messages -----------------------------
NOWHERE = ["--glue-dir", "nowhere", "--no-download"]         # no data there: an option checked late would say so
NEW_BAD_INPUTS = [
    # a writer would destroy what it should protect: a checkpoint, a run's own files, a device, a FIFO
    (["export", CK, "run/best/model.npz"], "inside the checkpoint"),
    (["export", CK, "run/best/new.npz"], "inside the checkpoint"),
    (["export", CK, "run/history.json"], "belongs to the run in"),
    (["export", CK, "run/.lock"], "belongs to the run in"),
    (["export", CK, "run/last"], "the output is a folder"),
    (["export", CK, "/dev/null"], "the output is a device, not a regular file (OUT /dev/null)"),
    (["export", CK, "/dev/full"], "the output is a device"),
    (["export", CK, "fifo"], "the output is a FIFO, not a regular file (OUT fifo)"),
    (["export", CK, "link_model"], "inside the checkpoint"),
    (["export", CK, "link_last/m.npz"], "inside the checkpoint"),
    (["export", CK, "link_history"], "belongs to the run in"),
    (["export", CK, ""], "the output path is empty"),
    (["export", CK, "a_file/m.npz"], "is a file, not a folder"),
    (["export", CK, "readonly/m.npz"], "readonly is not writable (OUT readonly/m.npz)"),
    (["evaluate", CK, *NOWHERE, "--json", "run/best/checkpoint.json"], "inside the checkpoint"),
    (["evaluate", CK, *NOWHERE, "--json", "run/history.json"], "belongs to the run in"),
    (["evaluate", CK, *NOWHERE, "--json", "/dev/full"], "the output is a device"),
    (["evaluate", CK, *NOWHERE, "--json", "fifo"], "the output is a FIFO"),
    (["evaluate", CK, *NOWHERE, "--json", ""], "the output path is empty (--json)"),
    (["evaluate", CK, *NOWHERE, "--json", "link_last/r.json"], "inside the checkpoint"),
    (["sweep", CK, *NOWHERE, "--out", "run/best"], "inside the checkpoint"),
    (["sweep", CK, *NOWHERE, "--out", "run/last/sub"], "inside the checkpoint"),
    (["sweep", CK, *NOWHERE, "--out", "run/history.json"], "the output folder is a file"),
    (["sweep", CK, *NOWHERE, "--out", "/dev/null"], "the output folder is a device"),
    (["sweep", CK, *NOWHERE, "--out", "fifo"], "the output folder is a FIFO"),
    (["sweep", CK, *NOWHERE, "--out", "link_last"], "inside the checkpoint"),
    (["sweep", CK, *NOWHERE, "--out", "readonly/s"], "readonly is not writable"),
    (["sweep", CK, *NOWHERE, "--out", ""], "the output folder is empty"),
    (["train", *NOWHERE, "--out", "run/best"], "inside the checkpoint"),
    (["train", *NOWHERE, "--out", "run/last/x"], "inside the checkpoint"),
    (["train", *NOWHERE, "--out", "/dev/null"], "the output folder is a device"),
    (["train", *NOWHERE, "--out", "link_last"], "inside the checkpoint"),
    (["train", *NOWHERE, "--teacher", "run/best", "--out", "run", "--overwrite"],
     "--teacher lies inside the run files of run, which --overwrite deletes (--teacher run/best)"),
    (["train", *NOWHERE, "--teacher", "run/best", "--out", "run"], "--teacher lies inside the run files of run"),
    (["train", *NOWHERE, "--teacher", "link_last", "--out", "run", "--overwrite"], "--teacher lies inside"),
    (["train", *NOWHERE, "--resume", "link_last", "--out", "run", "--overwrite"], "--resume lies inside"),
    (["download", "--tasks", "cola", "--dir", "run/best"], "inside the checkpoint"),
    (["download", "--tasks", "cola", "--dir", "a_file"], "the output folder is a file (--dir a_file)"),
    (["download", "--tasks", "cola", "--dir", "/dev/null"], "the output folder is a device"),
    (["download", "--tasks", "cola", "--dir", "readonly/glue"], "readonly is not writable"),
    (["download", "--tasks", "cola", "--dir", "x", "--deadline", "0"], "the deadline must be > 0 seconds"),
    (["download", "--tasks", "cola", "--dir", "x", "--deadline", "-1"], "the deadline must be > 0 seconds"),
    (["download", "--tasks", "cola", "--dir", "x", "--deadline", "nan"], "argument --deadline: must be a finite"),
    (["download", "--tasks", "", "--dir", "x"], "no task names in ''"),
    # options checked before any work (no data there: a late check would fail on the data instead)
    (["gradcheck", "--seed", "-1"], "argument --seed: must be an integer >= 0, got '-1'"),
    (["gradcheck", "--seed", "1e3"], "argument --seed: not an integer: '1e3'"),
    (["gradcheck", "--dim", "100000", "--heads", "1"], "--dim 100000 is more than a gradient check needs"),
    (["gradcheck", "--batch", "100000"], "(--batch): use at most 64"),
    (["gradcheck", "--tokens", "0"], "argument --tokens: must be an integer >= 1"),
    (T[:1] + NOWHERE + ["--max-len", "100000000000"], "(--max-len 100000000000): lower --max-len"),
    (T[:1] + NOWHERE + ["--batch-size", "1000000000"], "(--batch-size 1000000000): lower --batch-size"),
    (T[:1] + NOWHERE + ["--token-dim", "10000000"], "(--token-dim 10000000): lower --token-dim"),
    (T[:1] + NOWHERE + ["--blocks", "10000000"], "(--blocks 10000000): lower --blocks"),
    (T[:1] + NOWHERE + ["--max-vocab", "100000000000", "--token-dim", "64"], "(--max-vocab 100000000000)"),
    (T[:1] + NOWHERE + ["--heads", "1024", "--token-dim", "1024", "--position-dim", "0", "--max-len", "4096"],
     "more than this machine's"),
    (T[:1] + NOWHERE + ["--delta", "inf"], "argument --delta: must be a finite number, got 'inf'"),
    (T[:1] + NOWHERE + ["--lr", "1e999"], "argument --lr: must be a finite number"),
    (["evaluate", CK, *NOWHERE, "--criterion", "maxprob", "--delta", "5"], "maxprob criterion's threshold) must"),
    (["evaluate", CK, *NOWHERE, "--criterion", "patience", "--delta", "0.5"], "patience criterion's threshold"),
    (["evaluate", CK, *NOWHERE, "--delta", "1e308"], "fractional criterion's threshold) must be in [0, 1)"),
    (["evaluate", CK, *NOWHERE, "--split", "validation"], "sst2 has no split 'validation' (--split validation)"),
    (["evaluate", CK, *NOWHERE, "--split", ""], "sst2 has no split ''"),
    (["evaluate", CK, *NOWHERE, "--batch-size", "1000000000000"], "(--batch-size 1000000000000)"),
    (["evaluate", CK, *NOWHERE], "could not find the SST-2 folder of GLUE task 'sst2' (looked at: nowhere/SST-2"),
    (["sweep", CK, *NOWHERE, "--split", "test2"], "sst2 has no split 'test2'"),
    (["data", "--task", "sst2", *NOWHERE], "fetch it with: python -m beexnp download --tasks sst2 --dir nowhere"),
    (["predict", CK, "a good film", "--criterion", "entropy", "--delta", "2"], "entropy criterion's threshold"),
    (T[:1] + NOWHERE + ["--out", ""], "the output folder is empty (--out)"),
    (T[:1] + NOWHERE + ["--config", "fifo"], "the input is a FIFO, not a regular file (--config fifo)"),  # no hang
    (T[:1] + NOWHERE + ["--config", "/dev/zero"], "the input is a device, not a regular file (--config /dev/zero)"),
    (T[:1] + NOWHERE + ["--seed", "-1"], "argument --seed: must be an integer >= 0, got '-1'"),
    # a --config that is not what it should be, and values of the wrong type or range in it
    (T[:1] + NOWHERE + ["--config", "adir"], "the input is a folder, not a regular file (--config adir)"),
    (T[:1] + NOWHERE + ["--config", "confdir.json"], "(--config confdir.json)"),
    (T[:1] + NOWHERE + ["--config", "empty.json"], "not valid JSON: Expecting value at line 1 column 1 (--config"),
    (T[:1] + NOWHERE + ["--config", "latin1.json"], "not UTF-8 text (invalid continuation byte at byte 23) (--config"),
    (T[:1] + NOWHERE + ["--config", "a_file"], "not valid JSON"),
    (T[:1] + NOWHERE + ["--config", "delta_nan.json", "--delta", "0.5"], "(--config delta_nan.json: train.delta)"),
    (T[:1] + NOWHERE + ["--heads", "0"], "heads must be >= 1, got 0 (--heads 0): give heads >= 1"),
    (T[:1] + NOWHERE + ["--no-bucket", "--warmup", "1"], "warmup must be in [0, 1), got 1.0 (--warmup 1.0)"),
    (T[:1] + NOWHERE + ["--select-on", "heldout", "--heldout-fraction", "1"], "(--heldout-fraction 1.0)"),
    (T[:1] + NOWHERE + ["--pair-encoding", "siamese"], "needs a sentence-pair task; sst2 has one sentence "
                                                        "(--pair-encoding siamese)"),
    (T[:1] + NOWHERE + ["--task", "cola,sst2"], "unknown GLUE task 'cola,sst2' (--task cola,sst2): use one of"),
    # GLUE folders and files that are not what they should be
    (T[:1] + ["--glue-dir", "/dev/null", "--no-download"], "the GLUE folder is not a folder (--glue-dir /dev/null)"),
    (T[:1] + ["--glue-dir", "truncated", "--no-download"], "found 1 (truncated/SST-2/train.tsv:6): the file is "
                                                           "damaged or not GLUE's: fetch it again (python -m beexnp "
                                                           "download --tasks sst2 --force)"),
    (T[:1] + ["--glue-dir", "nolabel", "--no-download"], "the header has 1 columns"),
    (T[:1] + ["--glue-dir", "garbage", "--no-download"], "not valid UTF-8 (invalid start byte, byte 0xff) "
                                                         "(garbage/SST-2/train.tsv:2)"),
    (["data", "--task", "sst2", "--glue-dir", "badlabel", "--no-download"], "bad sst2 label '7'"),
    (["data", "--task", "sst2", "--glue-dir", "truncated", "--no-download"], "(truncated/SST-2/train.tsv:6)"),
    (T[:1] + NOWHERE + ["--heldout-seed", "-3"], "argument --heldout-seed: must be an integer >= 0"),
    (["evaluate", CK, "--glue-dir", "a_file", "--no-download"], "the GLUE folder is not a folder (--glue-dir a_file)"),
    (["evaluate", CK, *G, "--split", "heldout"], "it has no held-out slice (--split heldout): evaluate it on dev"),
    (["predict", CK, "a good film", "--criterion", "maxprob", "--delta", "-0.01"], "maxprob criterion's threshold"),
    # pretrain (its --out, sizes, masking, resume) and train --init: checked before any work, as train is
    (["pretrain", *NOWHERE, "--out", "run"], "the folder already holds a run (best, last, history.json) (--out run)"),
    (["pretrain", *NOWHERE, "--max-len", "100000000000"], "(--max-len 100000000000): lower --max-len"),
    (["pretrain", *NOWHERE, "--mask-rate", "1.5"], "the masking setting rate must be a number in (0, 1), got 1.5"),
    (["pretrain", *NOWHERE, "--mask-rate", "0"], "(--mask-rate 0.0, --mlm-blocks last)"),
    (["pretrain", *NOWHERE, "--mask-rate", "nan"], "argument --mask-rate: must be a finite number"),
    (["pretrain", *NOWHERE, "--mlm-blocks", "first"], "argument --mlm-blocks: invalid choice: 'first'"),
    (["pretrain", *NOWHERE, "--teacher", CK], "no use for a teacher (--teacher run/best)"),
    (["pretrain", *NOWHERE, "--calibrate"], "makes no decision to calibrate (calibrate, from --calibrate or --config)"),
    (["pretrain", *NOWHERE, "--config", "calibrate.json"], "makes no decision to calibrate"),
    (["pretrain", *NOWHERE, "--resume", "run/last"], "the checkpoint is a 'train' run's, not a 'pretrain' run's"),
    (["pretrain", *NOWHERE, "--resume", "mlm/last", "--mask-rate", "0.3"], "the masking settings differ"),
    (["pretrain", *NOWHERE, "--resume", "packed/m.npz"], "a packed file holds no trainer state"),
    (["pretrain", *NOWHERE, "--resume", "badcard/last"], "badcard/last"),
    (["pretrain", *NOWHERE, "--resume", "mlm/last", "--out", "mlm", "--overwrite"],
     "--resume lies inside the run files of mlm"),
    (["train", *NOWHERE, "--resume", "mlm/last"], "the checkpoint is a 'pretrain' run's, not a 'train' run's"),
    (["train", *NOWHERE, "--init", "packed/m.npz"], "a packed file holds the binarized weights only"),
    (["train", *NOWHERE, "--init", "bare/last"], "the card has no tokenizer"),
    (["train", *NOWHERE, "--init", "badnpz/last"], "badnpz/last"),
    (["train", *NOWHERE, "--init", "nocard/last"], "nocard/last"),
    (["train", *NOWHERE, "--init", "adir"], "adir"),
    (["train", *NOWHERE, "--init", "mlm/last", "--resume", "run/last"], "--init and --resume together"),
    (["train", *G, "--no-progress", "--init", "mlm/last", "--out", "scratch", "--min-freq", "1", "--max-vocab", "20"],
     "the checkpoint's vocabulary ("),
    (["train", *G, "--no-progress", "--init", "mlm/last", "--out", "scratch", "--min-freq", "1"],
     "the checkpoint's encoder does not fit this model (missing parameters: blocks.3."),
]
NEW_BAD_INPUTS += [(["pretrain", *argv[1:]], message) for argv, message in NEW_BAD_INPUTS   # train's --out guard
                   if argv[0] == "train" and argv[-2] == "--out" and "--teacher" not in argv]
FORM = re.compile(r"^error: .+ \(.+\): .+$")


@pytest.mark.parametrize("argv, message", NEW_BAD_INPUTS, ids=[" ".join(a)[:60] for a, _ in NEW_BAD_INPUTS])
def test_new_bad_input_is_one_line_in_the_one_form_and_changes_nothing(world, monkeypatch, capsys, argv, message):
    test_bad_input_is_one_line_status_1_and_changes_nothing(world, monkeypatch, capsys, argv, message)
    main(argv)
    err = capsys.readouterr().err
    assert FORM.match(err.rstrip("\n")), err                   # error: <what> (<flag or path>): <what to do>
    assert not (world / "nowhere").exists() and not (world / "x").exists()     # nothing fetched, nothing made


def test_the_first_tables_messages_are_in_the_one_form_too(world, monkeypatch, capsys):
    monkeypatch.chdir(world)
    for argv, _ in BAD_INPUTS:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and FORM.match(err.rstrip("\n")), (argv, err)


def test_a_message_out_of_the_form_reaches_the_user_as_it_is(monkeypatch, capsys):
    """main reshapes nothing: an error not made by ``problem`` (here a two-line ValueError) is shown as raised,
    so the tables above see it fail the form, as a user would."""
    import beexnp.cli as cli

    def broken(args):
        raise ValueError("first line\nsecond line")
    monkeypatch.setattr(cli, "run_gradcheck", broken)
    assert main(["gradcheck"]) == 1
    err = capsys.readouterr().err
    assert err == "error: first line\nsecond line\n" and not FORM.match(err.rstrip("\n"))


# ---- every config field, given a bad value in a --config file or as a flag ---------------------------------
def bad_values(f, kind):
    """A strategy of values the dataclass field ``f`` (of type ``kind``) must refuse: another JSON type; for a
    field with choices, a string not among them; for a number, one out of its range (found by asking the
    config itself: ``_range_problems`` names the field)."""
    others = st.sampled_from([v for v in ("3", [1], {"a": 1}, True, 2.5, 7)
                              if not (isinstance(v, kind) and not isinstance(v, bool) and kind is not bool)
                              and not (kind is float and isinstance(v, int) and not isinstance(v, bool))
                              and not (kind is bool and isinstance(v, bool))])
    if f.metadata.get("choices"):
        return st.one_of(others, st.text(min_size=1, max_size=8).filter(lambda v: v not in f.metadata["choices"]))
    if kind in (int, float):
        number = st.integers(-10**6, 10**6) if kind is int else st.floats(-1e6, 1e6, allow_nan=False)
        return st.one_of(others, number.filter(lambda v: out_of_range(f.name, v)))
    return others


def config_fields():
    """(section, field, its type) for every field a run's settings take (the data-derived ones excepted)."""
    rows = []
    for section, cls in (("model", ModelConfig), ("train", TrainConfig)):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if section == "model" and f.name in DATA_DERIVED:
                continue
            kind = next(t for t in typing.get_args(hints[f.name]) or (hints[f.name],) if t is not type(None))
            rows.append((section, f, kind))
    return rows


def out_of_range(name, value):
    """True when ``value`` for the field ``name`` alone makes the default settings fail, naming that field."""
    section = "model" if name in {f.name for f in dataclasses.fields(ModelConfig)} else "train"
    try:
        build_settings(None, **{section: {name: value}})
    except ConfigProblem as err:
        return err.field == name
    return False


def is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_every_config_field_with_a_bad_value_is_one_line_in_the_form_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rows = config_fields()

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(rows).flatmap(lambda r: st.tuples(st.just(r), bad_values(r[1], r[2]))),
           st.booleans())
    def check(row, as_flag):
        (section, f, kind), value = row
        if as_flag:                              # what a flag can type that is still bad: a number out of range,
            number = isinstance(value, (int, float)) and not isinstance(value, bool)     # a word not a choice,
            word = isinstance(value, str) and not value.startswith("-") and value.strip() == value and value
            as_flag = (kind in (int, float) and (number or (word and not is_number(value)))   # text not a number
                       or bool(f.metadata.get("choices")) and word)
        if as_flag:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            argv = ["train", "--no-download", "--glue-dir", "nowhere", "--" + f.name.replace("_", "-"), text]
        else:
            (tmp_path / "c.json").write_text(json.dumps({section: {f.name: value}}))
            argv = ["train", "--no-download", "--glue-dir", "nowhere", "--config", "c.json"]
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and FORM.match(err.rstrip("\n")), (argv, err)
        named = f"{section}.{f.name}" if not as_flag else "--" + f.name.replace("_", "-")
        assert named in err, (argv, err)
        assert not (tmp_path / "nowhere").exists()

    check()


def test_the_new_table_has_enough_cases():
    assert len(NEW_BAD_INPUTS) >= 70


# ---- predict says when its answer is doubtful -------------------------------------------------
@pytest.mark.parametrize("text, warning", [
    ("", "the text is empty"),
    ("zzzz qqqq xxxx", "none of the 3 tokens is in the vocabulary"),
    ("a good film " * 4000, "the input has 12000 tokens; the model reads 63 of them (max_len 64)"),
])
def test_predict_warns_on_doubtful_input(world, monkeypatch, capsys, text, warning):
    monkeypatch.chdir(world)
    assert main(["predict", CK, text]) == 0
    out, err = capsys.readouterr()
    assert err.startswith("warning: ") and warning in err and err.count("\n") == 1
    assert out.startswith("label: negative") or out.startswith("label: positive")
    assert "(negative: " in out
