"""The trainer, checkpoints and the train/evaluate/predict commands, on a tiny synthetic SST-2."""
import json

import numpy as np
import pytest

from beexnp.checkpoint import CheckpointError, load_model, read_card, save_checkpoint
from beexnp.cli import build_parser, main
from beexnp.config import TrainConfig
from beexnp.train import Trainer, TrainingDiverged
from conftest import TINY_MODEL


def make_trainer(glue_dir, out, **train):
    cfg = TrainConfig(**{**dict(task="sst2", epochs=3, batch_size=16, min_freq=1, lr=3e-3, warmup=0.1,
                                save_every=5), **train})
    return Trainer(cfg, TINY_MODEL, out, glue_dir=glue_dir, progress=False)


def weights(model):
    return model.state_dict()


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_trainer_learns_a_separable_task(glue_dir, tmp_path):
    trainer = make_trainer(glue_dir, tmp_path / "run", epochs=12, patience=12)
    history = trainer.fit()
    best = max(r["score"] for r in history)
    assert best >= 0.9, history[-1]["dev"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    card = read_card(tmp_path / "run" / "best")
    assert card["task"] == "sst2" and card["metrics"]["dev"][0].keys() == {"accuracy"}
    assert len(json.loads((tmp_path / "run" / "history.json").read_text())) == len(history)


def test_history_records_the_epochs_mean_exit_weights(glue_dir, tmp_path):
    """history.json's exit weights average w over every input of the epoch, not the last batch's."""
    trainer = make_trainer(glue_dir, tmp_path / "run", epochs=1)
    seen = []
    step = trainer.train_step

    def recording_step(ids, mask, labels):
        loss = step(ids, mask, labels)
        seen.append(trainer.objective.loss.w.astype(np.float64))          # (N, B) of this step
        return loss

    trainer.train_step = recording_step
    history = trainer.fit()
    expected = np.concatenate(seen, axis=1).mean(axis=1)
    np.testing.assert_allclose(history[0]["exit_weights"], expected, rtol=1e-9)
    assert not np.allclose(expected, seen[-1].mean(axis=1)), "the last batch alone would pass too"


def test_same_seed_same_run_bitwise(glue_dir, tmp_path):
    a = make_trainer(glue_dir, tmp_path / "a", max_steps=12)
    b = make_trainer(glue_dir, tmp_path / "b", max_steps=12)
    a.fit(), b.fit()
    assert_same_weights(weights(a.model), weights(b.model))
    c = make_trainer(glue_dir, tmp_path / "c", max_steps=12, seed=1)
    c.fit()
    assert not np.array_equal(weights(a.model)["blocks.0.attn.qkv.weight"],
                              weights(c.model)["blocks.0.attn.qkv.weight"])


@pytest.mark.parametrize("half", [7, 16])          # mid-epoch, and exactly at an epoch's end
def test_resume_continues_exactly(glue_dir, tmp_path, half):
    whole = make_trainer(glue_dir, tmp_path / "whole", max_steps=2 * half)
    whole.fit()
    first = make_trainer(glue_dir, tmp_path / "split", max_steps=half)
    first.fit()
    second = Trainer.resume(tmp_path / "split" / "last", glue_dir=glue_dir, progress=False, max_steps=2 * half)
    assert second.state["step"] == half
    second.fit()
    assert_same_weights(weights(whole.model), weights(second.model))
    for k, v in whole.optimizer.state_dict()["arrays"].items():
        assert np.array_equal(v, second.optimizer.state_dict()["arrays"][k]), k


def test_nan_loss_stops_with_the_step(glue_dir, tmp_path):
    trainer = make_trainer(glue_dir, tmp_path / "run", max_steps=20)
    original = trainer.objective.forward
    calls = []

    def poisoned(*args, **kwargs):
        calls.append(1)
        loss = original(*args, **kwargs)
        return np.float32(np.nan) if len(calls) == 4 else loss

    trainer.objective.forward = poisoned
    with pytest.raises(TrainingDiverged, match="loss is nan at step 3"):
        trainer.fit()


def test_ctrl_c_keeps_last_good_checkpoint(glue_dir, tmp_path, capsys):
    trainer = make_trainer(glue_dir, tmp_path / "run", max_steps=50)
    original = trainer.train_step

    def interrupted(*args):
        if trainer.state["step"] == 8:
            raise KeyboardInterrupt
        return original(*args)

    trainer.train_step = interrupted
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    last = tmp_path / "run" / "last"
    assert read_card(last)["state"]["step"] == 5                  # save_every=5: the last good one
    assert "the last good checkpoint is" in capsys.readouterr().err
    resumed = Trainer.resume(last, glue_dir=glue_dir, progress=False)
    assert resumed.state["step"] == 5


def test_checkpoint_load_errors(glue_dir, tmp_path):
    trainer = make_trainer(glue_dir, tmp_path / "run", max_steps=2)
    trainer.fit()
    folder = tmp_path / "run" / "last"
    model, card = load_model(folder)
    assert_same_weights(weights(model), weights(trainer.model))

    wrong = trainer.model_config.__class__.from_dict(dict(trainer.model_config.to_dict(), heads=4))
    with pytest.raises(CheckpointError, match="heads"):
        load_model(folder, wrong)

    card_path = folder / "checkpoint.json"
    original = card_path.read_text()
    card_path.write_text(original.replace('"format_version": 2', '"format_version": 99'))
    with pytest.raises(CheckpointError, match="format_version is 99, this beexnp reads 1, 2"):
        load_model(folder)
    card_path.write_text(original)

    bad = dict(weights(trainer.model))
    bad["exits.0.linear.weight"] = np.zeros((3, 3), np.float32)
    np.savez(folder / "model.npz", **bad)
    with pytest.raises(CheckpointError, match="checksum"):
        load_model(folder)
    class Fake:                                                    # a model whose shapes do not fit the config
        config = trainer.model_config

        def state_dict(self):
            return bad
    save_checkpoint(folder, Fake(), {"task": "sst2"})
    with pytest.raises(CheckpointError, match=r"parameter exits.0.linear.weight has shape \(3, 3\), the config gives"):
        load_model(folder)


def test_train_evaluate_predict_commands(glue_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"model": TINY_MODEL, "train": {"min_freq": 1, "batch_size": 16}}))
    status = main(["train", "--task", "sst2", "--config", str(cfg), "--epochs", "1", "--out", str(out),
                   "--glue-dir", str(glue_dir), "--no-progress"])
    assert status == 0 and (out / "best" / "model.npz").exists()
    assert main(["evaluate", str(out / "best"), "--glue-dir", str(glue_dir), "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert len(report["per_exit"]) == 3 and sum(report["exit_histogram"]) == 64
    assert 0 <= report["flops"]["cut"] < 1 and report["flops"]["early_exit"] <= report["flops"]["full"]
    assert set(report["wall_clock"]) == {"batched", "batch_size_1"}
    assert main(["sweep", str(out / "best"), "--glue-dir", str(glue_dir), "--out", str(tmp_path / "sweep")]) == 0
    sweep = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert (tmp_path / "sweep" / "sweep.png").stat().st_size > 10_000
    full = sweep["rows"][0]
    assert full["criterion"] == "full depth" and full["metric"] == report["per_exit"][-1]["accuracy"]
    assert {r["criterion"] for r in sweep["rows"][1:]} == {"fractional", "entropy", "maxprob", "patience"}
    assert sweep["chosen"]["criterion"] == "fractional"
    capsys.readouterr()
    assert main(["predict", str(out / "best"), "a lovely film", "--json"]) == 0
    prediction = json.loads(capsys.readouterr().out)
    assert prediction["label"] in ("negative", "positive") and 1 <= prediction["exit_block"] <= 3
    assert prediction["label"] == ("negative", "positive")[prediction["label_id"]] and prediction["warnings"] == []
    assert abs(sum(prediction["probabilities"].values()) - 1) < 1e-5


@pytest.mark.parametrize("bad, message", [
    (dict(optimizer="rmsprop"), "optimizer must be one of 'sgd', 'adam', 'adamw'"),
    (dict(schedule="step"), "schedule must be one of"), (dict(exit_weighting="max"), "exit_weighting must be"),
    (dict(task="glue"), "unknown GLUE task 'glue'"), (dict(batch_size=0), "batch_size must be > 0"),
    (dict(dev_subset=0), "dev_subset must be None or > 0"), (dict(warmup=1.0), "0 <= warmup < 1"),
    (dict(max_len=2), "max_len must be >= 3"), (dict(delta=1.0), "fractional criterion's threshold"),
    (dict(epochs="3"), "epochs must be int, got '3'"), (dict(epochs=2.5), "epochs must be int, got 2.5"),
])
def test_train_config_errors_name_the_setting(bad, message):
    with pytest.raises(ValueError, match="invalid training config: .*" + message.replace("(", r"\(")):
        TrainConfig(**bad)
    assert TrainConfig(task="SST-2").task == "SST-2"                  # task names as get_task reads them


def test_train_help_lists_every_option(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = capsys.readouterr().out
    for flag in ("--task", "--config", "--out", "--resume", "--full-precision", "--epochs", "--max-steps",
                 "--lr", "--exit-weighting", "--seed", "--binarize-embeddings"):
        assert flag in text
