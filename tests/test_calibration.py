"""Calibrated decisions (DESIGN §9.3): the shift chosen on the selection split, stored in the best card, and
folded into every exit head's bias for inference."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beexnp.calibration import CARD_KEY, apply_calibration, best_exit_score, card_shift, choose_shift
from beexnp.checkpoint import read_card
from beexnp.config import ModelConfig, TrainConfig
from beexnp.evaluate import evaluate_checkpoint, load_for_inference
from beexnp.glue import get_task
from beexnp.criteria import FractionalEntropy
from beexnp.inference import early_exit_forward, exit_outputs
from beexnp.model import BEExformer
from beexnp.module import evaluating
from beexnp.packed import export_checkpoint, load_packed
from beexnp.train import Trainer
from conftest import TINY_MODEL


def test_a_shift_moves_a_biased_boundary_back():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    margin = (2 * labels - 1) + 0.3 * rng.standard_normal(400) - 1.5          # separable, but shifted by -1.5
    outputs = np.stack([np.zeros(400), margin], axis=-1)[None]               # one exit
    chosen = choose_shift(get_task("rte"), outputs, labels)
    assert chosen["score_before"] < 0.8 and chosen["score_after"] > 0.95 and chosen["exit"] == 1
    assert chosen["shift"][0] == 0 and 0.7 < chosen["shift"][1] < 2.3


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 60), exits=st.integers(1, 3), classes=st.integers(2, 3))
def test_the_shift_never_scores_worse_than_none_and_prefers_none_on_ties(seed, n, exits, classes):
    rng = np.random.default_rng(seed)
    outputs = rng.standard_normal((exits, n, classes))
    labels = rng.integers(0, classes, n)
    task = get_task("rte" if classes == 2 else "mnli")
    chosen = choose_shift(task, outputs, labels)
    assert chosen["score_after"] >= chosen["score_before"]
    assert chosen["score_after"] == best_exit_score(task, outputs, labels, np.array(chosen["shift"]))[0]
    if chosen["score_after"] == chosen["score_before"]:
        assert chosen["shift"] == [0.0] * classes                            # no gain: no shift
    if classes == 2 and n * exits <= 201:                                     # every decision set is tried:
        brute = max(best_exit_score(task, outputs, labels, np.array([0, t]))[0]   # no shift does better
                    for t in np.linspace(-5, 5, 2001))
        assert chosen["score_after"] >= brute


def test_folding_the_shift_into_the_bias_shifts_every_exit_and_early_exit(rng):
    config = ModelConfig(vocab_size=20, **TINY_MODEL)
    model = BEExformer(config, rng)
    ids = rng.integers(4, 20, (5, 7))
    mask = np.ones((5, 7), np.float32)
    with evaluating(model):
        before = np.stack(model.forward(ids, mask))
    shift = np.array([0.0, 1.25])
    apply_calibration(model, {CARD_KEY: dict(shift=shift.tolist())})
    with evaluating(model):
        after = np.stack(model.forward(ids, mask))
    np.testing.assert_allclose(after, before + shift, rtol=0, atol=1e-5)
    result = early_exit_forward(model, ids, mask, FractionalEntropy(0.5))
    np.testing.assert_allclose(result.logits, after[result.exit_block - 1, np.arange(5)], atol=1e-6)
    assert apply_calibration(model, {}) is model                             # no key: nothing changes


def test_a_calibrated_run_stores_its_shift_and_evaluate_applies_it(glue_dir, tmp_path):
    cfg = TrainConfig(task="sst2", epochs=1, batch_size=32, max_len=24, min_freq=1, select_on="heldout",
                      calibrate=True)
    trainer = Trainer(cfg, TINY_MODEL, tmp_path / "run", glue_dir=glue_dir, progress=False)
    trainer.fit()
    card = read_card(tmp_path / "run" / "best")
    chosen = card[CARD_KEY]
    outputs = exit_outputs(trainer.model, trainer.selection["heldout"])
    assert chosen == choose_shift(trainer.task, outputs, trainer.selection["heldout"].labels)
    assert CARD_KEY not in read_card(tmp_path / "run" / "last")               # the shift is best's alone
    model, _, _, _ = load_for_inference(tmp_path / "run" / "best")
    np.testing.assert_allclose(exit_outputs(model, trainer.selection["heldout"]), outputs + chosen["shift"],
                               atol=1e-5)
    report = evaluate_checkpoint(tmp_path / "run" / "best", split="heldout", glue_dir=glue_dir, timing=False)
    assert max(m["accuracy"] for m in report["per_exit"]) == pytest.approx(chosen["score_after"])


def test_a_packed_file_holds_the_shift_in_its_biases_once(glue_dir, tmp_path):
    cfg = TrainConfig(task="sst2", epochs=1, batch_size=32, max_len=24, min_freq=1, select_on="heldout",
                      calibrate=True)
    trainer = Trainer(cfg, TINY_MODEL, tmp_path / "run", glue_dir=glue_dir, progress=False)
    trainer.fit()
    shift = read_card(tmp_path / "run" / "best")[CARD_KEY]["shift"]
    assert shift[1] != 0                                                    # this run has a shift to carry
    export_checkpoint(tmp_path / "run" / "best", tmp_path / "model.bxp")
    packed, _, packed_card = load_packed(tmp_path / "model.bxp")
    data = trainer.selection["heldout"]
    np.testing.assert_allclose(exit_outputs(packed, data), exit_outputs(trainer.model, data) + shift, atol=1e-4)
    assert packed_card[CARD_KEY]["folded"] and card_shift(packed_card) is None       # never added twice


def test_the_shift_is_added_once_however_often_the_model_is_opened(glue_dir, tmp_path):
    """``calibrated`` is the one place the shift goes in: a Saved opened for inference and handed on (as the CLI
    hands it to evaluate and the sweep) is not shifted again; a packed file is written only with it folded."""
    from beexnp.calibration import as_packed, calibrated
    from beexnp.checkpoint import open_checkpoint
    from beexnp.evaluate import open_for_inference
    from beexnp.packed import save_packed
    cfg = TrainConfig(task="sst2", epochs=1, batch_size=32, max_len=24, min_freq=1, select_on="heldout",
                      calibrate=True)
    trainer = Trainer(cfg, TINY_MODEL, tmp_path / "run", glue_dir=glue_dir, progress=False)
    trainer.fit()
    best = tmp_path / "run" / "best"
    shift = np.array(read_card(best)[CARD_KEY]["shift"])
    assert shift[1] != 0                                                    # a shift to add once
    data = trainer.selection["heldout"]
    raw = exit_outputs(open_checkpoint(best).model(), data)                  # a plain open: no shift
    once = open_for_inference(best)
    for saved in (once, open_for_inference(once), calibrated(calibrated(once))):
        np.testing.assert_allclose(exit_outputs(saved.model(), data), raw + shift, atol=1e-5)
    assert evaluate_checkpoint(once, split="heldout", glue_dir=glue_dir, timing=False)["per_exit"] == \
        evaluate_checkpoint(best, split="heldout", glue_dir=glue_dir, timing=False)["per_exit"]
    plain = open_checkpoint(best)
    with pytest.raises(ValueError, match="calibration is not folded"):
        save_packed(tmp_path / "m.npz", plain.model(), plain.raw)
    save_packed(tmp_path / "m.npz", *as_packed(plain))
    np.testing.assert_allclose(exit_outputs(open_for_inference(tmp_path / "m.npz").model(), data), raw + shift,
                               atol=1e-4)
    from beexnp.size import checkpoint_size_report                         # size measures what export writes
    export_checkpoint(best, tmp_path / "x.npz")
    variant = next(v for v in checkpoint_size_report(best)["variants"]
                   if v["binarize_embeddings"] == plain.config.binarize_embeddings)
    assert variant["file"]["bytes_on_disk"] == (tmp_path / "x.npz").stat().st_size
