"""The size report (beexnp/size.py): bytes measured from the packed arrays equal the
analytical formula for any config; the twin is 32 bits per parameter; the default
config's figures by hand; the command line and the exported file's size on disk."""
import dataclasses
import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from beexnp.checkpoint import save_checkpoint
from beexnp.cli import main
from beexnp.config import ModelConfig
from beexnp.model import BEExformer
from beexnp.size import analytical_bytes, by_component, twin_config, variant_report


def twin_bytes(config, rng):
    """The twin's bytes per component, measured: a float32 BEExformer's parameters."""
    twin = BEExformer(twin_config(config), rng)
    return by_component(((n, p.data) for n, p in twin.parameters()), config.ffn), twin.num_parameters()


@settings(max_examples=30, deadline=None)
@given(token=st.integers(1, 20), position=st.integers(0, 12), blocks=st.integers(1, 3),
       ffn=st.sampled_from(["slfn", "ffn"]), vocab=st.integers(5, 40), classes=st.integers(2, 4),
       binarize=st.booleans(), embeddings=st.booleans(), real_dtype=st.sampled_from([np.float32, np.float16]),
       seed=st.integers(0, 2**32 - 1), gates=st.sampled_from(["all", "learn", "forget"]), segments=st.booleans(),
       pairs=st.sampled_from(["joint", "siamese", "siamese + cosine"]))
def test_measured_bytes_equal_the_formula(token, position, blocks, ffn, vocab, classes, binarize, embeddings,
                                          real_dtype, seed, gates, segments, pairs):
    config = ModelConfig(vocab_size=vocab, num_classes=classes, token_dim=token, position_dim=position, heads=1,
                         blocks=blocks, ffn=ffn, binarize=binarize, binarize_embeddings=embeddings, slfn_gates=gates,
                         segments=segments, pair_encoding=pairs.split()[0], pair_cosine="cosine" in pairs)
    rng = np.random.default_rng(seed)
    twin, twin_params = twin_bytes(config, rng)
    assert sum(twin.values()) == 4 * twin_params                                 # 32 bits per parameter
    assert twin == analytical_bytes(twin_config(config))
    report = variant_report(BEExformer(config, rng), real_dtype, twin)
    assert report["agrees"], (report["analytical"], report["components"])
    assert report["total"] == report["analytical_total"]
    assert report["ratio"] == sum(twin.values()) / report["total"] < 32


def test_default_config_by_hand():
    """d = 128 (112 + 16), 6 SLFN blocks, SST-2's vocabulary of 13,389 words, 2 classes."""
    config = ModelConfig(vocab_size=13389)
    rng = np.random.default_rng(0)
    twin, _ = twin_bytes(config, rng)
    d, N = 128, 6
    assert twin["embeddings"] == 13389 * 112 * 4
    assert twin["attention"] == twin["slfn"] == N * 4 * (4 * d * d + 4 * d)
    real = variant_report(BEExformer(config, rng), np.float32, twin)
    binar = variant_report(BEExformer(dataclasses.replace(config, binarize_embeddings=True), rng), np.float32, twin)
    assert real["agrees"] and binar["agrees"]
    bits_per_block = 4 * d * d // 8                                              # qkv + out = SLFN gates = 4d^2 bits
    assert real["components"]["attention"]["packed"] == N * (bits_per_block + 4 * 4 * d)   # + float32 biases
    assert real["components"]["alphas"]["packed"] == N * 4 * (8 * d)                      # one per output unit
    assert binar["components"]["embeddings"]["packed"] == 13389 * 112 // 8
    assert binar["components"]["alphas"]["packed"] == N * 4 * (8 * d) + 4 * 13389          # + one per row
    assert real["total"] == 6_164_208 and binar["total"] == 406_938
    assert round(real["ratio"], 2) == 1.49 and round(binar["ratio"], 2) == 22.58
    assert binar["ratio"] < 32 * 112 / (112 + 32) < 32 * 128 / (128 + 32)        # below the one-alpha-per-row ceiling


def test_size_command(tmp_path, capsys):
    rng = np.random.default_rng(3)
    model = BEExformer(ModelConfig(vocab_size=50, token_dim=10, position_dim=6, heads=2, blocks=2), rng)
    folder = save_checkpoint(tmp_path / "ckpt", model, {"task": "sst2"})
    assert main(["size", str(folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    real, binar = report["variants"]
    assert (real["binarize_embeddings"], binar["binarize_embeddings"]) == (False, True)
    assert real["agrees"] and binar["agrees"] and binar["ratio"] > real["ratio"]
    out = tmp_path / "packed.npz"
    assert main(["export", str(folder), str(out)]) == 0
    assert real["file"]["bytes_on_disk"] == out.stat().st_size                   # the size of what export writes
    assert report["checkpoint_model_npz_bytes"] == (folder / "model.npz").stat().st_size
    capsys.readouterr()
    assert main(["size", str(folder)]) == 0
    text = capsys.readouterr().out
    for expected in ("embeddings", "attention", "slfn", "norms", "exits", "alphas", "total", "agrees",
                     f"{real['total']:,}", f"{binar['ratio']:.2f}x", "21.30x", "32x"):
        assert expected in text
