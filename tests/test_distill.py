"""Distillation from the full-precision twin (DESIGN §6.9): the soft-target loss, the teacher, and a
student trained from a teacher checkpoint, with the errors that keep teacher and student compatible."""
import json

import numpy as np
import pytest

from beexnp.activations import log_softmax, softmax
from beexnp.checkpoint import read_card
from beexnp.cli import main
from beexnp.config import ModelConfig, TrainConfig
from beexnp.distill import Teacher
from beexnp.exit_loss import MultiExitLoss
from beexnp.glue import Tokenizer
from beexnp.losses import MSE, SoftTargetKL
from beexnp.model import BEExformer
from beexnp.train import Trainer
from conftest import TINY_MODEL, rewrite_card


def test_soft_target_loss_by_hand(rng):
    z, t, w = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), rng.uniform(0.1, 1, 4)
    T = 3.0
    loss = SoftTargetKL(T)
    p, logq = softmax(t / T), log_softmax(z / T)
    kl = np.sum(p * (np.log(p) - logq), axis=1)
    assert loss.forward(z, t, w) == pytest.approx(T * T * np.sum(w * kl) / 4, rel=1e-12)
    np.testing.assert_allclose(loss.backward(), (softmax(z / T) - p) * (T * w / 4)[:, None], rtol=1e-12)
    assert loss.forward(t, t) == pytest.approx(0, abs=1e-15)                 # the teacher's own logits: no loss
    assert np.abs(loss.backward()).max() < 1e-15


def test_distilled_exit_loss_mixes_task_and_soft_targets(rng):
    logits = [rng.standard_normal((5, 3)) for _ in range(3)]
    targets = [rng.standard_normal((5, 3)) for _ in range(3)]
    labels = rng.integers(0, 3, 5)
    plain = MultiExitLoss(3, "soft_routing")
    distilled = MultiExitLoss(3, "soft_routing", distill_weight=0.3, temperature=2.0)
    base = plain.forward(logits, labels)
    w = plain.w
    soft = sum(SoftTargetKL(2.0).forward(z, t, wi) for z, t, wi in zip(logits, targets, w))
    assert distilled.forward(logits, labels, targets=targets) == pytest.approx(0.7 * base + 0.3 * soft, rel=1e-12)
    assert distilled.forward(logits, labels) == base                        # no teacher outputs: the task loss only
    for g, h in zip(distilled.backward(), plain.backward()):
        np.testing.assert_array_equal(g, h)


def test_regression_distils_with_mse_to_the_teacher(rng):
    preds = [rng.standard_normal((4, 1)) for _ in range(2)]
    teacher = [rng.standard_normal((4, 1)) for _ in range(2)]
    y = rng.standard_normal(4)
    loss = MultiExitLoss(2, "uniform", regression=True, distill_weight=0.5, temperature=5.0)
    expected = sum(0.5 * MSE().forward(p, y, np.full(4, 0.5)) + 0.5 * MSE().forward(p, t[:, 0], np.full(4, 0.5))
                   for p, t in zip(preds, teacher))
    assert loss.forward(preds, y, targets=teacher) == pytest.approx(expected, rel=1e-12)   # T plays no part


def test_teacher_targets_last_or_matching_exit(rng):
    cfg = ModelConfig(vocab_size=17, token_dim=6, position_dim=2, heads=2, blocks=3, binarize=False)
    model = BEExformer(cfg, rng)
    ids, mask = rng.integers(4, 17, size=(2, 5)), np.ones((2, 5), np.float32)
    outputs = model.eval().forward(ids, mask)
    last = Teacher(model, num_exits=5)(ids, mask)
    assert len(last) == 5 and all(np.array_equal(t, outputs[-1]) for t in last)
    matching = Teacher(model, num_exits=3, distill_from="matching")(ids, mask)
    assert all(np.array_equal(a, b) for a, b in zip(matching, outputs))
    with pytest.raises(ValueError, match="as many blocks as the student: teacher 3, student 5"):
        Teacher(model, num_exits=5, distill_from="matching")


@pytest.fixture
def teacher(glue_dir, tmp_path):
    """A full-precision twin trained one epoch on the tiny SST-2: its best checkpoint."""
    Trainer(TrainConfig(task="sst2", epochs=1, batch_size=32, min_freq=1, lr=3e-3), dict(TINY_MODEL, binarize=False),
            tmp_path / "teacher", glue_dir=glue_dir, progress=False).fit()
    return tmp_path / "teacher" / "best"


def student(glue_dir, out, teacher, **train):
    cfg = TrainConfig(**{**dict(task="sst2", epochs=1, batch_size=32, min_freq=2, teacher=str(teacher),
                                distill_weight=0.6, distill_temperature=2.0), **train})
    return Trainer(cfg, TINY_MODEL, out, glue_dir=glue_dir, progress=False)


def test_student_learns_from_the_teacher_checkpoint(glue_dir, tmp_path, teacher):
    trainer = student(glue_dir, tmp_path / "student", teacher)
    card = read_card(teacher)
    assert trainer.tokenizer.vocab == Tokenizer.from_state_dict(card["tokenizer"]).vocab   # min_freq=2 ignored
    before = {n: p.data.copy() for n, p in trainer.objective.teacher.model.parameters()}
    ids, mask = trainer.train_data.padded(np.arange(8))
    labels = trainer.train_data.labels[:8]
    with_teacher = trainer.objective.forward(ids, mask, labels)
    alone = trainer.objective.loss.forward(trainer.objective.logits, labels)           # the same logits, no targets
    assert with_teacher != pytest.approx(alone)
    trainer.fit()
    for n, p in trainer.objective.teacher.model.parameters():
        np.testing.assert_array_equal(p.data, before[n])                                # the teacher never moves
    assert not trainer.objective.teacher.model.training
    assert read_card(tmp_path / "student" / "best")["train_config"]["teacher"] == str(teacher)


def test_teacher_errors_are_clear(glue_dir, tmp_path, teacher):
    with pytest.raises(ValueError, match="its tokenizer .* differs from this run's"):
        Trainer(TrainConfig(task="sst2", teacher=str(teacher)), TINY_MODEL, tmp_path / "a", glue_dir=glue_dir,
                progress=False, tokenizer=Tokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "film"]))
    with pytest.raises(ValueError, match="not trained on the same training rows .* select_on: teacher 'dev'"):
        student(glue_dir, tmp_path / "b", teacher, select_on="heldout")
    rewrite_card(teacher, lambda card: card.update(task="cola", train_config=dict(card["train_config"], task="cola")))
    with pytest.raises(ValueError, match="was trained on 'cola', this run is 'sst2'"):
        student(glue_dir, tmp_path / "c", teacher)


def test_train_command_with_a_teacher(glue_dir, tmp_path, teacher, capsys):
    assert main(["train", "--task", "sst2", "--glue-dir", str(glue_dir), "--out", str(tmp_path / "cli"),
                 "--teacher", str(teacher), "--distill-weight", "0.9", "--distill-temperature", "4",
                 "--distill-from", "matching", "--epochs", "1", "--token-dim", "12", "--position-dim", "4",
                 "--heads", "2", "--blocks", "3", "--no-progress"]) == 0
    saved = read_card(tmp_path / "cli" / "best")["train_config"]
    assert (saved["distill_weight"], saved["distill_temperature"], saved["distill_from"]) == (0.9, 4.0, "matching")
    assert main(["train", "--task", "sst2", "--glue-dir", str(glue_dir), "--out", str(tmp_path / "bad"),
                 "--teacher", str(tmp_path / "nowhere"), "--no-progress"]) == 1
    assert "not a checkpoint: nothing there (" in capsys.readouterr().err
