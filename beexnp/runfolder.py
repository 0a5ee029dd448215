"""A run's output folder: what a run writes there, stop requests, notes about its checkpoints, its data.

    OUT/best, OUT/last      checkpoints (``beexnp.checkpoint``), written whole
    OUT/history.json        the epochs' records, written whole
    OUT/.lock               held while a run writes there

The ``Trainer`` (``beexnp.train``) computes; this module keeps the folder:
``StopRequest`` (Ctrl-C, SIGTERM or SIGHUP asks the loop to stop at the end of the step),
``opened`` (tidies after a killed save, brings a resumed run's ``best`` along),
``checkpoint_note`` (which checkpoint there is to go back to, in words), and
``data_checksums`` / ``check_data`` (the sha256 of every data file a run read,
recorded in its card, so that a resume on changed data is refused).
"""
import contextlib
import hashlib
import json
import signal
import sys
from pathlib import Path

from beexnp.checkpoint import copy_checkpoint, has_checkpoint, read_card, recover_checkpoints
from beexnp.glue.location import find_glue_dir
from beexnp.outputs import RUN_FILES, STOP_SIGNALS, Terminated, signal_name, write_whole  # noqa: F401 (RUN_FILES: re-exported)



class StopRequest:
    """Ctrl-C, SIGTERM or SIGHUP while ``fit`` runs (a user, ``kill``, a closing terminal, a job scheduler, a
    container stop): the first asks the loop to stop at the end of the current step (``check``), so that the
    state it saves is one the run really reached.  Inside ``at_once()`` (a dev evaluation, which changes
    nothing) one stops at once.  ``check`` raises KeyboardInterrupt for Ctrl-C, ``Terminated`` (a
    KeyboardInterrupt) for the others."""

    def __init__(self):
        self.requested, self.immediate, self.previous = None, False, {}

    def __enter__(self):
        self.requested, self.previous = None, {}
        try:
            for sig in STOP_SIGNALS:
                self.previous[sig] = signal.signal(sig, self.handler)
        except ValueError:                            # not the main thread: no signal can reach us here
            self.__exit__()
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self.previous = {}

    def interrupt(self):
        raise KeyboardInterrupt if self.requested in (None, signal.SIGINT) else Terminated(self.requested)

    def handler(self, signum, frame):
        first = self.requested is None
        if first:
            self.requested = signum
        if self.immediate:
            self.interrupt()
        if first:
            name = "Ctrl-C" if signum == signal.SIGINT else signal_name(signum)
            print(f"\n{name}: stopping at the end of this step, once 'last' is saved", file=sys.stderr, flush=True)

    def check(self):
        if self.requested is not None:
            self.interrupt()

    @contextlib.contextmanager
    def at_once(self):
        """A block that changes nothing (a dev evaluation): Ctrl-C stops it at once."""
        self.check()
        self.immediate = True
        try:
            yield
        finally:
            self.immediate = False


def prepare(out, history, best_source=None):
    """Before a run writes into ``out`` (holding its lock): tidy after a killed save (said on stderr), copy a
    resumed run's ``best`` from ``best_source`` if ``out`` has none, and write the history so far."""
    for line in recover_checkpoints(out, RUN_FILES):
        print(line, file=sys.stderr)
    if best_source is not None and not has_checkpoint(out / "best"):
        copy_checkpoint(best_source, out / "best")        # the state's best_score is its score
    if history:
        write_history(out, history)


def write_history(out, history):
    """``OUT/history.json``, written whole."""
    text = json.dumps(history, indent=1).encode()
    write_whole(Path(out) / "history.json", lambda f: f.write(text))


def checkpoint_note(out, name="last"):
    """Which checkpoint ``OUT/name`` there is to go back to, in words."""
    folder = Path(out) / name
    if not has_checkpoint(folder):
        return f"no '{name}' checkpoint was written yet"
    try:
        return f"the last good checkpoint is {folder} (step {read_card(folder)['state']['step']})"
    except (ValueError, KeyError, TypeError) as err:
        return f"{folder} cannot be read ({err})"


def older_history(source, epochs):
    """The history of a checkpoint from before the card held it: ``source/history.json``'s first ``epochs``."""
    path = Path(source) / "history.json"
    return json.loads(path.read_text())[:epochs] if path.exists() else []


# ---- the data a run read ------------------------------------------------------------------------
def data_files(task, glue_dir=None):
    """{name relative to the GLUE folder: path} of the files a run on ``task`` reads: train and every dev split."""
    root = find_glue_dir(glue_dir, task)
    names = [f"{task.dir}/{task.splits[split]}" for split in ("train", *task.dev_splits)]
    return {name: root / name for name in names}


def sha256_file(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def data_checksums(task, glue_dir=None):
    """{file name relative to the GLUE folder: sha256} of the data files a run on ``task`` reads (those present:
    a missing one is reported by the reader, naming it)."""
    return {name: sha256_file(path) for name, path in data_files(task, glue_dir).items() if path.is_file()}


def check_data(recorded, task, glue_dir, checkpoint):
    """Refuse (one line, naming the file) a resume whose data files differ from those the run read (``recorded``,
    from its card); a card from before the checksums were recorded (``recorded`` None) is resumed with a warning.
    Returns the checksums of the files now."""
    now = data_checksums(task, glue_dir)
    if recorded is None:
        print(f"warning: {checkpoint} records no checksum of its data files (saved by an older beexnp): resuming "
              "without checking that the data are those the run read", file=sys.stderr)
        return now
    paths = data_files(task, glue_dir)
    for name, digest in sorted(recorded.items()):
        if name not in now:
            raise FileNotFoundError(f"{name}, read by the run, is missing ({paths.get(name, name)}): resume with "
                                    "the data the run read (--glue-dir)")
        if now[name] != digest:
            raise ValueError(f"{name} changed since the run read it: sha256 {now[name][:12]}..., the checkpoint "
                             f"recorded {digest[:12]}... ({paths[name]}): resume with the data the run read "
                             "(--glue-dir), or start again with --overwrite")
    return now
