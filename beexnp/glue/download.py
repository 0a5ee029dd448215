"""Fetch GLUE tasks from the official addresses into the GLUE directory.

Every task but MRPC is one zip that unpacks to the task's folder
(``CoLA.zip`` -> ``CoLA/``).  GLUE does not host MRPC: its ``train/dev/test.tsv``
are assembled from Microsoft's two source files and GLUE's list of dev ids,
exactly as the official ``download_glue_data.py`` does (``assemble_mrpc``).

Safety, in order:

1. each file is streamed (with a tqdm progress bar) into a temporary file
   beside its destination, and renamed only once it is whole;
2. its sha256 is checked against the official one when known (all but QNLI,
   RTE and WNLI).  A copy served from another address (``--base-url`` or
   ``$BEEXNP_GLUE_BASE_URL``) is not checked unless asked, since a mirror or
   a test server may serve other bytes; ``--no-checksum`` skips it too;
3. a zip is tested (``ZipFile.testzip``: every member's CRC) and its member
   names must stay inside the folder, before anything is extracted;
4. the task folder is built in a staging folder, checked (its training and dev files are there) and
   moved into place last, so an interrupted download never leaves a half-written task behind; with
   ``force`` the old folder is set aside (``.TASK.old``) only then, and removed once the new one is in
   place.  What a killed download left (a staging folder, a ``.part`` file, an aside copy) is tidied by
   the next download into that folder: an aside copy whose task folder is missing is put back.

Every failure of the network (refused, reset, cut mid-transfer, a server answering garbage, HTTP errors,
redirect loops, a socket silent for ``timeout`` seconds) and a file that takes more than ``deadline``
seconds in all (a server that trickles a byte every few seconds) is one ``DownloadError`` line.

The remote paths below are relative to the base address (official:
``https://dl.fbaipublicfiles.com``), so a mirror only needs the same layout.

``ensure_task`` is "data on first use": the commands that read a task (``train``,
``evaluate``, ``sweep``, ``data``) call it, and it downloads a task no GLUE directory
holds, unless ``--no-download`` or ``$BEEXNP_NO_DOWNLOAD`` says not to.
"""
import hashlib
import http.client
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from beexnp.glue.location import DEFAULT_DIR, ENV_VAR, download_command, download_dir, find_glue_dir
from beexnp.glue.reader import GlueFormatError
from beexnp.glue.tasks import TASKS, get_task
from beexnp.outputs import clean_leftovers, fsync_dir, one_line, problem, temp_prefix, writable

OFFICIAL_BASE_URL = "https://dl.fbaipublicfiles.com"
BASE_URL_ENV = "BEEXNP_GLUE_BASE_URL"
NO_DOWNLOAD_ENV = "BEEXNP_NO_DOWNLOAD"       # set (to anything but 0): a missing task is an error, never fetched
DEADLINE = 3600.0                            # seconds one file may take in all
TIMEOUT = 60.0                               # seconds the socket may stay silent


@dataclass(frozen=True)
class Remote:
    """A file at ``<base url>/<path>``, with its sha256 when known."""

    path: str
    sha256: str | None = None


# Official files and checksums (huggingface/datasets' dataset_infos.json; see
# the GLUE download notes).  QQP is the cleaned version GLUE distributes now.
ARCHIVES = {
    "cola": Remote("glue/data/CoLA.zip", "f212fcd832b8f7b435fb991f101abf89f96b933ab400603bf198960dfc32cbff"),
    "sst2": Remote("glue/data/SST-2.zip", "d67e16fb55739c1b32cdce9877596db1c127dc322d93c082281f64057c16deaa"),
    "qqp": Remote("glue/data/QQP-clean.zip", "40e7c862c04eb26ee04b67fd900e76c45c6ba8e6d8fab4f8f1f8072a1a3fbae0"),
    "stsb": Remote("glue/data/STS-B.zip", "e60a6393de5a8b5b9bac5020a1554b54e3691f9d600b775bd131e613ac179c85"),
    "mnli": Remote("glue/data/MNLI.zip", "e7c1d896d26ed6caf700110645df426cc2d8ebf02a5ab743d5a5c68ac1c83633"),
    "qnli": Remote("glue/data/QNLIv2.zip"),
    "rte": Remote("glue/data/RTE.zip"),
    "wnli": Remote("glue/data/WNLI.zip"),
}
MRPC_SOURCES = {
    "msr_paraphrase_train.txt": Remote("senteval/senteval_data/msr_paraphrase_train.txt",
                                       "60a9b09084528f0673eedee2b69cb941920f0b8cd0eeccefc464a98768457f89"),
    "msr_paraphrase_test.txt": Remote("senteval/senteval_data/msr_paraphrase_test.txt",
                                      "a04e271090879aaba6423d65b94950c089298587d9c084bf9cd7439bd785f784"),
    "dev_ids.tsv": Remote("glue/data/mrpc_dev_ids.tsv",
                          "971d7767d81b997fd9060ade0ec23c4fc31cbb226a55d1bd4a1bac474eb81dc7"),
}
MRPC_TEST_HEADER = "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n"


class DownloadError(RuntimeError):
    """A download failed or its content did not verify."""


def base_url(url=None):
    """The base address: ``url``, else ``$BEEXNP_GLUE_BASE_URL``, else the official one."""
    return (url or os.environ.get(BASE_URL_ENV) or OFFICIAL_BASE_URL).rstrip("/")


def fetch(url, dest, sha256=None, progress=True, timeout=TIMEOUT, deadline=DEADLINE):
    """Download ``url`` to ``dest`` through a temporary file renamed when whole; with ``sha256``, a different
    checksum raises DownloadError (and nothing is left behind).  Any failure of the network, a socket
    silent for ``timeout`` seconds, or more than ``deadline`` seconds in all is one DownloadError line."""
    dest = Path(dest)
    digest = hashlib.sha256()
    clean_leftovers(dest.parent, dest.name)
    handle, temp = tempfile.mkstemp(dir=dest.parent, prefix=temp_prefix(dest.name), suffix=".part")
    give_up = time.monotonic() + deadline
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=min(timeout, deadline)) as response:
            expected = response.headers.get("Content-Length")
            expected = int(expected) if expected is not None and expected.isdigit() else None
            with tqdm(total=expected, unit="B", unit_scale=True, unit_divisor=1024,
                      desc=dest.name, disable=not progress) as bar:
                while chunk := response.read1(1 << 16):          # returns what one read gives: never waits for 64 KiB
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
                    if time.monotonic() > give_up:
                        raise DownloadError(f"{url}: not complete after {deadline:g} s ({out.tell()} bytes so far; "
                                            "the server is too slow; try again later or use --base-url)")
            received = out.tell()
        if expected is not None and received != expected:
            raise DownloadError(f"{url}: received {received} bytes of {expected} (the transfer was cut; try again)")
        if sha256 is not None and digest.hexdigest() != sha256:
            raise DownloadError(f"{url}: sha256 {digest.hexdigest()} differs from the official {sha256} "
                                f"(a corrupt or different file; --no-checksum skips this check)")
        os.replace(temp, dest)
    except urllib.error.HTTPError as err:     # before URLError: it is one
        raise DownloadError(one_line(f"{url}: HTTP {err.code} {err.reason}")) from err
    except urllib.error.URLError as err:
        raise DownloadError(one_line(f"{url}: {getattr(err, 'reason', err)}")) from err
    except (http.client.HTTPException, OSError, ValueError) as err:   # cut, garbage, reset, timeout, bad address
        raise DownloadError(one_line(f"{url}: {type(err).__name__}: {str(err)[:200] or 'no answer'}")) from err
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    return dest


def extract_zip(archive, into):
    """Test ``archive`` (every member's CRC, no member outside ``into``) and extract it into ``into``."""
    try:
        with zipfile.ZipFile(archive) as zf:
            broken = zf.testzip()
            if broken is not None:
                raise DownloadError(f"{archive}: member {broken!r} fails its CRC check")
            for name in zf.namelist():
                member = PurePosixPath(name)
                if member.is_absolute() or ".." in member.parts:
                    raise DownloadError(f"{archive}: member {name!r} would be written outside the folder")
            zf.extractall(into)
    except zipfile.BadZipFile as err:
        raise DownloadError(f"{archive}: not a valid zip archive ({err})") from err


def _split_row(row, path, line):
    """The 5 tab-separated fields of an MRPC source row (the row stripped first)."""
    fields = row.strip().split("\t")
    if len(fields) != 5:
        raise GlueFormatError(path, line, f"expected 5 tab-separated fields, found {len(fields)}")
    return fields


def assemble_mrpc(train_txt, test_txt, dev_ids_tsv, out_dir):
    """Write MRPC's ``train.tsv``, ``dev.tsv`` and ``test.tsv`` into ``out_dir``
    as the official GLUE script does:

    * test: the source header is replaced by ``index #1 ID #2 ID #1 String
      #2 String`` and each row's label by a running index from 0;
    * train/dev: the source header is copied unchanged (with its BOM: the file
      is read as plain UTF-8) into both; a row whose (id1, id2) is in the dev
      id list goes to dev, every other row to train, in source order.

    Rows are stripped and re-joined with tabs.  Raises ValueError when some
    dev id pair is not in the training source."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(dev_ids_tsv, encoding="utf-8") as ids:
        dev_ids = {tuple(row.strip().split("\t")) for row in ids if row.strip()}

    with open(test_txt, encoding="utf-8") as source, \
            open(out_dir / "test.tsv", "w", encoding="utf-8", newline="\n") as test:
        source.readline()
        test.write(MRPC_TEST_HEADER)
        for index, row in enumerate(source):
            _, id1, id2, s1, s2 = _split_row(row, test_txt, index + 2)
            test.write(f"{index}\t{id1}\t{id2}\t{s1}\t{s2}\n")

    found = set()
    with open(train_txt, encoding="utf-8") as source, \
            open(out_dir / "train.tsv", "w", encoding="utf-8", newline="\n") as train, \
            open(out_dir / "dev.tsv", "w", encoding="utf-8", newline="\n") as dev:
        header = source.readline()
        train.write(header)
        dev.write(header)
        for line, row in enumerate(source, start=2):
            fields = _split_row(row, train_txt, line)
            pair = (fields[1], fields[2])
            if pair in dev_ids:
                dev.write("\t".join(fields) + "\n")
                found.add(pair)
            else:
                train.write("\t".join(fields) + "\n")
    missing = dev_ids - found
    if missing:
        raise ValueError(f"{dev_ids_tsv}: {len(missing)} dev id pair(s) not in {train_txt}, "
                         f"e.g. {sorted(missing)[0]}")
    return out_dir


def aside(target):
    """Where ``download_task(force=True)`` sets a task folder aside until its replacement is in place."""
    return target.parent / f".{target.name}.old"


def tidy(glue_dir, task_dir):
    """Tidy ``glue_dir`` after a killed download of ``task_dir``: put an aside copy back when the task folder is
    missing (a kill between the two renames), else drop it; remove dead processes' staging folders and files."""
    target = glue_dir / task_dir
    old = aside(target)
    if old.is_dir() and not target.exists():
        os.replace(old, target)
    elif old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    clean_leftovers(glue_dir, task_dir)


def check_task_folder(folder, task, url):
    """The files a command reads (training and dev splits) are in the downloaded ``folder``."""
    if not folder.is_dir():
        raise DownloadError(f"{url}: the {task.name} archive holds no {task.dir}/ folder")
    missing = [task.splits[s] for s in ("train", *task.dev_splits) if not (folder / task.splits[s]).is_file()]
    if missing:
        raise DownloadError(f"{url}: the {task.name} archive's {task.dir}/ lacks {', '.join(missing)}")


def download_task(task, glue_dir=DEFAULT_DIR, url=None, checksums=None, force=False, progress=True,
                  deadline=DEADLINE):
    """Download one task into ``glue_dir/<task dir>``.  Returns "present"
    (already there, nothing done: ``force`` replaces it) or "downloaded".

    ``checksums``: verify sha256 where known; None (default) means only when
    downloading from the official address.  ``deadline``: seconds each file may take."""
    task = get_task(task)
    url = base_url(url)
    if checksums is None:
        checksums = url == OFFICIAL_BASE_URL
    glue_dir = Path(glue_dir)
    target = glue_dir / task.dir
    if glue_dir.is_dir():
        tidy(glue_dir, task.dir)
    if target.exists() and not force:
        return "present"
    glue_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=glue_dir, prefix=temp_prefix(task.dir)))
    try:
        if task.name == "mrpc":
            sources = {name: fetch(f"{url}/{remote.path}", staging / name,
                                   remote.sha256 if checksums else None, progress, deadline=deadline)
                       for name, remote in MRPC_SOURCES.items()}
            assemble_mrpc(sources["msr_paraphrase_train.txt"], sources["msr_paraphrase_test.txt"],
                          sources["dev_ids.tsv"], staging / task.dir)
        else:
            remote = ARCHIVES[task.name]
            archive = fetch(f"{url}/{remote.path}", staging / PurePosixPath(remote.path).name,
                            remote.sha256 if checksums else None, progress, deadline=deadline)
            extract_zip(archive, staging)
        check_task_folder(staging / task.dir, task, url)
        if target.exists():
            os.replace(target, aside(target))           # the old one leaves only now that the new one is whole
        os.replace(staging / task.dir, target)
        fsync_dir(glue_dir)
        shutil.rmtree(aside(target), ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return "downloaded"


def ensure_task(task, glue_dir=None, download=True, url=None, progress=True, deadline=DEADLINE):
    """The GLUE directory that holds ``task`` (``find_glue_dir``); when none does, download the task
    first (``download_task``) into ``download_dir(glue_dir)`` -- ``glue_dir``, else ``$GLUE_DIR``,
    else ``data/glue`` -- and say so in one line on stderr.

    Nothing is written when the task is found.  ``download=False``, or ``$BEEXNP_NO_DOWNLOAD`` set
    to anything but 0, turns the download off: a missing task raises ``find_glue_dir``'s
    FileNotFoundError (every place looked at).  A failed download, or a target folder this process
    cannot write, raises a one-line FileNotFoundError naming ``GLUE_DIR`` and the command to run."""
    task = get_task(task)
    try:
        return find_glue_dir(glue_dir, task)
    except FileNotFoundError:
        if not download or os.environ.get(NO_DOWNLOAD_ENV, "0") not in ("", "0"):
            raise
    where, target = download_dir(glue_dir)
    missing = f"GLUE task {task.name}: {task.dir}/ is in no GLUE directory"
    if not writable(target):
        elsewhere = (f"fetch it into data/glue, which is read after ${ENV_VAR}: {download_command(task, DEFAULT_DIR)}"
                     if where == f"${ENV_VAR}" else
                     f"fetch it into a folder you can write ({download_command(task, 'DIR')}) and point {ENV_VAR} "
                     f"(or --glue-dir) at that folder")
        raise FileNotFoundError(f"{missing}, and {target} ({where}) is not writable, so it cannot be "
                                f"downloaded there; {elsewhere}")
    url = base_url(url)
    print(f"{missing}; downloading it from {url} into {target / task.dir} "
          f"(--no-download or {NO_DOWNLOAD_ENV}=1 turns this off)", file=sys.stderr, flush=True)
    try:
        download_task(task, target, url, progress=progress, deadline=deadline)
    except (DownloadError, GlueFormatError, ValueError, OSError, http.client.HTTPException) as err:
        reason = one_line(err)                                # one line, whatever the server said
        raise FileNotFoundError(f"{missing}, and downloading it failed ({reason}); set {ENV_VAR} (or --glue-dir) "
                                f"to a folder that holds {task.dir}/, or fetch it from a mirror: "
                                f"{download_command(task, target, 'URL')}") from err
    return target


def parse_task_list(text):
    """"sst2,cola" -> [Task, Task]; "all" -> every task."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError(problem(f"no task names in {text!r}", "--tasks", f"give some of: all, {', '.join(TASKS)}"))
    if names == ["all"]:
        return list(TASKS.values())
    return [get_task(name) for name in names]
