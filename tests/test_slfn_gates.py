"""The SLFN's gate ablation (DESIGN §4.4): a gate left out is the constant 1 and has no matrix."""
import numpy as np
import pytest

from beexnp.activations import sigmoid
from beexnp.block import Block
from beexnp.config import ModelConfig
from beexnp.flops import block_flops
from beexnp.layer_checks import kink_free
from beexnp.model import BEExformer
from beexnp.slfn import SLFN_VARIANTS


def columns(layer, H, k):
    """The fused layer's k + 1 pre-activation blocks, each (B, T, d)."""
    z = H @ layer.gates.effective_weight() + layer.gates.bias.data
    return np.split(z, k + 1, axis=-1)


@pytest.mark.parametrize("gates, k", [("all", 3), ("learn", 1), ("forget", 2)])
def test_each_variant_computes_its_formula(rng, gates, k):
    d = 6
    layer = SLFN_VARIANTS[gates](d, rng, binary=False, dtype=np.float64)
    layer.gates.bias.data[...] = rng.standard_normal(k * d + d)
    H = kink_free(rng, (2, 3, d))
    z = columns(layer, H, k)
    c = np.tanh(z[-1])
    if gates == "all":
        f1, l, f2 = (sigmoid(x) for x in z[:3])
        expected = f2 * np.tanh(f1 * H + l * c)
    elif gates == "learn":
        expected = np.tanh(H + sigmoid(z[0]) * c)
    else:
        f1, f2 = sigmoid(z[0]), sigmoid(z[1])
        expected = f2 * np.tanh(f1 * H + c)
    np.testing.assert_allclose(layer.forward(H), expected, rtol=1e-12, atol=1e-12)
    assert layer.gates.weight.shape == (d, (k + 1) * d)


def test_the_default_is_todays_slfn_bitwise(rng):
    """slfn_gates="all" builds the same matrix from the same draws, so old checkpoints and seeds give the same model."""
    cfg = ModelConfig(vocab_size=11, token_dim=6, position_dim=2, heads=2, blocks=2)
    assert cfg.slfn_gates == "all"
    a = BEExformer(cfg, np.random.default_rng(3))
    b = BEExformer(ModelConfig(**dict(cfg.to_dict(), slfn_gates="all")), np.random.default_rng(3))
    for (name, p), (_, q) in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    assert a.blocks[0].ffn.gates.weight.shape == (8, 32)


def test_fewer_gates_cost_fewer_binary_macs():
    base = dict(vocab_size=11, token_dim=6, position_dim=2, heads=2, blocks=2)
    cost = {g: block_flops(ModelConfig(**base, slfn_gates=g), 5, exit_head=False).binary_macs
            for g in ("all", "learn", "forget")}
    d, L = 8, 5
    assert cost["all"] - cost["forget"] == cost["forget"] - cost["learn"] == L * d * d     # one d x d matrix each


def test_unknown_gate_set():
    with pytest.raises(ValueError, match="slfn_gates must be one of 'all', 'learn', 'forget'"):
        ModelConfig(vocab_size=11, slfn_gates="both").validate()
    with pytest.raises(ValueError, match="slfn_gates must be one of all, learn, forget, got 'both'"):
        Block(4, 2, np.random.default_rng(0), slfn_gates="both")
