"""The analytical MAC / FLOP counter against counts worked out by hand.

The tiny config: d = 6 + 2 = 8 (token + position widths), h = 2 heads,
N = 3 blocks, C = 2 classes, and inputs of real length L = 5 unless said.
"""
import numpy as np
import pytest

import beexnp.linear
from beexnp.flops import (Cost, block_flops, block_layers, flops_cut, flops_table, format_table,
                          model_flops, train_step_flops)
from beexnp.config import ModelConfig
from beexnp.model import BEExformer


def tiny(**overrides):
    return ModelConfig(vocab_size=13, token_dim=6, position_dim=2, heads=2, blocks=3,
                       num_classes=2, dropout=0.0, **overrides).validate()


# One block + its exit at L = 5, d = 8, C = 2, by hand:
#   qkv      3·L·d·d = 3·5·64 = 960   binary
#   out      L·d·d   =   5·64 = 320   binary
#   SLFN     4·L·d·d = 4·5·64 = 1280  binary
#   scores   L·L·d   = 25·8   = 200   real
#   context  L·L·d   = 25·8   = 200   real
#   pool     L·d     = 5·8    = 40    real
#   exit     d·C     = 8·2    = 16    real
# binary = 960 + 320 + 1280 = 2560;  real = 200 + 200 + 40 + 16 = 456
BLOCK_BINARY, BLOCK_REAL = 2560, 456


def test_one_block_by_hand():
    cost = block_flops(tiny(), 5)
    assert cost.binary_macs == BLOCK_BINARY
    assert cost.real_macs == BLOCK_REAL
    assert cost.flops == 2560 + 456 == 3016                    # W1A32: a binary MAC is a real multiply-add
    assert cost.float_ops == 2 * 3016                          # one multiply + one add per MAC


def test_block_without_its_exit_head():
    # minus pool (40) and exit (16): real 456 - 56 = 400
    cost = block_flops(tiny(), 5, exit_head=False)
    assert (cost.real_macs, cost.binary_macs) == (400, 2560)


def test_whole_model_by_hand():
    # 3 blocks: binary 3·2560 = 7680, real 3·456 = 1368, FLOPs 9048
    cost = model_flops(tiny(), 5)
    assert (cost.real_macs, cost.binary_macs, cost.flops) == (1368, 7680, 9048)


def test_w1a1_counts_binary_macs_at_one_64th():
    # per block: 456 + 2560/64 = 456 + 40 = 496;  model: 3·496 = 1488
    cost = model_flops(tiny(binarize_activations=True), 5)
    assert cost.w1a1
    assert (cost.real_macs, cost.binary_macs) == (1368, 7680)  # the MACs themselves do not change
    assert cost.flops == 1488


def test_full_precision_twin_has_only_real_macs():
    # binarize off: the same 3016 MACs per block, all real; W1A1 has no effect without binary weights
    for cfg in (tiny(binarize=False), tiny(binarize=False, binarize_activations=True)):
        cost = block_flops(cfg, 5)
        assert (cost.real_macs, cost.binary_macs, cost.flops) == (3016, 0, 3016)
        assert not cost.w1a1


def test_ffn_ablation_costs_what_the_slfn_costs():
    # FFN with d_ff = 2d = 16: up L·d·d_ff = 5·8·16 = 640, down 640 -> 1280 = SLFN's 4·L·d·d
    slfn, ffn = block_flops(tiny(), 5), block_flops(tiny(ffn="ffn"), 5)
    assert (ffn.real_macs, ffn.binary_macs) == (slfn.real_macs, slfn.binary_macs) == (456, 2560)
    rows = {r["layer"]: r for r in flops_table(tiny(ffn="ffn"), 5)}
    assert rows["ffn.up"]["binary_macs"] == rows["ffn.down"]["binary_macs"] == 640


def test_attention_grows_with_the_real_length():
    # L = 3: binary 8·3·64 = 1536; real 2·9·8 + 3·8 + 16 = 144 + 24 + 16 = 184
    # L = 7: binary 8·7·64 = 3584; real 2·49·8 + 7·8 + 16 = 784 + 56 + 16 = 856
    cost = block_flops(tiny(), np.array([3, 5, 7]))
    np.testing.assert_array_equal(cost.binary_macs, [1536, 2560, 3584])
    np.testing.assert_array_equal(cost.real_macs, [184, 456, 856])
    assert np.all(np.diff(cost.flops) > 0)
    # the quadratic part: doubling L more than doubles the attention products
    rows = {L: {r["layer"]: r for r in flops_table(tiny(), L)} for L in (4, 8)}
    assert rows[8]["attn.scores"]["real_macs"] == 4 * rows[4]["attn.scores"]["real_macs"] == 4 * 128


def test_early_exit_average_is_the_mean_over_inputs_up_to_each_exit():
    # lengths 3, 5, 7 leaving at blocks 1, 2, 3:
    #   3: 1·(184 + 1536) = 1720;  5: 2·3016 = 6032;  7: 3·(856 + 3584) = 13320
    lengths, exits = np.array([3, 5, 7]), np.array([1, 2, 3])
    per_input = model_flops(tiny(), lengths, exits).flops
    np.testing.assert_array_equal(per_input, [1720, 6032, 13320])
    assert per_input.mean() == pytest.approx((1720 + 6032 + 13320) / 3)
    # full depth: 3·1720 + 3·3016 + 13320 = 5160 + 9048 + 13320 = 27528 in all;
    # cut = 1 - 21072 / 27528
    assert flops_cut(tiny(), lengths, exits) == pytest.approx(1 - 21072 / 27528)
    np.testing.assert_array_equal(model_flops(tiny(), lengths).flops, [5160, 9048, 13320])


def test_exit_blocks_broadcast_and_are_checked():
    np.testing.assert_array_equal(model_flops(tiny(), [5, 5], 2).flops, [6032, 6032])
    with pytest.raises(ValueError, match="1..3"):
        model_flops(tiny(), [5, 5], [0, 2])                     # exit blocks are 1-based
    with pytest.raises(ValueError, match="1..3"):
        model_flops(tiny(), 5, 4)
    with pytest.raises(ValueError, match=">= 1"):
        block_flops(tiny(), [5, 0])
    with pytest.raises(TypeError):
        block_flops(tiny(), 4.5)


def test_train_step_is_three_forwards_of_the_padded_batch():
    # batch 3 of T = 5: forward 3·9048 = 27144 MACs; step 3·27144 = 81432 (real 3·3·1368 = 12312)
    step = train_step_flops(tiny(), batch=3, tokens=5)
    assert (step.real_macs, step.binary_macs) == (12312, 69120)
    assert step.macs == 81432 and step.float_ops == 162864
    # training runs in floats: no 1/64 discount even for a W1A1 config
    w1a1 = train_step_flops(tiny(binarize_activations=True), batch=3, tokens=5)
    assert not w1a1.w1a1 and w1a1.flops == 81432


def test_table_rows_add_up_and_print():
    rows = flops_table(tiny(), 5)
    by_name = {r["layer"]: r for r in rows}
    layers = [r for r in rows if r["layer"] not in ("block + exit", "model (3 blocks)")]
    assert sum(r["real_macs"] for r in layers) == by_name["block + exit"]["real_macs"] == 456
    assert sum(r["binary_macs"] for r in layers) == by_name["block + exit"]["binary_macs"] == 2560
    assert by_name["model (3 blocks)"]["flops"] == 9048
    assert sum(r["share"] for r in layers) == pytest.approx(1.0)
    text = format_table(rows)
    assert len({len(line) for line in text.splitlines()}) == 1    # aligned: every line the same width
    assert "attn.qkv" in text and "3·L·d·d" in text


def test_cost_refuses_to_mix_w1a1_and_w1a32():
    with pytest.raises(ValueError):
        Cost(1, 64, w1a1=True) + Cost(1, 64, w1a1=False)
    assert (2 * Cost(1, 64, w1a1=True)).flops == 2 * (1 + 1)


def test_linear_layer_counts_match_the_model_code(monkeypatch):
    """Count the MACs the model's affine layers really do (rows · in · out of each
    product) on an unpadded batch and compare with the counter: B·N·(8·T·d·d) binary
    and B·N·d·C in the exit classifiers.  Catches a formula that drifts from the code."""
    done = []

    def counting(x, W, b):
        done.append(x.size // x.shape[-1] * W.shape[0] * W.shape[1])    # rows · in · out
        return affine(x, W, b)

    affine = beexnp.linear.affine_forward
    monkeypatch.setattr(beexnp.linear, "affine_forward", counting)
    cfg, B, T = tiny(), 2, 5
    model = BEExformer(cfg, np.random.default_rng(0)).eval()
    ids = np.random.default_rng(1).integers(4, cfg.vocab_size, size=(B, T))
    model.forward(ids, np.ones((B, T)))
    per_layer = {name: cost(cfg, T) for name, _, cost in block_layers(cfg)}
    linear_macs = sum(per_layer[n].macs for n in ("attn.qkv", "attn.out", "ffn.gates", "exit.linear"))
    assert sum(done) == B * cfg.blocks * linear_macs == 2 * 3 * (960 + 320 + 1280 + 16)
