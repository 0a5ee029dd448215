"""A trained model for the notebooks: load one if it is there, else train it.

Notebooks that look inside a trained BEExformer (attention maps, gate values,
entropies per block) call ``load_or_train``.  In fast mode (``BEEXNP_FAST=1``,
what the test suite uses) it trains a small model on a slice of the task in
well under a minute; otherwise it trains the default config on the whole
training split, the same run as ``python -m beexnp train``.  Either way the
checkpoint is kept under ``runs/`` and reused the next time -- but only if the
configs stored in its ``checkpoint.json`` match the ones it would be trained
with now; otherwise it is retrained (overwritten) and the difference printed.
A task missing from every GLUE directory is downloaded first, as the ``train``
command does (``beexnp.glue.download.ensure_task``).
"""
import dataclasses
import json
import os
from pathlib import Path

from beexnp.config import DATA_DERIVED, ModelConfig, TrainConfig
from beexnp.evaluate import load_for_inference
from beexnp.glue.download import ensure_task
from beexnp.glue.tasks import get_task
from beexnp.train import Trainer

FAST_MODEL = dict(token_dim=56, position_dim=8, heads=4, blocks=4)
FAST_TRAIN = dict(epochs=2, train_subset=6000, dev_subset=400, batch_size=64, lr=2e-3)


def fast_mode():
    """True when BEEXNP_FAST=1: small data and models, for the tests and quick looks."""
    return os.environ.get("BEEXNP_FAST") == "1"


def requested_configs(task, fast, binarize, seed):
    """(model overrides, training config dict) that ``load_or_train`` trains with."""
    model = dict(FAST_MODEL if fast else {}, binarize=binarize)
    train = dict(FAST_TRAIN if fast else {}, task=task, seed=seed)
    return model, train


def model_defaults():
    """ModelConfig's defaults, without the fields set from the data (``DATA_DERIVED``)."""
    return {f.name: f.default for f in dataclasses.fields(ModelConfig) if f.name not in DATA_DERIVED}


def config_differences(card, model, train):
    """Human-readable differences between a checkpoint card's stored configs and the requested
    ones ([] if they match).  Fields missing on either side count as their defaults, as when
    the checkpoint is loaded."""
    want_model = dict(model_defaults(), **model)
    want_train = dataclasses.asdict(TrainConfig.from_dict(train))
    have_model = {k: v for k, v in card.get("model_config", {}).items() if k not in DATA_DERIVED}
    have_model = dict(model_defaults(), **have_model)
    have_train = dict(dataclasses.asdict(TrainConfig()), **card.get("train_config", {}))
    for config in (want_train, have_train):          # "SST-2" and "sst2" are the same task
        config["task"] = get_task(config["task"]).name
    differences = []
    for section, want, have in (("model", want_model, have_model), ("train", want_train, have_train)):
        keys = sorted(set(want) | set(have))
        differences += [f"{section}.{key}: stored {have.get(key)!r}, requested {want.get(key)!r}"
                        for key in keys if have.get(key) != want.get(key)]
    return differences


def stale_reasons(best, model, train):
    """Why the checkpoint in ``best`` cannot be reused ([] when it can)."""
    card_path = Path(best) / "checkpoint.json"
    if not card_path.exists():
        return [f"no checkpoint at {best}"]
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError) as err:
        return [f"unreadable {card_path}: {err}"]
    return config_differences(card, model, train)


def load_or_train(task="sst2", fast=None, binarize=True, out=None, glue_dir=None, progress=True, seed=0,
                  download=True):
    """(model, tokenizer, task, card) of a trained checkpoint; trains it first if it is missing
    or was trained with other settings than these (then it is overwritten).  The task's files are
    downloaded first if no GLUE directory holds them (unless ``download=False`` or
    ``$BEEXNP_NO_DOWNLOAD``), so that the notebook's own ``load_split`` finds them too."""
    glue_dir = ensure_task(task, glue_dir, download=download, progress=progress)
    fast = fast_mode() if fast is None else fast
    kind = "binarized" if binarize else "full_precision"
    out = Path(out or Path("runs") / "notebooks" / f"{task}_{kind}{'_fast' if fast else ''}")
    best = out / "best"
    model, train = requested_configs(task, fast, binarize, seed)
    reasons = stale_reasons(best, model, train)
    if reasons:
        if (best / "checkpoint.json").exists():
            print(f"retraining {out}: its checkpoint was trained with other settings\n  " + "\n  ".join(reasons))
        Trainer(TrainConfig.from_dict(train), model, out, glue_dir=glue_dir, progress=progress).fit()
    return load_for_inference(best)
