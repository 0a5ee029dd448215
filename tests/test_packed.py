"""The packed model (beexnp/packed.py): a whole tiny BEExformer computed from its
packed bits gives the float binary-mode model's logits at every exit (W1A32 and
W1A1, real and binarized embeddings, widths that are not multiples of 8); the
file round trip through `export`; float16; atomic writes; clear errors."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beexnp.checkpoint import load_model, save_checkpoint
from beexnp.cli import main
from beexnp.config import ModelConfig
from beexnp.criteria import FractionalEntropy
from beexnp.glue import Tokenizer
from beexnp.inference import early_exit_forward
from beexnp.model import BEExformer
from beexnp.packed import (PackedBinaryLinear, PackedEmbedding, load_packed, load_unpacked, model_from_packed,
                           pack_model, packed_meta, read_packed, save_packed)

VOCAB = 13


def random_model(rng, **config):
    """A float model in binary eval mode with every parameter random (biases, norms and exits too)."""
    model = BEExformer(ModelConfig(vocab_size=VOCAB, **config), rng)
    model.load_state_dict({n: rng.uniform(-1, 1, p.shape) for n, p in model.parameters()})
    return model.eval()


def random_batch(rng, B, T):
    """ids (B, T) and a mask of real-token prefixes, every row with at least one real token."""
    lengths = rng.integers(1, T + 1, B)
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.float32)       # (B, T)
    return rng.integers(1, VOCAB, (B, T)) * mask.astype(np.int64), mask


def assert_same_logits(packed_logits, float_logits, exact):
    assert len(packed_logits) == len(float_logits)
    for zp, zf in zip(packed_logits, float_logits):
        assert zp.dtype == np.float32
        if exact:
            np.testing.assert_array_equal(zp, zf)
        else:
            np.testing.assert_allclose(zp, zf, rtol=1e-5, atol=1e-5)


@st.composite
def tiny_configs(draw):
    """d = token + position width, even (2 heads), often not a multiple of 8."""
    token = draw(st.integers(1, 13))
    position = draw(st.integers(1, 12).filter(lambda p: (token + p) % 2 == 0))
    return dict(token_dim=token, position_dim=position, heads=2, blocks=draw(st.integers(1, 3)),
                ffn=draw(st.sampled_from(["slfn", "ffn"])), num_classes=draw(st.integers(2, 3)),
                binarize_activations=draw(st.booleans()), binarize_embeddings=draw(st.booleans()))


@settings(max_examples=25, deadline=None)
@given(config=tiny_configs(), B=st.integers(1, 4), T=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_packed_model_gives_the_float_models_logits_at_every_exit(config, B, T, seed):
    rng = np.random.default_rng(seed)
    model = random_model(rng, **config)
    ids, mask = random_batch(rng, B, T)
    packed = model_from_packed(pack_model(model), packed_meta(model))
    assert_same_logits(packed.forward(ids, mask), model.forward(ids, mask), exact=True)
    # the same numbers: W1A32 multiplies the same +-alpha weights; W1A1's float path forms the exact
    # integer +-1 products first and scales by alpha after, as XNOR-popcount does
    binary_layers = [m for m in packed.modules() if isinstance(m, (PackedBinaryLinear, PackedEmbedding))]
    per_block = 3 if config["ffn"] == "slfn" else 4                               # qkv, out, gates | up, down
    assert len(binary_layers) == per_block * config["blocks"] + config["binarize_embeddings"]
    assert not any(p.binary for _, p in packed.parameters())                    # no latent float weights left


@pytest.mark.parametrize("acts", [False, True])
def test_early_exit_on_the_packed_model(acts):
    """Early exit gathers the active rows and cuts the padding: the packed layers take any row count."""
    rng = np.random.default_rng(11)
    model = random_model(rng, token_dim=5, position_dim=5, heads=2, blocks=3, binarize_activations=acts,
                         binarize_embeddings=True)
    ids, mask = random_batch(rng, 16, 7)
    packed = model_from_packed(pack_model(model), packed_meta(model))
    rule = FractionalEntropy(0.05)
    got, want = early_exit_forward(packed, ids, mask, rule), early_exit_forward(model, ids, mask, rule)
    np.testing.assert_array_equal(got.exit_block, want.exit_block)
    assert len(set(want.exit_block.tolist())) > 1                                # rows really left at different blocks
    np.testing.assert_allclose(got.logits, want.logits, rtol=1e-5, atol=1e-5)


@pytest.fixture
def checkpoint(tmp_path):
    """A saved tiny W1A1 model with binarized embeddings, a tokenizer and a task in its card."""
    rng = np.random.default_rng(5)
    model = random_model(rng, token_dim=6, position_dim=4, heads=2, blocks=2,
                         binarize_activations=True, binarize_embeddings=True)
    tokenizer = Tokenizer.fit(["a good film", "a bad plot", "the film is dull", "great actors"], max_size=VOCAB)
    return save_checkpoint(tmp_path / "ckpt", model, {"task": "sst2", "tokenizer": tokenizer.state_dict(),
                                                      "metrics": {"dev": [{"accuracy": 0.5}]}})


def test_export_then_load_through_the_command_line(checkpoint, tmp_path, capsys):
    out = tmp_path / "model.packed.npz"
    assert main(["export", str(checkpoint), str(out)]) == 0
    assert f"{out.stat().st_size:,} bytes on disk" in capsys.readouterr().out
    arrays, meta = read_packed(out)
    assert meta["format"] == "beexnp.packed/2" and meta["bitorder"] == "little"
    assert meta["binary"]["embedding.weight"] == {"shape": [VOCAB, 6], "axis": 1}
    assert meta["binary"]["blocks.0.attn.qkv.weight"] == {"shape": [10, 30], "axis": 0}
    assert arrays["blocks.0.attn.qkv.weight.bits"].shape == (30, 2)                # 10 inputs -> 2 bytes per row
    assert arrays["blocks.0.attn.qkv.weight.alpha"].dtype == np.float32
    assert "blocks.0.attn.qkv.weight" not in arrays                              # no latent weights on disk

    float_model, card = load_model(checkpoint)
    model, tokenizer, packed_card = load_packed(out)
    assert tokenizer.vocab == Tokenizer.from_state_dict(card["tokenizer"]).vocab
    assert packed_card["task"] == "sst2" and packed_card["model_config"] == card["model_config"]
    assert not {"files", "rng", "optimizer", "state"} & set(packed_card)         # training-only entries dropped
    ids, mask = random_batch(np.random.default_rng(1), 3, 5)
    assert_same_logits(model.forward(ids, mask), float_model.eval().forward(ids, mask), exact=False)


def test_float16_export_halves_every_real_number_and_keeps_the_bits(checkpoint, tmp_path):
    out, full = tmp_path / "half.npz", tmp_path / "full.npz"
    assert main(["export", str(checkpoint), str(out), "--float16"]) == 0
    assert main(["export", str(checkpoint), str(full)]) == 0
    arrays, meta = read_packed(out)
    arrays32, _ = read_packed(full)
    assert meta["real_dtype"] == "float16"
    assert {a.dtype for k, a in arrays.items() if not k.endswith(".bits")} == {np.dtype(np.float16)}
    for k, a in arrays.items():
        if k.endswith(".bits"):
            np.testing.assert_array_equal(a, arrays32[k])                         # the same sign bits
        else:
            np.testing.assert_array_equal(a, arrays32[k].astype(np.float16))      # float32 values, rounded once
    # half precision moves the logits by about float16's resolution, not more
    float_model, _ = load_model(checkpoint)
    ids, mask = random_batch(np.random.default_rng(2), 3, 5)
    for zp, zf in zip(load_packed(out)[0].forward(ids, mask), float_model.eval().forward(ids, mask)):
        np.testing.assert_allclose(zp, zf, rtol=1e-2, atol=1e-2)


def test_write_is_atomic(checkpoint, tmp_path, monkeypatch):
    """A failed write leaves the previous file whole and no temporary file behind."""
    out = tmp_path / "model.packed.npz"
    model, card = load_model(checkpoint)
    save_packed(out, model, card)
    before = out.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save_packed(out, model, card)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "model.packed.npz"]


def test_clear_errors(checkpoint, tmp_path):
    with pytest.raises(ValueError, match="not a packed beexnp model"):
        read_packed(checkpoint / "model.npz")
    model, _ = load_model(checkpoint)
    arrays, meta = pack_model(model), packed_meta(model)
    arrays["blocks.1.ffn.gates.weight.bits"] = arrays["blocks.1.ffn.gates.weight.bits"][:, :1]
    with pytest.raises(ValueError, match="blocks.1.ffn.gates.weight.bits"):
        model_from_packed(arrays, meta)
    path = tmp_path / "future.npz"
    np.savez(path, __meta__=np.frombuffer(json.dumps({"format": "beexnp.packed/9"}).encode(), np.uint8))
    with pytest.raises(ValueError, match="packed/9"):
        read_packed(path)


@pytest.mark.parametrize("real_dtype", [np.float16, np.float32])
def test_unpacking_gives_back_a_float_model_with_the_same_bits_and_logits(real_dtype, tmp_path):
    """load_unpacked: latent weights +-alpha; repacked, the same bits and alphas (exactly, from float16);
    its logits are the packed model's, and its size report and export work like a trained model's."""
    rng = np.random.default_rng(12)
    model = random_model(rng, token_dim=11, position_dim=5, heads=2, blocks=2, binarize_embeddings=True)
    save_packed(tmp_path / "m.npz", model, real_dtype=real_dtype)
    arrays, _ = read_packed(tmp_path / "m.npz")
    unpacked, _, card = load_unpacked(tmp_path / "m.npz")
    packed, _, _ = load_packed(tmp_path / "m.npz")
    assert card["model_config"] == model.config.to_dict() and not unpacked.training
    again = pack_model(unpacked, real_dtype)
    assert set(again) == set(arrays)
    for key, array in arrays.items():
        if key.endswith(".bits") or real_dtype == np.float16:
            np.testing.assert_array_equal(again[key], array, err_msg=key)
        else:                                                                     # mean |W| may round by an ulp
            np.testing.assert_allclose(again[key], array, rtol=1e-6, err_msg=key)
    ids, mask = random_batch(rng, 4, 6)
    assert_same_logits(unpacked.forward(ids, mask), packed.forward(ids, mask), exact=real_dtype == np.float16)
    latent = unpacked.blocks[0].attn.qkv.weight.data                              # (in, out) = +-alpha_j
    alpha = arrays["blocks.0.attn.qkv.weight.alpha"].astype(np.float32)
    np.testing.assert_array_equal(np.abs(latent), np.broadcast_to(alpha, latent.shape))
