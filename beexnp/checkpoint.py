"""Checkpoints: a folder with the weights, the trainer's state and a JSON card.

    CKPT/model.npz          every parameter, keyed by its dotted name
    CKPT/trainer.npz        optimizer moments (only in training checkpoints)
    CKPT/checkpoint.json    format version, model config, tokenizer, task,
                            metrics, training state, the sha256 of each .npz and
                            of each data file the run read, and its own sha256

**Opening checks everything once** (``open_checkpoint``): the card's version,
the files' checksums, then every field and the arrays against it
(``beexnp.card``: types, the vocabulary against the embedding's rows, the
task's label count, every parameter's shape, every weight finite).  A command
opens its checkpoint once and passes the ``Saved`` on; a violation is one line
naming the file and the field.

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
and every reader (``read_checkpoint``, hence ``open_checkpoint``, ``load_model``,
``Trainer.resume``) then falls back to it (``checkpoint_folder``); a kill during step 3 leaves a
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
import dataclasses
import errno
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from beexnp.card import (SELF_SUM, Card, CheckpointError, check_arrays, check_card, check_finite, type_name,
                         unusable, with_self_sum)
from beexnp.mlm import pretrain_layout
from beexnp.model import BEExformer
from beexnp.optim import OPTIMIZERS
from beexnp.outputs import (CARD, LOCK, TMP_MARK, atomic_write, fsync_dir, interrupts_deferred,  # noqa: F401
                            temp_prefix, umask, write_file)

try:
    import fcntl                        # POSIX; elsewhere the output folder is not locked
except ImportError:                     # pragma: no cover
    fcntl = None

FORMAT_VERSION = 2                  # 2: the card carries its own checksum (``beexnp.card``); 1 is read too
READS = (1, 2)
NPZ_FILES = ("model.npz", "trainer.npz")


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
    card = with_self_sum(dict(meta, format_version=FORMAT_VERSION, model_config=model.config.to_dict(),
                              files={name: _sha256(data) for name, data in blobs.items()}))
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


def json_error(err):
    """What is wrong with a JSON text, in words (a RecursionError: nested deeper than Python reads)."""
    return "nested too deeply" if isinstance(err, RecursionError) else str(err)


NOT_A_CHECKPOINT = "give a checkpoint folder (OUT/best or OUT/last of a run)"


def _read_checkpoint(folder):
    where = checkpoint_folder(folder)
    card_path = where / CARD
    if not card_path.is_file():
        if not folder.exists():
            what = "nothing there"
        elif not folder.is_dir():
            what = "a file, not a checkpoint folder"
        else:
            what = f"the folder has no {CARD}"
        raise unusable(f"not a checkpoint: {what}", folder, NOT_A_CHECKPOINT)
    try:
        card = json.loads(card_path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise unusable(f"not valid JSON: {json_error(err)}", card_path) from None
    except OSError as err:
        raise unusable(f"cannot be read ({err.strerror or err})", card_path, NOT_A_CHECKPOINT) from None
    if not isinstance(card, dict):
        raise unusable(f"the card must be a JSON object, got {type_name(card)}", card_path)
    version = card.get("format_version")
    if version not in READS or isinstance(version, bool):
        raise unusable(f"format_version is {version!r}, this beexnp reads {', '.join(map(str, READS))}", card_path,
                      "the checkpoint was written by another version of beexnp, or the card was edited")
    if version >= 2 and SELF_SUM not in card:
        raise unusable(f"{SELF_SUM} is missing (every card of format {version} has it)", card_path)
    files = card.get("files")
    if not isinstance(files, dict) or "model.npz" not in files or not set(files) <= set(NPZ_FILES) \
            or not all(isinstance(v, str) for v in files.values()):
        raise unusable(f"files must map model.npz (and trainer.npz) to their sha256, got {files!r}", card_path)
    blobs = {}
    for name, digest in files.items():
        if not (where / name).is_file():
            raise unusable(f"{name} is missing", where, kind=CheckpointMismatch)
        blobs[name] = (where / name).read_bytes()
        if _sha256(blobs[name]) != digest:
            raise unusable(f"{name} does not match its checksum in {CARD}", where, kind=CheckpointMismatch)
    return card, blobs


def read_card(folder):
    """The checkpoint's JSON card, after checking the version and the files' checksums."""
    return read_checkpoint(folder)[0]


def npz_arrays(data, path):
    """{key: array} of an .npz file (its bytes, or its path; no pickles); anything unreadable (not a zip, a
    truncated or damaged member, a bare .npy) is one line naming ``path``."""
    try:
        f = np.load(io.BytesIO(data) if isinstance(data, bytes) else data, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise ValueError("a single .npy array, not an .npz archive")
        with f:
            return {k: f[k] for k in f.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError, RuntimeError, TypeError) as err:
        why = "neither a zip archive nor an array" if "pickle" in str(err) else f"{type(err).__name__}: {err}"
        raise unusable(f"not a readable .npz archive ({why})", path) from None


def arrays_from(blobs, name, folder):
    """{key: array} of the .npz file ``name`` among a checkpoint's ``blobs``."""
    if name not in blobs:
        raise unusable(f"files lists no {name}", Path(folder) / CARD)
    return npz_arrays(blobs[name], Path(folder) / name)


@dataclasses.dataclass
class Saved:
    """A saved model opened and checked (``open_checkpoint``, ``beexnp.packed.open_packed``): read once per command.

    ``card`` is the checked ``beexnp.card.Card``; ``arrays`` the model's arrays (a checkpoint's parameters, or a
    packed file's bits, alphas and real parameters), checked against the config; ``trainer_arrays`` the optimizer's
    moments of a training checkpoint.  ``model()`` builds the model they describe."""

    path: Path
    kind: str                              # "checkpoint" or "packed"
    card: Card
    arrays: dict
    trainer_arrays: dict = None
    build: object = None                   # (saved, **options) -> the model
    meta: dict = None                      # a packed file's metadata
    calibrated: bool = False               # model() carries the card's calibration (``beexnp.calibration.calibrated``)

    @property
    def raw(self):
        """The card as stored (a dict)."""
        return self.card.raw

    @property
    def config(self):
        return self.card.config

    def model(self, **options):
        return self.build(self, **options)

    def require(self, *fields, hint="it was not saved by the trainer, or the card was edited"):
        """Refuse (one line) a saved model whose card lacks one of ``fields`` (e.g. "task", "tokenizer")."""
        missing = [f for f in fields if self.raw.get(f) is None]
        if missing:
            raise unusable(f"the card has no {' or '.join(missing)}", self.card_path, hint)
        return self

    @property
    def card_path(self):
        return self.path / CARD if self.kind == "checkpoint" else self.path


OPTIMIZER = "optimizer/"          # trainer.npz: the optimizer's arrays, "optimizer/<slot>.<parameter>"


def model_shapes(model):
    """{parameter name: (shape, "f")}: what ``check_arrays`` expects of a float model's arrays."""
    return {name: (p.shape, "f") for name, p in model.parameters()}


def check_vocab_rows(config, rows, path):
    """The embedding's rows against the config's (and hence the tokenizer's) vocabulary size."""
    if rows is not None and rows != config.vocab_size:
        raise unusable(f"the embedding has {rows} rows, model_config.vocab_size (the vocabulary) is "
                       f"{config.vocab_size}", path)


def float_model(saved, config=None, dtype=np.float32, model=None):
    """The float model of a checkpoint: ``model`` (the caller's, e.g. a Trainer's) or a new one, every array
    checked against the config's and loaded.  With ``config``, the stored config must equal it."""
    stored = saved.config
    if config is not None and config != stored:
        diff = {k: (v, getattr(stored, k)) for k, v in config.to_dict().items() if getattr(stored, k) != v}
        raise unusable(f"model_config differs from the requested one (requested, stored): {diff}", saved.card_path,
                      "give the checkpoint of this model")
    model = model if model is not None else BEExformer(stored, np.random.default_rng(0), dtype=dtype)
    shapes = model_shapes(model)
    where = checkpoint_folder(saved.path)
    check_arrays(saved.arrays, shapes, where / "model.npz", "parameter")
    if saved.trainer_arrays is not None and saved.card.train_config is not None:   # each slot shaped as its parameter
        slots = OPTIMIZERS[saved.card.train_config.optimizer].slots
        trained, extra = {name: shape for name, (shape, _) in shapes.items()}, {}
        if saved.raw.get("command") == "pretrain":             # the encoder and the MLM head (beexnp.mlm)
            trained, extra = pretrain_layout(stored, trained)
        expected = dict({f"{OPTIMIZER}{slot}.{name}": shape for slot in slots for name, shape in trained.items()},
                        **extra)
        check_arrays(saved.trainer_arrays, {name: (shape, "f") for name, shape in expected.items()},
                     where / "trainer.npz", "optimizer array")
    model.load_state_dict(saved.arrays)
    return model


def open_checkpoint(folder, resume=False):
    """The checkpoint ``folder`` opened and checked (``Saved``): the card's every field (``beexnp.card``), the
    files' checksums, every array readable and finite, the embedding's rows against the vocabulary.
    ``resume``: a training checkpoint is required (trainer state, optimizer, Generators)."""
    card, blobs = read_checkpoint(folder)
    where = checkpoint_folder(folder)
    checked = check_card(card, where / CARD)
    arrays = arrays_from(blobs, "model.npz", where)
    check_finite(arrays, where / "model.npz", "parameter")
    embedding = arrays.get("embedding.weight")
    check_vocab_rows(checked.config, embedding.shape[0] if embedding is not None and embedding.ndim == 2 else None,
                     where / "model.npz")
    trainer = None
    if "trainer.npz" in blobs:
        trainer = arrays_from(blobs, "trainer.npz", where)
        check_finite(trainer, where / "trainer.npz", "optimizer array")
    saved = Saved(Path(folder), "checkpoint", checked, arrays, trainer, float_model)
    if resume:
        if trainer is None or "optimizer" not in card:
            raise unusable("the checkpoint holds no trainer state", folder,
                          "resume from OUT/last of a run (an exported or best-only checkpoint cannot be resumed)")
        saved.require("task", "tokenizer", "train_config", "state", "rng", "optimizer",
                      hint="a training checkpoint's card has them: resume from OUT/last of a run")
    return saved


def opened(saved_or_folder):
    """A ``Saved`` as it is, or the checkpoint folder opened (``open_checkpoint``)."""
    return saved_or_folder if isinstance(saved_or_folder, Saved) else open_checkpoint(saved_or_folder)


def load_model(folder, config=None, dtype=np.float32):
    """(model, card) from a checkpoint folder, every field and array checked (``open_checkpoint``).

    With ``config``, the stored config must equal it; every parameter's name
    and shape must match the model it describes (a clear error says which)."""
    saved = opened(folder)
    return saved.model(config=config, dtype=dtype), saved.raw


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
