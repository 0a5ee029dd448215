"""Checkpoints: a folder with the weights, the trainer's state and a JSON card.

    CKPT/model.npz          every parameter, keyed by its dotted name
    CKPT/trainer.npz        optimizer moments (only in training checkpoints)
    CKPT/checkpoint.json    format version, model config, tokenizer, task,
                            metrics, training state, and the sha256 of each .npz

**Saving never leaves a half-written checkpoint.**  A checkpoint is written
whole into a temporary folder beside it (``.NAME.tmp-XXXX``, every file
fsynced), then swapped in by two renames:

    1. NAME            -> .NAME.old      the previous checkpoint, set aside
    2. .NAME.tmp-XXXX  -> NAME           the new one, complete
    3. .NAME.old is removed

A failing write (full disk, I/O error, a kill) before step 2 leaves the
previous ``NAME`` untouched; the temporary folder is removed, or, after a
kill, cleared by the next run (``recover_checkpoints``).  **Recovery rule**:
a kill between steps 1 and 2 leaves no ``NAME`` but a complete ``.NAME.old``,
and every reader (``read_checkpoint``, ``load_model``, ``Trainer.resume``)
then falls back to it (``checkpoint_folder``); a kill during step 3 leaves a
complete ``NAME`` beside a partial ``.NAME.old``, which is ignored and
removed.  At every instant one complete checkpoint can be loaded.  The card
names the checksums of the .npz files it belongs with, so a folder mixed by
hand is detected, never silently loaded.  Saving also holds Ctrl-C until the
swap is done.

**One run per output folder.**  ``output_lock(out)`` holds an exclusive
``flock`` on ``OUT/.lock`` while a run writes there; the operating system
releases it when the process ends, even by ``kill -9``.

Files get the permissions of an ordinary ``open`` (0666 less the umask), not
the 0600 of a temporary file.
"""
import contextlib
import errno
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from beexnp.config import ModelConfig
from beexnp.model import BEExformer
from beexnp.outputs import (CARD, LOCK, TMP_MARK, atomic_write, fsync_dir, interrupts_deferred,  # noqa: F401
                            temp_prefix, umask, write_file)

try:
    import fcntl                        # POSIX; elsewhere the output folder is not locked
except ImportError:                     # pragma: no cover
    fcntl = None

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    pass


class CheckpointMismatch(CheckpointError):
    """A file listed by the card is missing or does not match its checksum."""


class OutputInUse(ValueError):
    """Another process holds the output folder's lock."""


# ---- files and folders written whole ----------------------------------------------------
def aside(folder):
    """Where ``swap_in`` sets the previous checkpoint aside: ``.NAME.old`` beside it."""
    folder = Path(folder)
    return folder.parent / f".{folder.name}.old"


def swap_in(tmp, folder):
    """Put the complete folder ``tmp`` in the place of ``folder`` (module docstring, steps 1-3)."""
    old = aside(folder)
    if folder.exists():
        if old.exists():
            shutil.rmtree(old)                    # left by a kill during step 3: ``folder`` is the good one
        os.replace(folder, old)                   # step 1
    try:
        os.replace(tmp, folder)                   # step 2
    except BaseException:
        if old.exists() and not folder.exists():
            os.replace(old, folder)               # the rename failed: put the previous one back
        raise
    fsync_dir(folder.parent)
    shutil.rmtree(old, ignore_errors=True)        # step 3


@contextlib.contextmanager
def folder_written_whole(folder):
    """Yield a temporary folder beside ``folder`` to fill; when the block ends normally, swap it in.
    If the block (or the swap) fails, the temporary folder is removed and ``folder`` is unchanged."""
    folder = Path(folder)
    if folder.parent.exists() and not folder.parent.is_dir():
        raise NotADirectoryError(f"{folder.parent} is not a directory (writing {folder})")
    folder.parent.mkdir(parents=True, exist_ok=True)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file, not a checkpoint folder")
    with interrupts_deferred():
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(folder.name), dir=folder.parent))
        try:
            yield tmp
            os.chmod(tmp, 0o777 & ~umask())
            fsync_dir(tmp)
            swap_in(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def npz_bytes(arrays):
    """The bytes of ``np.savez(**arrays)``."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def save_checkpoint(folder, model, meta, trainer_arrays=None):
    """Write ``model``'s weights, optional trainer arrays, and ``meta`` (a JSON-able dict), whole."""
    folder = Path(folder)
    blobs = {"model.npz": npz_bytes(model.state_dict())}
    if trainer_arrays is not None:
        blobs["trainer.npz"] = npz_bytes(trainer_arrays)
    card = dict(meta, format_version=FORMAT_VERSION, model_config=model.config.to_dict(),
                files={name: _sha256(data) for name, data in blobs.items()})
    blobs[CARD] = json.dumps(card, indent=2, sort_keys=True).encode()
    with folder_written_whole(folder) as tmp:
        for name, data in blobs.items():                       # the card last
            write_file(tmp / name, lambda f: f.write(data))
    return folder


def copy_checkpoint(source, folder):
    """Copy the checkpoint ``source`` to ``folder``, swapped in whole as a save is."""
    source = checkpoint_folder(source)
    with folder_written_whole(folder) as tmp:
        for path in sorted(source.iterdir()):
            write_file(tmp / path.name, lambda f: f.write(path.read_bytes()))
    return Path(folder)


# ---- reading -------------------------------------------------------------------------------
def checkpoint_folder(folder):
    """The folder to read for the checkpoint ``folder``: itself, or, if a kill landed between the two
    renames of a save, its complete copy set aside (``.NAME.old``; module docstring)."""
    folder = Path(folder)
    if not (folder / CARD).is_file() and (aside(folder) / CARD).is_file():
        return aside(folder)
    return folder


def has_checkpoint(folder):
    return (checkpoint_folder(folder) / CARD).is_file()


def read_checkpoint(folder, attempts=3):
    """(card, {file name: bytes}) of a checkpoint, after checking the version and every checksum.

    A save swapping the folder while it is read (another process's run) can pair the old card with a
    new file: such a mismatch is read again, up to ``attempts`` times, before it is reported."""
    for attempt in range(attempts):
        try:
            return _read_checkpoint(Path(folder))
        except CheckpointMismatch:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05)


def _read_checkpoint(folder):
    where = checkpoint_folder(folder)
    card_path = where / CARD
    if not card_path.is_file():
        what = "does not exist" if not folder.exists() else f"{CARD} is missing"
        raise CheckpointError(f"{folder} is not a checkpoint: {what}")
    try:
        card = json.loads(card_path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{card_path}: not valid JSON ({err}); the checkpoint is damaged") from None
    if not isinstance(card, dict):
        raise CheckpointError(f"{card_path}: expected a JSON object, got {type(card).__name__}")
    version = card.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{card_path}: format version {version}, this beexnp reads {FORMAT_VERSION}")
    blobs = {}
    for name, digest in card.get("files", {}).items():
        if not (where / name).is_file():
            raise CheckpointMismatch(f"{where}: {name} is missing")
        blobs[name] = (where / name).read_bytes()
        if _sha256(blobs[name]) != digest:
            raise CheckpointMismatch(f"{where}: {name} does not match its checksum in {CARD} "
                                  "(damaged, or edited)")
    return card, blobs


def read_card(folder):
    """The checkpoint's JSON card, after checking the version and the files' checksums."""
    return read_checkpoint(folder)[0]


def arrays_from(blobs, name, folder):
    """{key: array} of the .npz file ``name`` among a checkpoint's ``blobs``."""
    if name not in blobs:
        raise CheckpointError(f"{folder}: {CARD} lists no {name}")
    try:
        with np.load(io.BytesIO(blobs[name]), allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (ValueError, OSError, EOFError) as err:
        raise CheckpointError(f"{folder}/{name}: unreadable ({err})") from None


def model_from(card, blobs, folder, config=None, dtype=np.float32):
    """The model a checkpoint's card and files describe; with ``config``, the stored config must equal it."""
    try:
        stored = ModelConfig.from_dict(card["model_config"])
    except ValueError as err:
        raise CheckpointError(f"{Path(folder) / CARD}: {err}") from None
    if config is not None and config != stored:
        diff = {k: (v, getattr(stored, k)) for k, v in config.to_dict().items() if getattr(stored, k) != v}
        raise CheckpointError(f"{folder}: config differs from the requested one (requested, stored): {diff}")
    model = BEExformer(stored, np.random.default_rng(0), dtype=dtype)
    try:
        model.load_state_dict(arrays_from(blobs, "model.npz", folder))
    except ValueError as e:
        raise CheckpointError(f"{folder}/model.npz: {e}") from None
    return model


def load_model(folder, config=None, dtype=np.float32):
    """(model, card) from a checkpoint folder.

    With ``config``, the stored config must equal it; every parameter's name
    and shape must match the model it describes (a clear error says which)."""
    card, blobs = read_checkpoint(folder)
    try:
        return model_from(card, blobs, folder, config, dtype), card
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"{Path(folder) / CARD}: incomplete card ({type(err).__name__}: {err})") from None


# ---- the output folder of a run -----------------------------------------------------------
_HELD = {}          # resolved folder -> [open lock file, depth]: re-entrant within one process


@contextlib.contextmanager
def output_lock(out):
    """Hold ``OUT/.lock`` (an exclusive flock) while the block runs; another process asking for it
    gets ``OutputInUse``.  Re-entrant within a process; the OS releases it if the process dies."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file, not an output folder")
    out.mkdir(parents=True, exist_ok=True)
    key = out.resolve()
    if key in _HELD:
        _HELD[key][1] += 1
    else:
        f = open(out / LOCK, "a+")
        try:
            if fcntl is not None:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            f.seek(0)
            holder = f.read().strip()
            f.close()
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise OutputInUse(f"{out} is in use by another run (pid {holder or '?'}, lock file {out / LOCK}); "
                              "wait for it to finish or choose another --out") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        _HELD[key] = [f, 1]
    try:
        yield out
    finally:
        _HELD[key][1] -= 1
        if not _HELD[key][1]:
            _HELD.pop(key)[0].close()          # closing the file releases the flock


def recover_checkpoints(out, names):
    """Tidy an output folder after a killed save (call it holding ``output_lock``): for each of the
    checkpoints and files ``names``, put a checkpoint that was set aside back in place if the new one
    never arrived, drop a stale aside copy and temporary files.  Returns what was done, one line each."""
    out = Path(out)
    done = []
    for name in names:
        folder, old = out / name, aside(out / name)
        if old.is_dir() and not folder.exists() and (old / CARD).is_file():
            os.replace(old, folder)
            done.append(f"restored {folder} from {old.name} (a save was interrupted)")
        elif old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    temporaries = [p for name in names for p in out.glob(f".{name}{TMP_MARK}*")]
    for tmp in sorted(temporaries):
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        done.append(f"removed {tmp.name} (left by an interrupted save)")
    return done
