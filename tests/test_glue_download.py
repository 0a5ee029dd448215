"""The downloader against a local http.server serving small archives built here."""
import functools
import hashlib
import http.server
import io
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from beexnp.cli import main
from beexnp.glue import GlueFormatError, load_split
from beexnp.glue import TASKS
from beexnp.glue.download import (ARCHIVES, BASE_URL_ENV, MRPC_SOURCES, OFFICIAL_BASE_URL, DownloadError,
                                  assemble_mrpc, base_url, download_task, extract_zip, fetch,
                                  parse_task_list)

COLA = {"CoLA/train.tsv": "gj04\t1\t\tOne more .\ngj04\t0\t*\tOne more or .\n",
        "CoLA/dev.tsv": "gj04\t1\t\tThe sailors rode .",
        "CoLA/test.tsv": "index\tsentence\n0\tBill whistled .\n"}

BOM = "\ufeff"
MRPC_TRAIN_TXT = (BOM + "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                  "1\t702876\t702977\tAmrozi \" the witness \" .\tReferring to him .\n"
                  "0\t2108705\t2108831\tYucaipa owned .\tYucaipa bought .\n"
                  "1\t1330381\t1330521\tThey had published .\tOn Tuesday .  \n"
                  "0\t3344667\t3344648\tAround 0335 GMT .\tAt 5 p.m. .\n")
MRPC_TEST_TXT = ("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                 "1\t1089874\t1089925\tPCCW 's chief .\tCurrent Chief .\n"
                 "0\t3019446\t3019327\tThe world 's .\tDomestic sales .\n")
MRPC_DEV_IDS = "1330381\t1330521\n2108705\t2108831\n"


def build_zip(members, compression=zipfile.ZIP_DEFLATED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return buffer.getvalue()


def publish(root, remote_path, data):
    """Put ``data`` where the server serves ``<url>/<remote_path>``."""
    path = root / remote_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(tmp_path):
    """(root folder, base url) of an http.server on 127.0.0.1 (ephemeral port)
    serving CoLA.zip and the three MRPC sources; stopped after the test."""
    root = tmp_path / "mirror"
    publish(root, ARCHIVES["cola"].path, build_zip(COLA))
    for name, text in [("msr_paraphrase_train.txt", MRPC_TRAIN_TXT), ("msr_paraphrase_test.txt", MRPC_TEST_TXT),
                       ("dev_ids.tsv", MRPC_DEV_IDS)]:
        publish(root, MRPC_SOURCES[name].path, text)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=root))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_download_a_zip_task(mirror, tmp_path):
    _, url = mirror
    glue = tmp_path / "glue"
    assert download_task("cola", glue, url) == "downloaded"    # with its progress bar
    assert sorted(os.listdir(glue)) == ["CoLA"]                 # no zip, staging folder or .part left
    for member, text in COLA.items():
        assert (glue / member).read_text(encoding="utf-8") == text
    train = load_split("cola", "train", glue)
    assert train.text_a == ["One more .", "One more or ."]
    np.testing.assert_array_equal(train.labels, [1, 0])


def test_a_present_task_is_kept_unless_forced(mirror, tmp_path):
    _, url = mirror
    glue = tmp_path / "glue"
    (glue / "CoLA").mkdir(parents=True)
    (glue / "CoLA" / "mine.txt").write_text("keep me")
    assert download_task("cola", glue, url, progress=False) == "present"
    assert os.listdir(glue / "CoLA") == ["mine.txt"]
    assert download_task("cola", glue, url, force=True, progress=False) == "downloaded"
    assert sorted(os.listdir(glue / "CoLA")) == ["dev.tsv", "test.tsv", "train.tsv"]


def test_mrpc_is_assembled_as_the_official_script_does(mirror, tmp_path):
    _, url = mirror
    glue = tmp_path / "glue"
    assert download_task("MRPC", glue, url, progress=False) == "downloaded"
    assert sorted(os.listdir(glue)) == ["MRPC"]
    assert sorted(os.listdir(glue / "MRPC")) == ["dev.tsv", "test.tsv", "train.tsv"]
    header = BOM + "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    assert (glue / "MRPC" / "train.tsv").read_text(encoding="utf-8") == header + (
        "1\t702876\t702977\tAmrozi \" the witness \" .\tReferring to him .\n"
        "0\t3344667\t3344648\tAround 0335 GMT .\tAt 5 p.m. .\n")
    assert (glue / "MRPC" / "dev.tsv").read_text(encoding="utf-8") == header + (
        "0\t2108705\t2108831\tYucaipa owned .\tYucaipa bought .\n"
        "1\t1330381\t1330521\tThey had published .\tOn Tuesday .\n")    # trailing spaces stripped
    assert (glue / "MRPC" / "test.tsv").read_text(encoding="utf-8") == (
        "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
        "0\t1089874\t1089925\tPCCW 's chief .\tCurrent Chief .\n"
        "1\t3019446\t3019327\tThe world 's .\tDomestic sales .\n")
    dev = load_split("mrpc", "dev", glue)
    np.testing.assert_array_equal(dev.labels, [0, 1])
    assert len(load_split("mrpc", "test", glue)) == 2


def test_checksum_mismatch_leaves_nothing_behind(mirror, tmp_path):
    _, url = mirror
    glue = tmp_path / "glue"
    with pytest.raises(DownloadError, match="sha256"):
        download_task("cola", glue, url, checksums=True, progress=False)   # our zip is not the official one
    assert os.listdir(glue) == []


def test_fetch_verifies_a_matching_checksum(mirror, tmp_path):
    root, url = mirror
    data = (root / ARCHIVES["cola"].path).read_bytes()
    dest = fetch(f"{url}/{ARCHIVES['cola'].path}", tmp_path / "CoLA.zip", hashlib.sha256(data).hexdigest(),
                 progress=False)
    assert dest.read_bytes() == data
    assert sorted(os.listdir(tmp_path)) == ["CoLA.zip", "mirror"]          # the temporary file is gone


def test_missing_file_on_the_server(mirror, tmp_path):
    _, url = mirror
    with pytest.raises(DownloadError, match="RTE.zip: HTTP 404"):
        download_task("rte", tmp_path / "glue", url, progress=False)
    assert os.listdir(tmp_path / "glue") == []


def corrupt(zip_bytes, old, new):
    assert zip_bytes.count(old) == 1
    return zip_bytes.replace(old, new)


@pytest.mark.parametrize("data, message", [
    (corrupt(build_zip({"WNLI/train.tsv": "index\tsentence1\tsentence2\tlabel\n"}, zipfile.ZIP_STORED),
             b"sentence1", b"sentence9"), "fails its CRC check"),
    (b"<html>not a zip</html>", "not a valid zip"),
    (build_zip({"../evil.tsv": "x"}), "outside the folder"),
    (build_zip({"/etc/evil.tsv": "x"}), "outside the folder"),
    (build_zip({"Other/train.tsv": "x"}), "holds no WNLI/ folder"),
])
def test_a_bad_archive_is_refused_before_extraction(mirror, tmp_path, data, message):
    root, url = mirror
    publish(root, ARCHIVES["wnli"].path, data)
    glue = tmp_path / "glue"
    with pytest.raises(DownloadError, match=message):
        download_task("wnli", glue, url, progress=False)
    assert os.listdir(glue) == []
    assert not (tmp_path / "evil.tsv").exists()


def test_extract_zip_tests_before_writing(tmp_path):
    archive = tmp_path / "bad.zip"
    archive.write_bytes(corrupt(build_zip({"A/x.tsv": "abcdef"}, zipfile.ZIP_STORED), b"abcdef", b"abcdeg"))
    with pytest.raises(DownloadError, match="'A/x.tsv' fails its CRC check"):
        extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_base_url_precedence(monkeypatch):
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    assert base_url() == OFFICIAL_BASE_URL == "https://dl.fbaipublicfiles.com"
    monkeypatch.setenv(BASE_URL_ENV, "http://mirror.example/glue/")
    assert base_url() == "http://mirror.example/glue"
    assert base_url("http://other") == "http://other"


def test_env_base_url_is_used(mirror, tmp_path, monkeypatch):
    _, url = mirror
    monkeypatch.setenv(BASE_URL_ENV, url)
    assert download_task("cola", tmp_path / "glue", progress=False) == "downloaded"


def test_download_command(mirror, tmp_path, capsys):
    _, url = mirror
    glue = tmp_path / "glue"
    args = ["download", "--tasks", "cola,mrpc", "--dir", str(glue), "--base-url", url, "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "cola: downloaded" in out and "mrpc: downloaded" in out
    assert main(args) == 0
    assert "cola: present" in capsys.readouterr().out
    assert main(["download", "--tasks", "cola,nope", "--dir", str(glue)]) == 1          # a user error, as everywhere
    assert "unknown GLUE task 'nope'" in capsys.readouterr().err
    assert main(["download", "--tasks", " , ", "--dir", str(glue)]) == 1
    assert "no task names" in capsys.readouterr().err
    assert main(["download", "--tasks", "rte", "--dir", str(glue), "--base-url", url, "--quiet"]) == 1
    assert "error: rte not downloaded: " in capsys.readouterr().err


def test_parse_task_list():
    assert [t.name for t in parse_task_list("SST-2, cola,sts-b")] == ["sst2", "cola", "stsb"]
    assert parse_task_list("all") == list(TASKS.values())
    assert set(ARCHIVES) | {"mrpc"} == set(TASKS)          # every task has a source


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_assemble_mrpc_errors(tmp_path):
    train = write(tmp_path / "train.txt", MRPC_TRAIN_TXT + "1\tonly three\tfields\n")
    test = write(tmp_path / "test.txt", MRPC_TEST_TXT)
    ids = write(tmp_path / "ids.tsv", MRPC_DEV_IDS)
    with pytest.raises(GlueFormatError, match=r"train.txt:6: expected 5 tab-separated fields, found 3"):
        assemble_mrpc(train, test, ids, tmp_path / "out")
    train = write(tmp_path / "train.txt", MRPC_TRAIN_TXT)
    ids = write(tmp_path / "ids.tsv", MRPC_DEV_IDS + "1\t2\n")
    with pytest.raises(ValueError, match=r"1 dev id pair\(s\) not in"):
        assemble_mrpc(train, test, ids, tmp_path / "out")


@pytest.mark.glue
def test_assembly_reproduces_the_real_mrpc_files(tmp_path):
    """Sources rebuilt from the real files (train rows then dev rows; the test
    labels replaced by 0) must give back the real files byte for byte."""
    glue = os.environ.get("GLUE_DIR")
    folder = Path(glue or ".") / "MRPC"
    if not glue or not all((folder / f"{s}.tsv").is_file() for s in ("train", "dev", "test")):
        pytest.skip("needs GLUE_DIR with MRPC train, dev and test")
    real = {s: (folder / f"{s}.tsv").read_bytes() for s in ("train", "dev", "test")}
    train_lines = real["train"].decode("utf-8").split("\n")
    dev_lines = real["dev"].decode("utf-8").split("\n")[1:]
    source_train = write(tmp_path / "msr_paraphrase_train.txt", "\n".join(train_lines[:-1] + dev_lines))
    ids = write(tmp_path / "dev_ids.tsv",
                "".join("\t".join(row.split("\t")[1:3]) + "\n" for row in dev_lines if row))
    test_rows = [row.split("\t") for row in real["test"].decode("utf-8").split("\n")[1:] if row]
    source_test = write(tmp_path / "msr_paraphrase_test.txt",
                        "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                        + "".join("\t".join(["0"] + r[1:]) + "\n" for r in test_rows))
    out = assemble_mrpc(source_train, source_test, ids, tmp_path / "MRPC")
    for split, data in real.items():
        assert (out / f"{split}.tsv").read_bytes() == data, split


# ---- the network failing: every fault is one DownloadError line, nothing is left behind ------------------
class FaultyHandler(http.server.BaseHTTPRequestHandler):
    """/cut: 100 of 1000 announced bytes, then the connection closes; /slow: a byte every 0.3 s, forever;
    /loop: a redirect to itself; /404, /500: those statuses; /silent: headers, then nothing."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        if name in ("404", "500"):
            self.send_error(int(name))
        elif name == "loop":
            self.send_response(302)
            self.send_header("Location", self.path)
            self.end_headers()
        elif name in ("cut", "slow", "silent"):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            if name == "cut":
                self.wfile.write(b"x" * 100)
                self.wfile.flush()
                self.connection.shutdown(2)
            elif name == "slow":
                try:
                    for _ in range(200):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.3)
                except OSError:
                    pass
            else:
                time.sleep(3)


def serve(handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def faulty():
    server, url = serve(FaultyHandler)
    yield url
    server.shutdown()
    server.server_close()


@pytest.fixture
def garbage():
    """A TCP server on 127.0.0.1 answering every connection with bytes that are not HTTP, then closing."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    stop = threading.Event()

    def answer():
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                conn.recv(4096)
                conn.sendall(b"\x00\xffthis is not HTTP at all\r\n\r\n")
    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    thread.join(timeout=2)
    sock.close()


@pytest.mark.parametrize("path, message", [
    ("cut", "received 100 bytes of 1000"),
    ("slow", "not complete after 1.5 s"),
    ("silent", "timed out"),
    ("404", "HTTP 404"),
    ("500", "HTTP 500"),
    ("loop", "redirect"),
])
def test_every_network_fault_is_one_line_and_leaves_nothing(faulty, tmp_path, path, message):
    start = time.monotonic()
    with pytest.raises(DownloadError) as err:
        fetch(f"{faulty}/{path}", tmp_path / "file.zip", progress=False, timeout=1, deadline=1.5)
    assert time.monotonic() - start < 6                        # given up on: no hang
    assert message in str(err.value) and "\n" not in str(err.value), err.value
    assert os.listdir(tmp_path) == []


def test_a_server_answering_garbage_is_one_line(garbage, tmp_path):
    with pytest.raises(DownloadError) as err:
        fetch(f"{garbage}/x.zip", tmp_path / "x.zip", progress=False, timeout=2, deadline=5)
    assert "\n" not in str(err.value) and garbage in str(err.value)
    assert os.listdir(tmp_path) == []


def test_a_refused_connection_and_a_bad_address_are_one_line(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()                                                  # nothing listens there now
    for url in (f"http://127.0.0.1:{port}/x.zip", "nosuchscheme://x/y.zip", "http://127.0.0.1:99999/x.zip"):
        with pytest.raises(DownloadError) as err:
            fetch(url, tmp_path / "x.zip", progress=False, timeout=2, deadline=5)
        assert "\n" not in str(err.value) and url in str(err.value)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("path", ["cut", "slow", "404", "loop"])
def test_the_download_command_fails_in_one_line_and_keeps_the_old_task(faulty, tmp_path, capsys, path):
    """``download --force`` from a failing server: one error line, status 1, the old folder as it was."""
    glue = tmp_path / "glue"
    (glue / "WNLI").mkdir(parents=True)
    (glue / "WNLI" / "train.tsv").write_text("old")
    remote = Path(ARCHIVES["wnli"].path)
    url = f"{faulty}/{path}?" if path != "404" else faulty      # '?': the task's path is ignored by the server
    status = main(["download", "--tasks", "wnli", "--dir", str(glue), "--base-url", url, "--force", "--quiet",
                   "--deadline", "1.5"])
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1 and err.startswith("error: wnli not downloaded: "), err
    assert f"(--dir {glue}): check the network" in err
    assert os.listdir(glue) == ["WNLI"] and (glue / "WNLI" / "train.tsv").read_text() == "old"
    assert remote.name


def test_force_replaces_a_task_only_with_a_complete_one(mirror, tmp_path):
    """An archive that lacks the dev split is refused before the old folder is touched."""
    root, url = mirror
    publish(root, ARCHIVES["wnli"].path, build_zip({"WNLI/train.tsv": "index\tsentence1\tsentence2\tlabel\n"}))
    glue = tmp_path / "glue"
    (glue / "WNLI").mkdir(parents=True)
    (glue / "WNLI" / "dev.tsv").write_text("old")
    with pytest.raises(DownloadError, match="WNLI/ lacks dev.tsv"):
        download_task("wnli", glue, url, force=True, progress=False)
    assert os.listdir(glue) == ["WNLI"] and os.listdir(glue / "WNLI") == ["dev.tsv"]


def test_leftovers_of_a_killed_download_are_tidied(mirror, tmp_path):
    """A staging folder and a .part file of a dead process go, a task set aside is put back, a live process's stay."""
    _, url = mirror
    glue = tmp_path / "glue"
    glue.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (glue / f".CoLA.tmp-{dead}-abcd").mkdir()
    (glue / f".CoLA.tmp-{dead}-abcd" / "CoLA.zip").write_text("partial")
    (glue / f".CoLA.tmp-{os.getpid()}-live").mkdir()             # ours: alive, left alone
    (glue / ".CoLA.old").mkdir()
    (glue / ".CoLA.old" / "train.tsv").write_text("the old task")
    assert download_task("cola", glue, url, progress=False) == "present"     # put back, so present
    assert sorted(os.listdir(glue)) == [f".CoLA.tmp-{os.getpid()}-live", "CoLA"]
    assert (glue / "CoLA" / "train.tsv").read_text() == "the old task"
