"""The whole model: gradient checks for every loss weighting, the exit weights, the config."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beexnp.config import ModelConfig
from beexnp.exit_loss import MultiExitLoss, SoftRouting, exit_weights, soft_routing_weights
from beexnp.layer_checks import model_cases
from beexnp.model import BEExformer

CASE_NAMES = [c.name for c in model_cases(np.random.default_rng(0))]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_whole_model_gradient(name):
    """``model_cases``' shapes (vocab 13, ``TINY_MODEL``, 5 tokens with padding, batch 3), relaxed, float64."""
    rng = np.random.default_rng(7)
    case = next(c for c in model_cases(rng) if c.name == name)
    report = case.check(rng)
    print(report)
    assert report.ok, report
    assert len(report.rows) == len(list(case.module.parameters()))   # every parameter was checked


def logits_strategy(n_exits, batch, classes):
    return st.lists(st.floats(-6, 6), min_size=n_exits * batch * classes, max_size=n_exits * batch * classes).map(
        lambda v: list(np.array(v).reshape(n_exits, batch, classes)))


@settings(max_examples=40, deadline=None)
@given(logits_strategy(4, 3, 2), st.floats(0.0, 0.5), st.floats(0.0, 1.0))
def test_soft_routing_weights_are_a_distribution(logits, delta, beta):
    w = soft_routing_weights(logits, SoftRouting(delta=delta, beta=beta))
    assert w.shape == (4, 3)
    np.testing.assert_allclose(w.sum(axis=0), 1.0, atol=1e-12)
    assert np.all(w >= beta / 4 - 1e-12)
    # no exit before block 2: the first exit only gets the uniform share
    np.testing.assert_allclose(w[0], beta / 4)


def test_soft_routing_follows_the_exit_rule():
    """An input whose entropy stops falling after block 2 is routed to exit 3 (the first with r_i < delta);
    one whose entropy keeps falling is routed to the last exit."""
    stalls = [np.array([[0.1, 0.0]]), np.array([[2.0, 0.0]]), np.array([[2.01, 0.0]]), np.array([[2.02, 0.0]])]
    keeps = [np.array([[0.1, 0.0]]), np.array([[1.0, 0.0]]), np.array([[2.5, 0.0]]), np.array([[5.0, 0.0]])]
    sharp = SoftRouting(delta=0.1, tau=0.01, beta=0.0)
    w_stall = soft_routing_weights(stalls, sharp)[:, 0]
    w_keep = soft_routing_weights(keeps, sharp)[:, 0]
    assert w_stall.argmax() == 2 and w_stall[2] > 0.99     # r_2 = 0.45, r_3 = 0.005 < delta: leaves at block 3
    assert w_keep.argmax() == 3
    assert w_keep[3] > 0.99


def test_uniform_and_linear_weights():
    logits = [np.zeros((2, 3))] * 4
    np.testing.assert_allclose(exit_weights(logits, "uniform"), np.full((4, 2), 0.25))
    np.testing.assert_allclose(exit_weights(logits, "linear")[:, 0], [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match="unknown exit weighting"):
        exit_weights(logits, "cubic")


def test_multi_exit_loss_is_weighted_sum_of_cross_entropies():
    rng = np.random.default_rng(0)
    logits = [rng.standard_normal((5, 3)) for _ in range(3)]
    y = rng.integers(0, 3, 5)
    loss = MultiExitLoss(3, "linear")
    total = loss.forward(logits, y)
    ce = [np.mean(-(z - np.log(np.exp(z).sum(1, keepdims=True)))[np.arange(5), y]) for z in logits]
    np.testing.assert_allclose(total, np.dot([1 / 6, 2 / 6, 3 / 6], ce))


def test_model_returns_every_exit_and_float32():
    cfg = ModelConfig(vocab_size=20, num_classes=3, token_dim=6, position_dim=2, heads=2, blocks=4)
    model = BEExformer(cfg, np.random.default_rng(0))
    ids = np.array([[2, 5, 6, 0], [2, 7, 0, 0]])
    logits = model.forward(ids, (ids > 0).astype(np.float32))
    assert len(logits) == 4 and all(z.shape == (2, 3) and z.dtype == np.float32 for z in logits)


@pytest.mark.parametrize("bad, message", [
    (dict(heads=3), "divisible"), (dict(ffn="mlp"), "ffn"), (dict(estimator="tanh"), "estimator"),
    (dict(num_classes=1), "num_classes"), (dict(regression=True), "regression needs"),
    (dict(position_mode="sum"), "position_mode"), (dict(dropout=1.0), "dropout"),
    (dict(heads=0), "heads must be >= 1"), (dict(vocab_size=3), "vocab_size must be >= 5"),
])
def test_config_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig.from_dict(dict(dict(vocab_size=20, token_dim=6, position_dim=2, heads=2), **bad))


def test_config_round_trip_and_unknown_keys():
    cfg = ModelConfig(vocab_size=20)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown model config keys: colour"):
        ModelConfig.from_dict(dict(cfg.to_dict(), colour="red"))
