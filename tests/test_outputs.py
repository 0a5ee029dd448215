"""The output guard, the atomic writer, the memory estimate and the criteria's own thresholds.

* property: for any path made of a protected or a free place and any suffix, through symlinks or not,
  ``guard_file`` refuses exactly the targets inside a checkpoint, over a run's own files, or that are not
  regular files, and ``atomic_write`` then writes the free ones whole and changes nothing else;
* a failing write (full disk, I/O error, Ctrl-C, SIGTERM) leaves the previous file and no temporary file,
  and the command says so in one line naming the path;
* leftovers of dead processes are removed by the next write of the same name, a live process's are kept;
* ``memory_estimate`` is above the measured peak of real training steps, and not absurdly so;
* every criterion has a legal default of its own, and ``evaluate``/``predict`` name the threshold they used.
"""
import errno
import hashlib
import io
import json
import os
import signal
import stat
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import beexnp.outputs as outputs
from beexnp.checkpoint import save_checkpoint
from beexnp.cli import main
from beexnp.config import ModelConfig, TrainConfig
from beexnp.criteria import CRITERIA, make_criterion, threshold_for
from beexnp.exit_loss import ModelWithLoss, MultiExitLoss
from beexnp.limits import check_sizes, memory_estimate
from beexnp.model import BEExformer
from beexnp.optim import OPTIMIZERS
from beexnp.outputs import OutputRefused, Terminated, atomic_write, clean_leftovers, guard_folder, write_text
from beexnp.train import Trainer
from conftest import TINY_MODEL, sentiment_glue


def tiny_model():
    return BEExformer(ModelConfig(vocab_size=9, token_dim=4, position_dim=0, heads=2, blocks=1),
                      np.random.default_rng(0))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """free/ (a plain folder), run/ (a run: best, last, history.json, .lock), lone/ (a checkpoint), links."""
    root = tmp_path_factory.mktemp("tree")
    (root / "free" / "sub").mkdir(parents=True)
    model = tiny_model()
    for name in ("best", "last"):
        save_checkpoint(root / "run" / name, model, {"step": 1})
    (root / "run" / "history.json").write_text("[]")
    (root / "run" / ".lock").write_text("")
    (root / "run" / "notes").mkdir()
    save_checkpoint(root / "lone", model, {"step": 1})
    os.mkfifo(root / "free" / "fifo")
    for name, target in (("to_best", "run/best"), ("to_free", "free"), ("to_history", "run/history.json"),
                         ("to_model", "lone/model.npz"), ("to_run", "run")):
        (root / name).symlink_to(root / target)
    return root


# (place, why a file written under it is refused: None when free)
PLACES = [("free", None), ("free/sub", None), ("to_free", None), ("run/notes", None), ("run", None), ("to_run", None),
          ("run/best", "checkpoint"), ("run/last", "checkpoint"), ("lone", "checkpoint"), ("to_best", "checkpoint"),
          ("to_run/last", "checkpoint")]
NAMES = ["x.json", "model.npz", "checkpoint.json", "best", "last", "history.json", ".lock", ".last.old",
         ".best.tmp-1-ab", "sweep.png", "é ü.npz", "fifo"]


def expected(place, why, name):
    """Why writing the file ``place/name`` is refused, from how the tree was built (not from the guard)."""
    if why:
        return "inside the checkpoint"
    in_run = place in ("run", "to_run")
    if in_run and name in ("best", "last", "history.json", ".lock", ".last.old", ".best.tmp-1-ab"):
        return "the output is a folder" if name in ("best", "last") else "belongs to the run in"
    if name == "fifo" and place in ("free", "to_free"):
        return "the output is a FIFO"
    return None


def hashes(root):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(PLACES), st.sampled_from(NAMES), st.binary(max_size=64))
def test_the_guard_refuses_exactly_what_it_protects_and_writes_the_rest_whole(tree, place, name, data):
    (where, why) = place
    target = tree / where / name
    refused = expected(where, why, name)
    before = hashes(tree)
    if refused:
        with pytest.raises(OutputRefused) as err:
            atomic_write(target, lambda f: f.write(data), "OUT")
        message = str(err.value)
        assert refused in message and f"(OUT {target})" in message and "\n" not in message, message
        assert hashes(tree) == before                                       # nothing changed
        return
    real = atomic_write(target, lambda f: f.write(data), "OUT")
    assert real == Path(os.path.realpath(target)) and real.read_bytes() == data
    after = hashes(tree)
    assert {p: h for p, h in after.items() if p != real} == {p: h for p, h in before.items() if p != real}
    assert not [p for p in real.parent.iterdir() if ".tmp-" in p.name and p.name.startswith(f".{name}")]
    real.unlink()


@pytest.mark.parametrize("path, message", [
    ("free/fifo", "the output folder is a FIFO"), ("run/best", "inside the checkpoint"),
    ("to_best/sweep", "inside the checkpoint"), ("run/history.json", "the output folder is a file"),
    ("run/.last.old", "belongs to the run in"), ("/dev/null", "the output folder is a device"),
])
def test_the_folder_guard(tree, path, message):
    with pytest.raises(OutputRefused, match=message):
        guard_folder(tree / path, "--out")
    assert guard_folder(tree / "free" / "new" / "deeper", "--out", create=True).is_dir()


@pytest.mark.parametrize("failure", ["ENOSPC", "EIO", "KeyboardInterrupt", "Terminated"])
def test_a_failing_write_leaves_the_old_file_and_no_temporary(tmp_path, failure):
    target = tmp_path / "report.json"
    target.write_text("old")

    def write(f):
        f.write(b"new, partial")
        if failure in ("ENOSPC", "EIO"):
            raise OSError(getattr(errno, failure), os.strerror(getattr(errno, failure)))
        raise KeyboardInterrupt if failure == "KeyboardInterrupt" else Terminated(signal.SIGTERM)

    with pytest.raises((OSError, KeyboardInterrupt)) as err:
        atomic_write(target, write, "--json")
    if failure in ("ENOSPC", "EIO"):
        assert f"(--json {target}):" in str(err.value) and "nothing was written there" in str(err.value)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["report.json"]


@settings(max_examples=60, deadline=None)
@given(mode=st.integers(0, 0o777), via_link=st.booleans())
def test_a_read_only_file_is_refused_and_a_replaced_one_keeps_its_permissions(tmp_path_factory, mode, via_link):
    # a rename replaces a file whatever its mode: without the guard, a file someone made read-only (chmod 444,
    # README.md among them) was silently rewritten, and a private one (600) came back as 644
    folder = tmp_path_factory.mktemp("modes")
    target = folder / "report.json"
    target.write_text("old")
    target.chmod(mode)
    path = folder / "link.json" if via_link else target
    if via_link:
        path.symlink_to(target)
    may_write = bool(mode & (0o222 if os.geteuid() == 0 else 0o200))   # root: a write bit for anyone at all
    try:
        if may_write:
            write_text(path, "new", "--json")
            assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == mode
        else:
            with pytest.raises(OutputRefused) as err:
                write_text(path, "new", "--json")
            assert str(err.value).startswith("the file is read-only") and f"(--json {path}" in str(err.value)
            assert "\n" not in str(err.value)
            target.chmod(0o600)
            assert target.read_text() == "old"
        assert sorted(p.name for p in folder.iterdir()) == ["link.json", "report.json"][not via_link:]
    finally:
        target.chmod(0o600)


def test_a_full_disk_during_export_is_one_line_naming_the_path(tmp_path, monkeypatch, capsys):
    glue = sentiment_glue(tmp_path, train=64, dev=16)
    Trainer(TrainConfig(task="sst2", epochs=1, batch_size=16, min_freq=1), TINY_MODEL, tmp_path / "run",
            glue_dir=glue, progress=False).fit()
    real = os.fsync

    def full(fd):
        if not os.path.isdir(os.readlink(f"/proc/self/fd/{fd}")):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    monkeypatch.setattr(outputs.os, "fsync", full)
    (tmp_path / "m.npz").write_bytes(b"previous")
    out = str(tmp_path / "m.npz")
    assert main(["export", str(tmp_path / "run" / "best"), out]) == 1
    err = capsys.readouterr().err
    assert err == (f"error: could not write: No space left on device ({out}): free some space or write "
                   "elsewhere; nothing was written there\n")
    assert (tmp_path / "m.npz").read_bytes() == b"previous"
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_leftovers_of_dead_processes_go_and_a_live_ones_stay(tmp_path):
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    names = [f".r.json.tmp-{dead}-abc", f".r.json.tmp-{os.getpid()}-abc", ".r.json.tmp-oldstyle", ".other.tmp-1-x"]
    for name in names:
        (tmp_path / name).write_text("partial")
    (tmp_path / f".r.json.tmp-{dead}-dir").mkdir()
    atomic_write(tmp_path / "r.json", lambda f: f.write(b"{}"))
    assert sorted(os.listdir(tmp_path)) == sorted([f".r.json.tmp-{os.getpid()}-abc", ".other.tmp-1-x", "r.json"])
    assert clean_leftovers(tmp_path, "other") == []                       # pid 1 is alive


# ---- sizes -------------------------------------------------------------------------------------
def peak_of_steps(objective, parameters, ids, *labels):
    """The peak bytes tracemalloc (started by the caller, before the model was built) has seen after two training
    steps of ``objective`` on ``ids`` (and ``labels``)."""
    optimizer = OPTIMIZERS["adamw"](list(parameters), lr=1e-3)
    for _ in range(2):
        objective.forward(ids, np.ones(ids.shape, np.float32), *labels)
        objective.backward()
        optimizer.step()
        optimizer.zero_grad()
    return tracemalloc.get_traced_memory()[1]


@pytest.mark.parametrize("d, heads, blocks, max_len, batch, vocab", [
    (16, 2, 2, 32, 8, 200), (64, 4, 3, 64, 16, 1000), (32, 2, 2, 128, 32, 500), (8, 1, 4, 16, 64, 50)])
def test_the_memory_estimate_is_above_the_measured_peak_of_training_steps(d, heads, blocks, max_len, batch, vocab):
    tracemalloc.start()                       # the model's weights count too: measured from before it is built
    try:
        config = ModelConfig(vocab_size=vocab, token_dim=d, position_dim=0, heads=heads, blocks=blocks,
                             max_len=max_len)
        model = BEExformer(config, np.random.default_rng(0))
        rng = np.random.default_rng(0)
        ids = rng.integers(4, vocab, (batch, max_len))
        peak = peak_of_steps(ModelWithLoss(model, MultiExitLoss(blocks)), model.parameters(), ids,
                             rng.integers(0, 2, batch))
    finally:
        tracemalloc.stop()
    estimate = memory_estimate(d, 0, heads, blocks, vocab, max_len, batch)
    assert peak <= estimate <= 20 * peak, (peak, estimate)


@pytest.mark.parametrize("levels", ["last", "all"])
@pytest.mark.parametrize("d, blocks, max_len, batch, vocab", [(16, 2, 32, 16, 5000), (32, 3, 64, 8, 2000)])
def test_the_memory_estimate_of_pretraining_counts_the_mlm_head(levels, d, blocks, max_len, batch, vocab):
    """A pretraining step's peak (its head's logits over the vocabulary weigh most at these sizes) is below the
    estimate with ``mlm_levels``; without the head's terms it is above it on three of these four cases."""
    from beexnp.mlm import MaskedLM, MLMHead
    tracemalloc.start()
    try:
        config = ModelConfig(vocab_size=vocab, token_dim=d, position_dim=0, heads=2, blocks=blocks, max_len=max_len)
        rng = np.random.default_rng(0)
        model = BEExformer(config, rng)
        head = MLMHead(d, vocab, rng)
        objective = MaskedLM(model, head, levels=levels, rate=0.5)
        objective.rng = rng                                        # the masking of every step: one Generator
        peak = peak_of_steps(objective, list(model.parameters()) + list(head.parameters()),
                             rng.integers(4, vocab, (batch, max_len)))
    finally:
        tracemalloc.stop()
    estimate = memory_estimate(d, 0, 2, blocks, vocab, max_len, batch,
                               mlm_levels=blocks if levels == "all" else 1, mask_rate=0.5)
    assert peak <= estimate <= 20 * peak, (peak, estimate)


def test_check_sizes_names_the_flag_that_helps_most():
    sizes = dict(token_dim=64, position_dim=0, heads=2, blocks=2, vocab=100, max_len=64, batch_size=16)
    defaults = dict(sizes)
    assert check_sizes(sizes, defaults, {"max_len": "--max-len"}, memory=2 ** 40) > 0
    with pytest.raises(ValueError, match=r"\(--max-len 100000\): lower --max-len"):
        check_sizes(dict(sizes, max_len=100000, batch_size=32), defaults,
                    {"max_len": "--max-len", "batch_size": "--batch-size"}, memory=2 ** 33)


# ---- criteria: each its own default --------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(set(CRITERIA) - {"never", "relative_change"}))
def test_every_criterion_has_a_legal_default_of_its_own(name):
    rule, threshold, source = threshold_for(name, None, trained_delta=0.1)
    if CRITERIA[name].default is None:
        assert threshold == 0.1 and source == "the delta the model was trained with"
    else:
        assert threshold == CRITERIA[name].default and source == f"the {name} default"
        make_criterion(name, CRITERIA[name].default)                  # legal for its own rule


def test_maxprob_without_delta_uses_its_own_threshold_and_says_so(tmp_path, capsys):
    glue = sentiment_glue(tmp_path, train=64, dev=16)
    Trainer(TrainConfig(task="sst2", epochs=1, batch_size=16, min_freq=1), TINY_MODEL, tmp_path / "run",
            glue_dir=glue, progress=False).fit()
    best = str(tmp_path / "run" / "best")
    assert main(["evaluate", best, "--glue-dir", str(glue), "--criterion", "maxprob", "--no-timing",
                 "--json", str(tmp_path / "r.json")]) == 0
    assert "(maxprob, threshold 0.9: the maxprob default)" in capsys.readouterr().out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["delta"] == 0.9 and report["threshold_source"] == "the maxprob default"
    assert main(["predict", best, "a good film", "--criterion", "patience"]) == 0
    assert "(patience, threshold 2: the patience default)" in capsys.readouterr().out
    assert main(["predict", best, "a good film"]) == 0
    assert "(fractional, threshold 0.1: the delta the model was trained with)" in capsys.readouterr().out


def test_the_property_catches_a_guard_that_lets_a_checkpoint_through(tree, monkeypatch):
    """Test the test: with the checkpoint rule taken out of the guard, the property above fails."""
    monkeypatch.setattr(outputs, "protected", lambda resolved: None)
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        test_the_guard_refuses_exactly_what_it_protects_and_writes_the_rest_whole(tree)


class FullDevice:
    """A stderr like ``2>/dev/full``: every write and flush fails with ENOSPC."""
    encoding = "utf-8"

    def write(self, text):
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self):
        raise OSError(errno.ENOSPC, "No space left on device")

    def isatty(self):
        return False


def closed_stream():
    stream = io.StringIO()
    stream.close()
    return stream


@pytest.mark.parametrize("broken", [lambda: None, FullDevice, closed_stream], ids=["closed fd", "full", "closed file"])
def test_an_unwritable_stderr_costs_the_bar_not_the_command(broken, monkeypatch, capsys, two_gradchecks):
    """``gradcheck`` with its progress bar, stderr closed (``2>&-``: sys.stderr is None), on a full device or a
    closed file: the table still reaches stdout and the status is 0; an error is still status 1."""
    monkeypatch.setattr(sys, "stderr", broken())
    assert main(["gradcheck"]) == 0
    assert "2 layers, largest relative error" in capsys.readouterr().out
    assert main(["gradcheck", "--dim", "7", "--heads", "2"]) == 1


class BreakingStream(io.StringIO):
    """A stdout that takes ``lines`` lines, then fails every write with ``code`` (EPIPE: ``| head`` has gone;
    ENOSPC: ``>/dev/full``; EIO: a dying disk).  It holds no buffer, so flush has nothing to fail on."""

    def __init__(self, code, lines):
        super().__init__()
        self.code, self.lines = code, lines

    def write(self, text):
        if self.getvalue().count("\n") >= self.lines:
            kind = BrokenPipeError if self.code == errno.EPIPE else OSError
            raise kind(self.code, os.strerror(self.code))
        return super().write(text)


def expect_the_failure_of_its_kind(code, lines, monkeypatch, capsys):
    """A reader gone (EPIPE) stops ``gradcheck`` with 128 + SIGPIPE and not a word on stderr, as
    ``yes | head -1``; any other failure is the one-line error naming stdout, status 1."""
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdout", BreakingStream(code, lines))
    status = main(["gradcheck", "--no-progress"])
    err = capsys.readouterr().err
    if code == errno.EPIPE:
        assert (status, err) == (128 + signal.SIGPIPE, "")
    else:
        assert (status, err) == (1, f"error: cannot write the results (stdout): {os.strerror(code)}; send them "
                                    "where there is room, or to /dev/null to discard them\n")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(code=st.sampled_from([errno.EPIPE, errno.ENOSPC, errno.EIO]), lines=st.integers(0, 3))
def test_a_stdout_that_fails_ends_the_command_as_its_kind_says(code, lines, monkeypatch, capsys, two_gradchecks):
    """Whichever line first fails (the table is one write of many lines, the summary the next)."""
    expect_the_failure_of_its_kind(code, lines, monkeypatch, capsys)


@pytest.mark.parametrize("code", [errno.EPIPE, errno.ENOSPC])
def test_the_stdout_property_catches_a_results_stream_that_passes_errors_through(code, monkeypatch, capsys,
                                                                                 two_gradchecks):
    """Test the test: with Results letting every OSError through unchanged, both kinds are told wrongly."""
    monkeypatch.setattr(outputs.Results, "_attempt", lambda self, act, fallback: act(self.stream))
    with pytest.raises(AssertionError):
        expect_the_failure_of_its_kind(code, 0, monkeypatch, capsys)


def test_a_closed_stdout_is_refused_before_any_work(monkeypatch, capsys, two_gradchecks):
    monkeypatch.setattr(sys, "stdout", None)
    assert main(["gradcheck"]) == 1
    assert capsys.readouterr().err == ("error: stdout is closed (1>&-): the results have nowhere to go: send them "
                                       "to a file, or to /dev/null to discard them\n")


def test_wherever_the_reader_goes_training_saves_last_and_resumes_to_the_same_run(tmp_path, monkeypatch, capsys):
    """``train | head -k`` for every k: the line that finds no reader stops training as after Ctrl-C, with
    ``last`` saved and the command to continue; resumed, the run ends with the uninterrupted run's epochs and
    scores, early stopping included (a reader gone at the report of the epoch that exhausts patience)."""
    glue = sentiment_glue(tmp_path, train=64, dev=16)
    tiny = [f"--{k.replace('_', '-')}={v}" for k, v in TINY_MODEL.items()]

    def train(out, *more):
        return main(["train", "--task", "sst2", "--glue-dir", str(glue), "--out", str(out), "--epochs", "8",
                     "--batch-size", "16", "--patience", "1", "--no-progress", *tiny, *more])

    def epochs(out):
        return [(h["epoch"], h["score"]) for h in json.loads((out / "history.json").read_text())]

    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert train(tmp_path / "whole") == 0
    whole = epochs(tmp_path / "whole")
    lines = sys.stdout.getvalue().count("\n")
    assert len(whole) < 8 and "early stopping" in sys.stdout.getvalue()     # the patience case is reached
    for k in range(1, lines - 1):                                          # the first line is before any step
        out = tmp_path / f"head{k}"
        monkeypatch.setattr(sys, "stdout", BreakingStream(errno.EPIPE, lines=k))
        assert train(out) == 128 + signal.SIGPIPE
        assert f"saved {out / 'last'} (step " in capsys.readouterr().err
        monkeypatch.setattr(sys, "stdout", io.StringIO())
        assert main(["train", "--resume", str(out / "last"), "--glue-dir", str(glue), "--no-progress"]) == 0
        assert epochs(out) == whole, k


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    Trainer(TrainConfig(task="sst2", epochs=1, batch_size=16, min_freq=1), TINY_MODEL, root / "run",
            glue_dir=sentiment_glue(root, train=32, dev=8), progress=False).fit()
    return root / "run" / "best"


def closed_pipe():
    read, write = os.pipe()
    os.close(read)
    return write


FULL = "error: cannot write the results (stdout): No space left on device; send them where there is room, or to " \
       "/dev/null to discard them\n"


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "PYTHONUNBUFFERED"])
@pytest.mark.parametrize("args, stdout, stderr, expected", [
    (["size", "CK"], closed_pipe, subprocess.PIPE, (128 + signal.SIGPIPE, "")),
    (["size", "CK"], closed_pipe, subprocess.STDOUT, (128 + signal.SIGPIPE, None)),
    (["predict", "CK", "a good film", "--json"], closed_pipe, subprocess.PIPE, (128 + signal.SIGPIPE, "")),
    (["size", "--help"], closed_pipe, subprocess.PIPE, ({0, 128 + signal.SIGPIPE}, "")),   # at exit or at the write
    (["size", "CK"], lambda: os.open("/dev/full", os.O_WRONLY), subprocess.PIPE, (1, FULL)),
], ids=["| true", "2>&1 | true", "predict | true", "--help | true", ">/dev/full"])
def test_a_real_stdout_that_fails(args, stdout, stderr, expected, buffered, tiny_checkpoint):
    """Through the operating system, Python's buffer on or off: a pipe whose read end is closed before the
    command starts, or the full device.  The status and stderr are exactly the expected ones: no "Exception
    ignored" when the interpreter flushes at exit (status 120)."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    env.pop("PYTHONUNBUFFERED", None)
    env.update({} if buffered else {"PYTHONUNBUFFERED": "1"})
    fd = stdout()
    try:
        done = subprocess.run([sys.executable, "-m", "beexnp", *[str(tiny_checkpoint) if a == "CK" else a
                                                                 for a in args]],
                              stdout=fd, stderr=stderr, text=True, timeout=120, env=env)
    finally:
        os.close(fd)
    status, err = expected
    assert done.returncode in (status if isinstance(status, set) else {status}) and done.stderr == err


def test_diagnostics_pass_what_stderr_takes():
    stream = io.StringIO()
    diagnostics = outputs.Diagnostics(stream)
    assert diagnostics.write("progress\r") == len("progress\r") and stream.getvalue() == "progress\r"
    diagnostics.flush()
    assert diagnostics.encoding == "utf-8" and diagnostics.isatty() is False
