"""Checkpoints: a folder with the weights, the trainer's state and a JSON card.

    CKPT/model.npz          every parameter, keyed by its dotted name
    CKPT/trainer.npz        optimizer moments (only in training checkpoints)
    CKPT/checkpoint.json    format version, model config, tokenizer, task,
                            metrics, training state, and the sha256 of each .npz

Every file is written to a temporary name and renamed when whole, the JSON
last; the JSON names the checksums of the .npz files it belongs with, so a
folder caught between two saves is detected, never silently mixed.  Saving
also holds Ctrl-C until the files are written.
"""
import contextlib
import hashlib
import json
import os
import signal
import tempfile
from pathlib import Path

import numpy as np

from beexnp.config import ModelConfig
from beexnp.model import BEExformer

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    pass


@contextlib.contextmanager
def interrupts_deferred():
    """Hold SIGINT (Ctrl-C) until the block ends, then deliver it."""
    try:
        previous = signal.getsignal(signal.SIGINT)
    except ValueError:                 # not the main thread: nothing to defer
        yield
        return
    caught = []
    try:
        signal.signal(signal.SIGINT, lambda *a: caught.append(a))
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt


def atomic_write(path, write):
    """write(file object) into a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_checkpoint(folder, model, meta, trainer_arrays=None):
    """Write ``model``'s weights, optional trainer arrays, and ``meta`` (a JSON-able dict)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with interrupts_deferred():
        atomic_write(folder / "model.npz", lambda f: np.savez(f, **model.state_dict()))
        files = {"model.npz": _sha256(folder / "model.npz")}
        if trainer_arrays is not None:
            atomic_write(folder / "trainer.npz", lambda f: np.savez(f, **trainer_arrays))
            files["trainer.npz"] = _sha256(folder / "trainer.npz")
        card = dict(meta, format_version=FORMAT_VERSION, model_config=model.config.to_dict(), files=files)
        text = json.dumps(card, indent=2, sort_keys=True).encode()
        atomic_write(folder / "checkpoint.json", lambda f: f.write(text))
    return folder


def read_card(folder):
    """The checkpoint's JSON card, after checking the version and the files' checksums."""
    folder = Path(folder)
    card_path = folder / "checkpoint.json"
    if not card_path.is_file():
        raise CheckpointError(f"{folder} is not a checkpoint: {card_path.name} is missing")
    card = json.loads(card_path.read_text())
    version = card.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{card_path}: format version {version}, this beexnp reads {FORMAT_VERSION}")
    for name, digest in card.get("files", {}).items():
        if not (folder / name).is_file():
            raise CheckpointError(f"{folder}: {name} is missing")
        if _sha256(folder / name) != digest:
            raise CheckpointError(f"{folder}: {name} does not match its checksum in checkpoint.json "
                                  "(interrupted while saving, or edited)")
    return card


def load_arrays(folder, name):
    with np.load(Path(folder) / name) as f:
        return {k: f[k] for k in f.files}


def load_model(folder, config=None, dtype=np.float32):
    """(model, card) from a checkpoint folder.

    With ``config``, the stored config must equal it; every parameter's name
    and shape must match the model it describes (a clear error says which)."""
    card = read_card(folder)
    stored = ModelConfig.from_dict(card["model_config"])
    if config is not None and config != stored:
        diff = {k: (v, getattr(stored, k)) for k, v in config.to_dict().items() if getattr(stored, k) != v}
        raise CheckpointError(f"{folder}: config differs from the requested one (requested, stored): {diff}")
    model = BEExformer(stored, np.random.default_rng(0), dtype=dtype)
    try:
        model.load_state_dict(load_arrays(folder, "model.npz"))
    except ValueError as e:
        raise CheckpointError(f"{folder}/model.npz: {e}") from None
    return model, card
