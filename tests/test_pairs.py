"""Sentence pairs (DESIGN §2.5, §5.6): segment ids, the siamese split, the model with both options,
early exit and FLOPs on it, the packed model, and the trainer's refusal of a single-sentence task."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import beexnp.linear
from beexnp.config import ModelConfig
from beexnp.criteria import FractionalEntropy, MaxProbability, NeverExit, RelativeChange
from beexnp.flops import block_layers, input_lengths, model_flops
from beexnp.glue import EncodedSplit
from beexnp.glue.tokenizer import CLS_ID, PAD_ID, SEP_ID
from beexnp.inference import early_exit_forward, early_exit_split, simulate_exits
from beexnp.layer_checks import pair_batch
from beexnp.model import BEExformer
from beexnp.packed import model_from_packed, pack_model, packed_meta
from beexnp.pairs import part_lengths, segment_ids, split_pair

BLOCKS = 4


def pair_model(rng, regression=False, **options):
    cfg = ModelConfig(vocab_size=17, num_classes=1 if regression else 3, regression=regression, token_dim=10,
                      position_dim=2, heads=2, blocks=BLOCKS, dropout=0.3,
                      **dict(dict(segments=True, pair_encoding="siamese"), **options))
    return BEExformer(cfg, rng)


def pairs(rng, batch=12, tokens=11):
    ids, mask = pair_batch(rng, batch, tokens, 17)
    return ids, mask.astype(np.float32)


def test_segment_ids_are_one_after_the_first_sep():
    ids = np.array([[CLS_ID, 7, 8, SEP_ID, 9, 10, PAD_ID],
                    [CLS_ID, 5, SEP_ID, 6, SEP_ID, 4, 4],
                    [CLS_ID, 5, 6, 7, 8, 9, PAD_ID]])                   # a single sentence: all segment 0
    np.testing.assert_array_equal(segment_ids(ids), [[0, 0, 0, 0, 1, 1, 1],
                                                     [0, 0, 0, 1, 1, 1, 1],
                                                     [0, 0, 0, 0, 0, 0, 0]])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 5), tokens=st.integers(2, 9))
def test_split_pair_keeps_every_real_token_once_in_order(seed, batch, tokens):
    rng = np.random.default_rng(seed)
    ids, mask = pair_batch(rng, batch, tokens, 17)
    seg = segment_ids(ids)
    new_ids, new_mask, new_seg = split_pair(ids, mask, seg)
    assert new_ids.shape[0] == 2 * batch and new_mask.shape == new_ids.shape == new_seg.shape
    for b in range(batch):
        a_part = new_ids[b][new_mask[b] > 0]
        b_part = new_ids[batch + b][new_mask[batch + b] > 0]
        np.testing.assert_array_equal(np.concatenate([a_part, b_part]), ids[b][mask[b] > 0])
        assert a_part[0] == CLS_ID and b_part[0] == SEP_ID and SEP_ID not in a_part
        assert not new_seg[b].any() and new_seg[batch + b][1:int(new_mask[batch + b].sum())].all()
    assert np.all(new_ids[new_mask == 0] == PAD_ID)
    assert new_mask.sum(axis=1).max() == new_ids.shape[1]                     # padded to the longest part only
    np.testing.assert_array_equal(part_lengths(ids, mask).sum(axis=1), mask.sum(axis=1))


def test_siamese_needs_a_sep_in_every_row(rng):
    model = pair_model(rng)
    ids, mask = pairs(rng)
    ids[2] = np.where(ids[2] == SEP_ID, 5, ids[2])
    with pytest.raises(ValueError, match=r"rows \[2\] have no \[SEP\]"):
        model.forward(ids, mask)


def test_siamese_refuses_padding_before_the_tokens(rng):
    """split_pair cuts at [SEP] from the row's start: a left-padded row would be cut wrongly, so it is refused."""
    model = pair_model(rng)
    ids, mask = pairs(rng)
    row = int(np.flatnonzero(mask.sum(axis=1) < mask.shape[1])[0])      # a row with padding
    ids[row], mask[row] = np.roll(ids[row], 1), np.roll(mask[row], 1)      # its padding moved to the front
    with pytest.raises(ValueError, match="padding at its end"):
        model.forward(ids, mask)


def test_segments_start_at_zero_so_the_model_starts_as_the_one_without(rng):
    ids, mask = pairs(rng)
    for encoding in ("joint", "siamese"):
        with_segments = pair_model(np.random.default_rng(0), pair_encoding=encoding).eval()
        without = pair_model(np.random.default_rng(0), pair_encoding=encoding, segments=False).eval()
        assert not with_segments.segment.weight.data.any()
        for a, b in zip(with_segments.forward(ids, mask), without.forward(ids, mask)):
            np.testing.assert_array_equal(a, b)
        with_segments.segment.weight.data[1] = 0.5                              # segment b moves the logits
        assert not np.allclose(with_segments.forward(ids, mask)[-1], without.forward(ids, mask)[-1])


def test_siamese_exits_read_each_sentence_alone(rng):
    """Changing a token of sentence b leaves every block's encoding of sentence a (u) unchanged."""
    model = pair_model(rng).eval()
    ids, mask = pairs(rng, batch=4)
    model.forward(ids, mask)
    u = [head.u.copy() for head in model.exits]
    parts = part_lengths(ids, mask)
    changed = ids.copy()
    changed[np.arange(4), parts[:, 0] + parts[:, 1] - 1] = 16                # the last token of each b
    changed[np.arange(4), parts[:, 0]] = SEP_ID                               # (keep the [SEP] if b is only that)
    model.forward(changed, mask)
    for before, head in zip(u, model.exits):
        np.testing.assert_array_equal(before, head.u)


@pytest.mark.parametrize("options", [dict(), dict(pair_encoding="joint"), dict(slfn_gates="learn"),
                                     dict(slfn_gates="forget", segments=False)], ids=str)
def test_never_firing_rule_reproduces_the_last_exit_bitwise(rng, options):
    model = pair_model(rng, **options)
    ids, mask = pairs(rng)
    result = early_exit_forward(model, ids, mask, NeverExit())
    model.eval()
    assert np.all(result.exit_block == BLOCKS)
    np.testing.assert_array_equal(result.logits, model.forward(ids, mask)[-1])


@pytest.mark.parametrize("rule", [FractionalEntropy(0.0005), MaxProbability(0.4), NeverExit()], ids=lambda r: r.name)
def test_siamese_early_exit_equals_the_full_forward_at_each_exit(rule):
    rng = np.random.default_rng(5)
    model = pair_model(rng)
    ids, mask = pairs(rng, batch=16)
    result = early_exit_forward(model, ids, mask, rule)
    model.eval()
    full = np.stack(model.forward(ids, mask))                                 # (N, B, C)
    np.testing.assert_allclose(result.logits, full[result.exit_block - 1, np.arange(len(ids))], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(simulate_exits(full, rule), result.exit_block)
    if rule.name == "fractional":
        assert len(np.unique(result.exit_block)) >= 2, "no row left early: the gather is not exercised"


def test_siamese_regression_early_exit_over_a_split(rng):
    model = pair_model(rng, regression=True)
    ids, mask = pairs(rng, batch=10)
    data = EncodedSplit(tokens=ids[mask > 0], offsets=np.concatenate([[0], np.cumsum(mask.sum(1))]).astype(np.int64),
                        labels=np.zeros(10, np.float32))
    whole = early_exit_split(model, data, RelativeChange(0.3), batch_size=3)    # batches of 3: gathers per batch
    model.eval()
    full = np.stack(model.forward(*data.padded(np.arange(10))))[..., 0]
    np.testing.assert_allclose(whole.logits[:, 0], full[whole.exit_block - 1, np.arange(10)], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cosine", [False, True], ids=["4d", "cosine"])
def test_flops_count_what_the_siamese_model_multiplies(rng, monkeypatch, cosine):
    """Every affine product of a forward (rows · in · out), on pairs whose parts have equal lengths (no padding),
    against the counter's linear layers: the blocks on both parts, the 4d-wide (4d + 1 with the cosine) exit
    classifier once."""
    done = []
    affine = beexnp.linear.affine_forward

    def counting(x, W, b):
        done.append(x.size // x.shape[-1] * W.shape[0] * W.shape[1])
        return affine(x, W, b)

    monkeypatch.setattr(beexnp.linear, "affine_forward", counting)
    model = pair_model(rng, slfn_gates="forget", pair_cosine=cosine).eval()
    cfg, B = model.config, 3
    ids = rng.integers(4, 17, size=(B, 8))
    ids[:, 0], ids[:, 4] = CLS_ID, SEP_ID                                       # parts [CLS] a and [SEP] b of 4 each
    model.forward(ids, np.ones((B, 8)))
    lengths = np.array([4, 4])
    costs = {name: cost for name, _, cost in block_layers(cfg)}
    linear = ("attn.qkv", "attn.out", "ffn.gates")
    per_input = sum(2 * costs[n](cfg, 4).macs for n in linear) + costs["exit.linear"](cfg, 4).macs
    assert sum(done) == B * cfg.blocks * per_input
    assert costs["exit.linear"](cfg, 4).macs == (4 * cfg.dim + cosine) * cfg.num_classes
    assert ("exit.cosine" in costs) == cosine and (not cosine or costs["exit.cosine"](cfg, 4).macs == 3 * cfg.dim)
    if cosine:                                  # once per input, as the classifier: N (3d + C) more, not per part
        without = model_flops(ModelConfig(**dict(cfg.to_dict(), pair_cosine=False)), lengths[None, :])
        assert int(model_flops(cfg, lengths[None, :]).macs[0] - without.macs[0]) == \
            cfg.blocks * (3 * cfg.dim + cfg.num_classes)
    assert costs["ffn.gates"](cfg, 4).macs == 3 * 4 * cfg.dim ** 2                # forget gates: [f1 | f2 | c]
    full = model_flops(cfg, lengths[None, :])
    joint = model_flops(ModelConfig(**dict(cfg.to_dict(), pair_encoding="joint")), np.array([8]))
    assert int(full.macs[0]) < int(joint.macs[0])                                 # 2·4² < 8² attention, despite 4d·C
    with pytest.raises(ValueError, match="two sentences' lengths"):
        model_flops(cfg, np.array([8]))


def test_input_lengths_of_a_split(rng):
    ids, mask = pairs(rng, batch=6)
    data = EncodedSplit(tokens=ids[mask > 0], offsets=np.concatenate([[0], np.cumsum(mask.sum(1))]).astype(np.int64),
                        labels=None)
    siamese = pair_model(rng).config
    np.testing.assert_array_equal(input_lengths(siamese, data), part_lengths(ids, mask))
    np.testing.assert_array_equal(input_lengths(ModelConfig(vocab_size=17), data), data.lengths)


@pytest.mark.parametrize("cosine", [False, True], ids=["4d", "cosine"])
def test_packed_model_with_the_pair_options_gives_the_same_logits(rng, cosine):
    model = pair_model(rng, slfn_gates="learn", pair_cosine=cosine).eval()
    model.segment.weight.data[...] = rng.standard_normal(model.segment.weight.shape)
    ids, mask = pairs(rng)
    packed = model_from_packed(pack_model(model), packed_meta(model))
    for a, b in zip(packed.forward(ids, mask), model.forward(ids, mask)):
        np.testing.assert_array_equal(a, b)


def test_trainer_refuses_the_siamese_encoding_on_a_single_sentence_task(glue_dir, tmp_path):
    from beexnp.config import TrainConfig
    from beexnp.train import Trainer
    with pytest.raises(ValueError, match="needs a sentence-pair task; sst2"):
        Trainer(TrainConfig(task="sst2", min_freq=1), dict(pair_encoding="siamese"), tmp_path, glue_dir=glue_dir,
                progress=False)


def test_pair_cosine_is_the_last_feature_column(rng):
    """DESIGN §5.6: z = [u, v, |u - v|, u * v, cos(u, v)] @ W + b, the cosine computed here with np.linalg.norm
    from the masked means of each sentence's rows (the head's own u and v are not trusted for it)."""
    model = pair_model(rng, pair_cosine=True).eval()
    ids, mask = pairs(rng, batch=5)
    logits = model.forward(ids, mask)
    X, m = model.start(ids, mask)
    for block, head, z in zip(model.blocks, model.exits, logits):
        X = block.forward(X, m)
        pooled = (X * m[:, :, None]).sum(1) / m.sum(1, keepdims=True)               # (2B, d)
        u, v = pooled[:5], pooled[5:]
        cos = np.einsum("bd,bd->b", u, v) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1))
        features = np.concatenate([u, v, np.abs(u - v), u * v, cos[:, None]], axis=1)
        np.testing.assert_allclose(z, features @ head.linear.weight.data + head.linear.bias.data, rtol=1e-4,
                                   atol=1e-5)
        assert head.linear.weight.shape == (4 * model.config.dim + 1, model.config.num_classes)


def test_pair_cosine_needs_the_siamese_encoding():
    with pytest.raises(ValueError, match="only pair_encoding='siamese' has"):
        ModelConfig(vocab_size=17, pair_cosine=True).validate()
    assert ModelConfig(vocab_size=17, pair_encoding="siamese", pair_cosine=True).validate().exit_width == 4 * 128 + 1
