"""``beexnp.demo.load_or_train``: trains once, reuses a matching checkpoint, retrains a stale one."""
import json

import pytest

from beexnp import demo
from conftest import TINY_MODEL

TINY_TRAIN = dict(epochs=1, batch_size=64, lr=2e-3)


@pytest.fixture
def tiny_demo(monkeypatch):
    """Fast mode shrunk to the tiny test model, and a counter of the runs that were trained."""
    monkeypatch.setattr(demo, "FAST_MODEL", dict(TINY_MODEL))
    monkeypatch.setattr(demo, "FAST_TRAIN", dict(TINY_TRAIN))
    trained = []

    class CountingTrainer(demo.Trainer):
        def fit(self):
            trained.append(self.out)
            return super().fit()

    monkeypatch.setattr(demo, "Trainer", CountingTrainer)
    return trained


def load(glue_dir, out, seed=0):
    return demo.load_or_train("sst2", fast=True, out=out, glue_dir=glue_dir, progress=False, seed=seed)


def card_of(out):
    return json.loads((out / "best" / "checkpoint.json").read_text())


def test_trains_when_missing_then_reuses_a_matching_checkpoint(glue_dir, tmp_path, tiny_demo, capsys):
    out = tmp_path / "run"
    model, tokenizer, task, card = load(glue_dir, out)
    assert tiny_demo == [out]
    assert task.name == "sst2" and card["model_config"]["blocks"] == TINY_MODEL["blocks"]
    stamp = (out / "best" / "model.npz").stat().st_mtime_ns
    capsys.readouterr()

    model, tokenizer, task, card = load(glue_dir, out)
    assert tiny_demo == [out], "a matching checkpoint must be reused, not retrained"
    assert (out / "best" / "model.npz").stat().st_mtime_ns == stamp
    assert "retraining" not in capsys.readouterr().out


def test_retrains_when_the_training_config_differs(glue_dir, tmp_path, tiny_demo, capsys):
    out = tmp_path / "run"
    load(glue_dir, out, seed=0)
    capsys.readouterr()
    *_, card = load(glue_dir, out, seed=1)
    assert tiny_demo == [out, out]
    assert card["train_config"]["seed"] == 1 and card_of(out)["train_config"]["seed"] == 1
    printed = capsys.readouterr().out
    assert "retraining" in printed and "train.seed: stored 0, requested 1" in printed


def test_retrains_when_the_model_config_differs(glue_dir, tmp_path, tiny_demo, monkeypatch, capsys):
    out = tmp_path / "run"
    load(glue_dir, out)
    capsys.readouterr()
    monkeypatch.setattr(demo, "FAST_MODEL", dict(TINY_MODEL, blocks=2))
    model, *_ = load(glue_dir, out)
    assert tiny_demo == [out, out]
    assert model.config.blocks == 2 and card_of(out)["model_config"]["blocks"] == 2
    assert f"model.blocks: stored {TINY_MODEL['blocks']}, requested 2" in capsys.readouterr().out


def test_config_differences_ignore_data_derived_fields_and_task_spelling():
    model, train = demo.requested_configs("sst2", fast=True, binarize=True, seed=0)
    card = dict(model_config=dict(model, vocab_size=123, num_classes=2, regression=False, max_len=64),
                train_config=dict(train, task="SST-2"))
    assert demo.config_differences(card, model, train) == []
    assert demo.config_differences(card, dict(model, heads=2), train) == \
        [f"model.heads: stored {model['heads']}, requested 2"]


def test_an_unreadable_card_is_stale(tmp_path):
    (tmp_path / "best").mkdir()
    (tmp_path / "best" / "checkpoint.json").write_text("{not json")
    reasons = demo.stale_reasons(tmp_path / "best", *demo.requested_configs("sst2", True, True, 0))
    assert len(reasons) == 1 and reasons[0].startswith("unreadable")
