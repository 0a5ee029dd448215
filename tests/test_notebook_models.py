"""The trained models committed for the notebooks (notebooks/models/, made by tools/make_notebook_model.py).

Each ``.npz`` is a packed file that loads in well under a second, with its tokenizer,
and matches its record (``.json``): size, checksum, configs, dev accuracy.  With
SST-2 present, the packed model's dev accuracy at every exit is measured again.
"""
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest

from beexnp.glue import encode_examples, find_glue_dir, load_split
from beexnp.inference import evaluate_exits
from beexnp.packed import PackedBinaryLinear, load_packed

MODELS = Path(__file__).resolve().parent.parent / "notebooks" / "models"
NAMES = ["sst2_small", "sst2_small_twin"]
MAX_BYTES = 600_000


def record(name):
    return json.loads((MODELS / f"{name}.json").read_text())


@pytest.mark.parametrize("name", NAMES)
def test_the_file_matches_its_record_and_loads_fast(name):
    path, rec = MODELS / f"{name}.npz", record(name)
    data = path.read_bytes()
    assert len(data) == rec["bytes"] < MAX_BYTES and hashlib.sha256(data).hexdigest() == rec["sha256"]
    start = time.perf_counter()
    model, tokenizer, card = load_packed(path)
    assert time.perf_counter() - start < 5
    assert tokenizer is not None and len(tokenizer) == model.config.vocab_size
    assert card["model_config"] == rec["model_config"] and card["train_config"] == rec["train_config"]
    assert [m["accuracy"] for m in card["metrics"]["dev"]] == rec["dev_accuracy_per_exit"]
    assert min(rec["dev_accuracy_per_exit"]) > 0.78 and rec["seed"] == 0 and rec["task"] == "sst2"
    train, export = rec["commands"]                                           # the project's own two commands
    assert train.startswith("OPENBLAS_NUM_THREADS=1 python -m beexnp train --task sst2 ")
    out = train.split("--out ")[1].split()[0]
    assert export == f"python -m beexnp export --float16 {out}/best notebooks/models/{name}.npz"
    binarized = any(isinstance(m, PackedBinaryLinear) for m in model.modules())
    assert binarized == rec["model_config"]["binarize"] and rec["model_config"]["binarize_embeddings"]


def test_the_twin_differs_only_in_binarize():
    small, twin = record("sst2_small")["model_config"], record("sst2_small_twin")["model_config"]
    assert {k for k in small if small[k] != twin[k]} == {"binarize"}
    assert record("sst2_small")["train_config"] == record("sst2_small_twin")["train_config"]


@pytest.mark.parametrize("name", NAMES)
def test_the_recorded_dev_accuracy_is_measured_again(name):
    try:
        find_glue_dir(task="sst2")
    except FileNotFoundError as error:
        pytest.skip(f"SST-2 not found: {error}")
    model, tokenizer, card = load_packed(MODELS / f"{name}.npz")
    dev = encode_examples(tokenizer, load_split("sst2", "dev"), card["train_config"]["max_len"])
    score = lambda p: {"accuracy": float(np.mean(p == dev.labels))}             # noqa: E731
    measured = [m["accuracy"] for m in evaluate_exits(model, dev, score, regression=False)]
    # the file stores float16 real numbers: a few of 872 predictions may flip
    np.testing.assert_allclose(measured, record(name)["dev_accuracy_per_exit"], atol=0.006)
