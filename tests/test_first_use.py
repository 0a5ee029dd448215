"""Data on first use: a command that reads a GLUE task nobody downloaded fetches it (``ensure_task``),
against the local http.server of ``test_glue_download`` serving a tiny SST-2 zip."""
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from beexnp.glue import location
from beexnp.cli import main
from beexnp.glue.download import ARCHIVES, BASE_URL_ENV, NO_DOWNLOAD_ENV, ensure_task
from beexnp.glue.location import DEFAULT_DIR, ENV_VAR, PROJECT_DIR, download_dir
from test_glue_download import build_zip, mirror, publish  # noqa: F401  (mirror: the server fixture)

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--token-dim", "8", "--position-dim", "0", "--heads", "1", "--blocks", "2", "--dev-subset", "20"]


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No GLUE files anywhere this process looks: the working directory is an empty folder, GLUE_DIR
    is unset, the project's data/glue is an empty folder's; downloads allowed again."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(location, "PROJECT_DIR", tmp_path / "project")
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.delenv(NO_DOWNLOAD_ENV)
    return work


@pytest.fixture
def sst2_mirror(mirror, glue_dir, nowhere, monkeypatch):
    """The mirror's base url ($BEEXNP_GLUE_BASE_URL), serving conftest's tiny SST-2 as SST-2.zip."""
    root, url = mirror
    folder = glue_dir / "SST-2"
    publish(root, ARCHIVES["sst2"].path,
            build_zip({f"SST-2/{p.name}": p.read_text() for p in sorted(folder.iterdir())}))
    shutil.rmtree(glue_dir)
    monkeypatch.setenv(BASE_URL_ENV, url)
    return url


def closed_port_url():
    """An address on 127.0.0.1 where nothing listens: what a machine without network sees."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_a_present_task_is_used_where_it_is(glue_dir, monkeypatch):
    monkeypatch.delenv(NO_DOWNLOAD_ENV)
    before = sorted(os.listdir(glue_dir))
    assert ensure_task("sst2", glue_dir, url=closed_port_url()) == glue_dir     # no address asked
    monkeypatch.setenv(ENV_VAR, str(glue_dir))
    assert ensure_task("SST-2", url=closed_port_url()) == glue_dir
    assert sorted(os.listdir(glue_dir)) == before                                  # nothing written


@pytest.mark.parametrize("place", ["explicit", "GLUE_DIR", "default"])
def test_a_missing_task_is_downloaded_into_the_glue_directory_in_use(sst2_mirror, tmp_path, monkeypatch, capsys,
                                                                      place):
    target = tmp_path / "fresh" / "glue"
    if place == "GLUE_DIR":
        monkeypatch.setenv(ENV_VAR, str(target))
    elif place == "default":
        target = DEFAULT_DIR                         # relative to the current directory, outside the project
    found = ensure_task("sst2", target if place == "explicit" else None, progress=False)
    assert found == target
    assert sorted(os.listdir(target / "SST-2")) == ["dev.tsv", "train.tsv"]
    assert os.listdir(target) == ["SST-2"]           # no zip, staging folder or .part left behind
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"downloading it from {sst2_mirror} into {target / 'SST-2'}" in err[0]
    assert ensure_task("sst2", target if place == "explicit" else None) == target
    assert capsys.readouterr().err == ""             # the second time, nothing to say


def test_inside_the_project_the_default_is_the_projects_data_glue(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.chdir(ROOT / "notebooks")            # where the notebooks' kernels run
    assert download_dir() == ("the default, in the project", Path("..") / "data" / "glue")
    monkeypatch.chdir(PROJECT_DIR)
    assert download_dir() == ("the default", DEFAULT_DIR)
    assert download_dir("x") == ("the path given", Path("x"))


@pytest.mark.parametrize("how", ["argument", "environment", "flag"])
def test_downloading_can_be_turned_off(sst2_mirror, tmp_path, monkeypatch, capsys, how):
    glue = tmp_path / "glue"
    if how == "flag":
        assert main(["data", "--task", "sst2", "--glue-dir", str(glue), "--no-download"]) == 1
        message = capsys.readouterr().err
    else:
        if how == "environment":
            monkeypatch.setenv(NO_DOWNLOAD_ENV, "1")
        with pytest.raises(FileNotFoundError) as error:
            ensure_task("sst2", glue, download=how != "argument")
        message = str(error.value)
    assert "could not find the SST-2 folder" in message and "python -m beexnp download --tasks sst2" in message
    assert not glue.exists()


def test_offline_the_error_is_one_line(nowhere, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(BASE_URL_ENV, closed_port_url())
    glue = tmp_path / "glue"
    assert main(["data", "--task", "sst2", "--glue-dir", str(glue), "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and captured.err.endswith(errors[0] + "\n")
    for part in ("downloading it failed", "GLUE_DIR", "python -m beexnp download --tasks sst2", "--base-url"):
        assert part in errors[0]
    assert os.listdir(glue) == []                    # no staging folder left behind


def test_an_unwritable_glue_dir_is_never_written_to(nowhere, tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv(ENV_VAR, str(blocker / "glue"))      # cannot be created, even by root
    monkeypatch.setenv(BASE_URL_ENV, closed_port_url())     # were it asked, the download would fail otherwise
    with pytest.raises(FileNotFoundError) as error:
        ensure_task("sst2")
    message = str(error.value)
    assert "\n" not in message and "is not writable" in message
    assert "read after $GLUE_DIR: python -m beexnp download --tasks sst2" in message


def test_a_read_only_glue_dir_is_reported(nowhere, tmp_path, monkeypatch):
    """A read-only copy (CI's shared one: no write bit) is never written to, not even by root."""
    shared = tmp_path / "shared"
    (shared / "CoLA").mkdir(parents=True)
    shared.chmod(0o555)
    monkeypatch.setenv(ENV_VAR, str(shared))
    try:
        assert ensure_task("cola", url=closed_port_url()) == shared
        with pytest.raises(FileNotFoundError, match=r"shared \(\$GLUE_DIR\) is not writable"):
            ensure_task("sst2", url=closed_port_url())
        assert os.listdir(shared) == ["CoLA"]
    finally:
        shared.chmod(0o755)


def test_every_command_that_reads_a_task_fetches_it(sst2_mirror, tmp_path, monkeypatch, capsys):
    """train downloads into --glue-dir; with the folder gone, resuming, evaluate, sweep and data fetch it again."""
    glue = tmp_path / "glue"
    assert main(["train", "--task", "sst2", "--glue-dir", str(glue), "--epochs", "1", "--out", "run",
                 "--no-progress", *TINY]) == 0
    assert "downloading it from" in capsys.readouterr().err
    for argv in (["train", "--resume", "run/last", "--epochs", "2", "--no-progress"],
                 ["evaluate", "run/best", "--no-timing"], ["sweep", "run/best", "--limit", "20"],
                 ["data", "--task", "sst2"]):
        shutil.rmtree(glue)
        assert main([*argv, "--glue-dir", str(glue)]) == 0, argv
        assert "downloading it from" in capsys.readouterr().err, argv
        assert (glue / "SST-2" / "dev.tsv").is_file()


def test_a_fresh_clone_trains_without_a_download_step(sst2_mirror, tmp_path):
    """The issue's check: the package alone (no data/glue, GLUE_DIR unset), a mirror, and
    ``python -m beexnp train --task sst2 --max-steps 5`` as a user would type it."""
    clone = tmp_path / "clone"
    shutil.copytree(ROOT / "beexnp", clone / "beexnp", ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k not in (ENV_VAR, NO_DOWNLOAD_ENV)}
    env.update(PYTHONPATH=str(clone), **{BASE_URL_ENV: sst2_mirror})
    command = [sys.executable, "-m", "beexnp", "train", "--task", "sst2", "--max-steps", "5", "--no-progress", *TINY]
    done = subprocess.run(command, cwd=clone, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"downloading it from {sst2_mirror} into {Path('data') / 'glue' / 'SST-2'}" in done.stderr
    assert (clone / "data" / "glue" / "SST-2" / "train.tsv").is_file()
    assert (clone / "runs" / "sst2" / "best" / "checkpoint.json").is_file()
    assert "best checkpoint: runs/sst2/best" in done.stdout, done.stdout
