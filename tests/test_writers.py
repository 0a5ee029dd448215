"""Every writer of the command line, killed at each of its writes and renames, and stopped by SIGTERM/SIGHUP.

* SIGKILL at every temporary file, fsync and rename of ``export``, ``evaluate --json``, ``sweep`` and
  ``download --force``: each output is afterwards its previous complete version or its new complete one,
  never a part; the next run of the command leaves no temporary file, staging folder or aside copy;
* SIGTERM and SIGHUP during ``train`` save ``last`` and print the resume line, as Ctrl-C does, and the run
  resumes to its end; during ``sweep`` they end it with status 128 + the signal, leaving no partial file.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from beexnp.checkpoint import read_card
from beexnp.cli import main
from beexnp.glue.download import ARCHIVES
from beexnp.train import Trainer
from beexnp.config import TrainConfig
from conftest import TINY_MODEL, sentiment_glue
from test_glue_download import COLA, build_zip, mirror, publish  # noqa: F401  (mirror: the server fixture)

ROOT = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).with_name("fault_driver.py")


def env(every_write=True):
    e = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    e.pop("PYTHONWARNINGS", None)
    if every_write:
        e["FAULT_EVERY_WRITE"] = "1"
    return e


def driver(args, pause=0.0, every_write=True, cwd=ROOT):
    return subprocess.Popen([sys.executable, str(DRIVER), str(pause), *map(str, args)], cwd=cwd,
                            env=env(every_write), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)


WRITE_EVENTS = ("mkstemp", "fsync", "replace", "rmtree", "write")


def events(args, cwd=ROOT):
    """The write events of one whole run of the command (and its status)."""
    proc = driver(args, cwd=cwd)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    return [line[3:].split()[0] for line in out.splitlines() if line.startswith("@@ ")
            and line[3:].split()[0] in WRITE_EVENTS]


def signal_when(proc, when, signum):
    """Send ``signum`` to ``proc`` at the first announcement for which ``when(line)`` is true; wait for the end.
    Returns (whether it was sent, its status, stderr)."""
    sent = False
    for line in proc.stdout:
        if line.startswith("@@ ") and when(line[3:]):
            proc.send_signal(signum)
            sent = True
            break
    proc.stdout.read()
    err = proc.stderr.read()
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    return sent, proc.returncode, err


def kill_at_event(args, nth, signum=signal.SIGKILL, cwd=ROOT):
    """Run the command and send ``signum`` at its ``nth`` write event; (status, stderr)."""
    seen = [0]

    def when(event):
        seen[0] += event.split()[0] in WRITE_EVENTS
        return seen[0] == nth
    sent, status, err = signal_when(driver(args, pause=0.05, cwd=cwd), when, signum)
    assert sent, f"the command ended before event {nth}"
    return status, err


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest() if Path(path).is_file() else None


def leftovers(folder):
    return sorted(p.name for p in Path(folder).rglob("*") if ".tmp-" in p.name or p.name.endswith((".part", ".old")))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("writers")
    glue = sentiment_glue(root, train=64, dev=24, seed=2)
    cfg = TrainConfig(task="sst2", epochs=1, batch_size=16, min_freq=1)
    Trainer(cfg, dict(TINY_MODEL, blocks=2), root / "run", glue_dir=glue, progress=False).fit()
    return root, glue, root / "run" / "best"


def writer_cases(root, glue, ckpt):
    """name -> (files it writes, the command writing the 'old' versions, the command writing the 'new' ones)."""
    out = root / "out"
    ev = ["evaluate", ckpt, "--glue-dir", glue, "--no-timing", "--no-download", "--json", out / "report.json"]
    sw = ["sweep", ckpt, "--glue-dir", glue, "--no-download", "--out", out / "sweep"]
    return {
        "export": ([out / "m.npz"], ["export", ckpt, out / "m.npz", "--float16"], ["export", ckpt, out / "m.npz"]),
        "evaluate --json": ([out / "report.json"], ev + ["--limit", "8"], ev),
        "sweep": ([out / "sweep" / n for n in ("sweep.json", "sweep.md", "sweep.png")], sw + ["--limit", "8"], sw),
    }


@pytest.mark.parametrize("name", ["export", "evaluate --json", "sweep"])
def test_a_kill_at_any_write_or_rename_leaves_the_old_file_or_the_new(trained, name, capsys):
    root, glue, ckpt = trained
    files, old_cmd, new_cmd = writer_cases(root, glue, ckpt)[name]
    out = root / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    assert main([str(a) for a in new_cmd]) == 0
    new = [digest(f) for f in files]
    assert main([str(a) for a in old_cmd]) == 0
    old = [digest(f) for f in files]
    assert old != new
    saved = root / "out-old"
    shutil.rmtree(saved, ignore_errors=True)
    shutil.copytree(out, saved)
    n = len(events(new_cmd))
    assert n >= 3 * len(files)                            # a temporary file, its fsync and its rename each
    stride = 2 if name == "sweep" and os.environ.get("BEEXNP_FAST") == "1" else 1     # CI: every other event
    for k in range(1, n + 1, stride):
        shutil.rmtree(out)
        shutil.copytree(saved, out)
        status, err = kill_at_event(new_cmd, k)
        assert status == -signal.SIGKILL, err
        for f, o, w in zip(files, old, new):
            assert digest(f) in (o, w), (k, f)               # never a part
        assert main([str(a) for a in new_cmd]) == 0          # the next run: whole, and it tidies what the kill left
        assert [digest(f) for f in files] == new and leftovers(out) == [], (k, leftovers(out))
    capsys.readouterr()


def test_a_kill_during_download_force_keeps_the_old_task_or_the_new(mirror, tmp_path):
    root, url = mirror
    glue = tmp_path / "glue"
    old = {"CoLA/train.tsv": "old\t1\t\tOld row .\n", "CoLA/dev.tsv": "old\t1\t\tOld dev .\n", "CoLA/mine.txt": "x"}
    for member, text in old.items():
        (glue / member).parent.mkdir(parents=True, exist_ok=True)
        (glue / member).write_text(text)
    saved = tmp_path / "saved"
    shutil.copytree(glue, saved)
    cmd = ["download", "--tasks", "cola", "--dir", glue, "--base-url", url, "--force", "--quiet"]

    def contents():
        folder = glue / "CoLA"
        return {f"CoLA/{p.name}": p.read_text() for p in sorted(folder.iterdir())} if folder.is_dir() else None

    n = len(events(cmd))
    assert contents() == COLA
    assert n >= 5
    seen_gap = 0
    for k in range(1, n + 1):
        shutil.rmtree(glue)
        shutil.copytree(saved, glue)
        status, err = kill_at_event(cmd, k)
        assert status == -signal.SIGKILL, err
        now = contents()
        seen_gap += now is None
        assert now in (old, COLA, None), k
        if now is None:                                       # between the two renames: the old one is aside
            assert (glue / ".CoLA.old" / "mine.txt").is_file()
        assert main(["download", "--tasks", "cola", "--dir", str(glue), "--base-url", url, "--quiet"]) == 0
        assert contents() in (old, COLA) and leftovers(glue) == [], (k, leftovers(glue))
        assert contents() == (old if now in (old, None) else COLA)
    assert seen_gap >= 1
    print(f"download --force killed at each of its {n} write events; {seen_gap} between its two renames")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_in_train_save_last_and_say_how_to_resume(tmp_path, signum):
    glue = sentiment_glue(tmp_path, train=64, dev=16, seed=1)
    out = tmp_path / "run"
    args = ["train", "--glue-dir", glue, "--out", out, "--token-dim", "8", "--position-dim", "0", "--heads", "2",
            "--blocks", "2", "--min-freq", "1", "--batch-size", "8", "--no-progress", "--save-every", "500",
            "--epochs", "3"]
    sent, status, err = signal_when(driver(args, pause=0.02, every_write=False), lambda e: e.startswith("step 4"),
                                    signum)
    assert sent and status == 128 + signum, err
    name = signal.Signals(signum).name
    assert f"{name}: stopping at the end of this step, once 'last' is saved" in err
    step = read_card(out / "last")["state"]["step"]
    assert 4 <= step < 24 and not read_card(out / "last")["state"]["finished"]       # stopped where it was
    assert f"interrupted at step {step}: saved {out / 'last'} (step {step}); continue with: python -m beexnp " \
           f"train --resume {out / 'last'}" in err
    assert "Traceback" not in err
    assert main(["train", "--resume", str(out / "last"), "--glue-dir", str(glue), "--no-progress"]) == 0
    assert read_card(out / "last")["state"]["finished"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_in_another_command_leaves_no_partial_file(trained, signum):
    root, glue, ckpt = trained
    out = root / f"sweep-{signum}"
    cmd = ["sweep", ckpt, "--glue-dir", glue, "--no-download", "--out", out]
    status, err = kill_at_event(cmd, 2, signum)              # the first file's bytes are written, not yet renamed
    assert status == 128 + signum, err
    assert err.strip().splitlines()[-1] == f"interrupted ({signal.Signals(signum).name}); no partial file was left"
    assert "Traceback" not in err
    assert leftovers(out) == [] and not (out / "sweep.json").exists()


def test_the_sweep_is_never_written_inside_its_checkpoint(trained):
    root, glue, ckpt = trained
    assert main(["sweep", str(ckpt), "--glue-dir", str(glue), "--limit", "8"]) == 0
    assert json.loads((ckpt.parent / "best-sweep" / "sweep.json").read_text())["split"] == "dev"
    assert sorted(p.name for p in ckpt.iterdir()) == ["checkpoint.json", "model.npz", "trainer.npz"]
