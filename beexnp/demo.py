"""A trained model for the notebooks: load one if it is there, else train it.

Notebooks that look inside a trained BEExformer (attention maps, gate values,
entropies per block) call ``load_or_train``.  In fast mode (``BEEXNP_FAST=1``,
what the test suite uses) it trains a small model on a slice of the task in
well under a minute; otherwise it trains the default config on the whole
training split, the same run as ``python -m beexnp train``.  Either way the
checkpoint is kept under ``runs/`` and reused the next time.
"""
import os
from pathlib import Path

from beexnp.evaluate import load_for_inference
from beexnp.train import Trainer, TrainConfig

FAST_MODEL = dict(token_dim=56, position_dim=8, heads=4, blocks=4)
FAST_TRAIN = dict(epochs=2, train_subset=6000, dev_subset=400, batch_size=64, lr=2e-3)


def fast_mode():
    """True when BEEXNP_FAST=1: small data and models, so notebooks run in seconds."""
    return os.environ.get("BEEXNP_FAST") == "1"


def load_or_train(task="sst2", fast=None, binarize=True, out=None, glue_dir=None, progress=True, seed=0):
    """(model, tokenizer, task, card) of a trained checkpoint; trains it first if missing."""
    fast = fast_mode() if fast is None else fast
    kind = "binarized" if binarize else "full_precision"
    out = Path(out or Path("runs") / "notebooks" / f"{task}_{kind}{'_fast' if fast else ''}")
    best = out / "best"
    if not (best / "checkpoint.json").exists():
        model = dict(FAST_MODEL if fast else {}, binarize=binarize)
        train = dict(FAST_TRAIN if fast else {}, task=task, seed=seed)
        Trainer(TrainConfig.from_dict(train), model, out, glue_dir=glue_dir, progress=progress).fit()
    return load_for_inference(best)
