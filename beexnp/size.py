r"""How big is the bit-packed model, against its full-precision twin?  (DESIGN §7)

    python -m beexnp size CHECKPOINT [--json] [--float16]
    python -m beexnp export CHECKPOINT OUT.npz [--float16]        (beexnp.packed)

**Measured**: the checkpoint is packed in memory exactly as ``export`` writes
it (``beexnp.packed.pack_model``) and each component's bytes are the sum of
its arrays' ``nbytes``; the twin (same config, ``binarize=False``, every
parameter float32) is built as a ``BEExformer`` and its parameters' ``nbytes``
summed.  The exported file is also written and its size on disk read.

**Analytical** (``analytical_bytes``), for d the width, d_t the token width,
V the vocabulary, N blocks, C outputs, and a binarized (n_in, n_out) matrix
stored as n_out rows of ceil(n_in/8) bytes, its n_out alphas and biases:

    binarized matrix   n_out * ceil(n_in / 8)  +  r n_out (alphas)  +  r n_out (bias)
    real matrix        r (n_in n_out + n_out)
    attention          (d, 3d) and (d, d) per block;  SLFN (d, 4d) ((d, (k+1)d) with k gates);  FFN (d, 2d), (2d, d)
    embeddings         V ceil(d_t / 8) + r V (binarized)   or   r V d_t (real);   + r 2 d_t with segments
    norms              r 4d per block;   exits  r (d C + C) per block  (4d C + C with the siamese pair head)

with r = 4 bytes (float32) or 2 (``--float16``).  The twin is the same with
nothing binarized and r = 4.  Tests check that formula and measurement agree.

**What bounds the ratio.**  A 1-bit weight replaces a 32-bit one: 32x at
most.  Each row of n binarized weights also carries an alpha of 8r bits, so
a matrix reaches at most 32 n / (n + 8r): with float32 alphas 25.6x for
n = 128 and 24.9x for the embedding's n = 112; with ``--float16`` (alphas
too are half precision) 28.4x and 28.0x.  Real embeddings (V x d_t floats) dominate a small
model, hence the option of binarized ones; biases, LayerNorm and exit heads
stay real.  DESIGN's formula (1 bit per binary weight, alphas not counted) is
shown beside the measurement for comparison with the paper's 21.30x.
"""
import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from beexnp.calibration import as_packed
from beexnp.checkpoint import Saved
from beexnp.flops import slfn_width
from beexnp.model import BEExformer
from beexnp.packed import META_KEY, binary_matrices, open_saved, pack_model, save_packed

PAPER_RATIO = 21.30
LIMIT = 32.0
COMPONENTS = ("embeddings", "attention", "slfn", "ffn", "norms", "exits", "alphas")


def component(name):
    """Which component an array of the packed file (or a parameter) belongs to."""
    if name.endswith(".alpha"):
        return "alphas"
    parts = name.split(".")
    if parts[0] in ("embedding", "segment", "exits"):
        return {"embedding": "embeddings", "segment": "embeddings", "exits": "exits"}[parts[0]]
    sub = parts[2]                                                     # blocks.<i>.<sub>...
    return {"attn": "attention", "norm1": "norms", "norm2": "norms"}.get(sub, sub)   # "ffn": slfn or ffn


def by_component(named_arrays, ffn_kind):
    """{component: bytes} from (name, array) pairs; the block's second sub-layer is named by ``ffn_kind``."""
    sizes = {c: 0 for c in COMPONENTS if c not in ("slfn", "ffn") or c == ffn_kind}
    for name, a in named_arrays:
        c = component(name)
        sizes[ffn_kind if c == "ffn" else c] += a.nbytes
    return sizes


def twin_config(config):
    """The full-precision twin: the same architecture with nothing binarized."""
    return dataclasses.replace(config, binarize=False, binarize_embeddings=False, binarize_activations=False)


def block_matrices(config):
    """(n_in, n_out) of every linear layer of one block, by component."""
    d = config.dim
    second = [(d, slfn_width(config) * d)] if config.ffn == "slfn" else [(d, 2 * d), (2 * d, d)]
    return {"attention": [(d, 3 * d), (d, d)], config.ffn: second}


def analytical_bytes(config, real_bytes=4):
    r"""{component: bytes} of the packed model by the formula in the module docstring."""
    N, d, C, V, dt = config.blocks, config.dim, config.num_classes, config.vocab_size, config.token_dim
    ceil8 = lambda n: -(-n // 8)                                      # noqa: E731  bytes for n bits
    sizes = dict(embeddings=0, alphas=0)
    for comp, mats in block_matrices(config).items():
        if config.binarize:
            sizes[comp] = N * sum(o * ceil8(i) + real_bytes * o for i, o in mats)   # bits + bias
            sizes["alphas"] += N * sum(real_bytes * o for _, o in mats)
        else:
            sizes[comp] = N * sum(real_bytes * (i * o + o) for i, o in mats)
    if config.binarize_embeddings:
        sizes["embeddings"] = V * ceil8(dt)
        sizes["alphas"] += real_bytes * V
    else:
        sizes["embeddings"] = real_bytes * V * dt
    sizes["embeddings"] += real_bytes * 2 * dt if config.segments else 0           # segment vectors, real
    sizes["norms"] = N * real_bytes * 4 * d
    sizes["exits"] = N * real_bytes * (config.exit_width * C + C)
    return {k: sizes[k] for k in COMPONENTS if k in sizes}


def design_formula_bits(model):
    """DESIGN §7: 32 bits per real parameter + 1 bit per binarized weight (alphas, padding not counted)."""
    binary = {name for name, _, _ in binary_matrices(model)}
    return sum((1 if name in binary else 32) * p.data.size for name, p in model.parameters())


def variant_report(model, real_dtype, twin):
    """Sizes of ``model`` packed with real parameters as ``real_dtype``, against the twin's."""
    cfg = model.config
    arrays = pack_model(model, real_dtype)
    packed = by_component(arrays.items(), cfg.ffn)
    analytical = analytical_bytes(cfg, np.dtype(real_dtype).itemsize)
    total, twin_total = sum(packed.values()), sum(twin.values())
    return dict(binarize_embeddings=cfg.binarize_embeddings, real_dtype=np.dtype(real_dtype).name,
                components={k: dict(packed=packed[k], twin=twin[k],
                                    ratio=twin[k] / packed[k] if packed[k] and twin[k] else None) for k in packed},
                total=total, twin_total=twin_total, ratio=twin_total / total,
                analytical=analytical, analytical_total=sum(analytical.values()),
                agrees=analytical == packed,
                design_formula_ratio=twin_total * 8 / design_formula_bits(model))


def size_report(model, card=None, real_dtype=np.float32, file_dir=None):
    """The size report of ``model`` as configured and with ``binarize_embeddings`` toggled; a JSON-able dict.

    Both variants are also exported (to ``file_dir``, a temporary folder by
    default) and their on-disk sizes read."""
    cfg = model.config
    twin_model = BEExformer(twin_config(cfg), np.random.default_rng(0), dtype=np.float32)
    twin = by_component(((n, p.data) for n, p in twin_model.parameters()), cfg.ffn)   # 32-bit everything, measured
    toggled = BEExformer(dataclasses.replace(cfg, binarize_embeddings=not cfg.binarize_embeddings),
                         np.random.default_rng(0), dtype=np.float32)
    toggled.load_state_dict(model.state_dict())                                # same weights, other flag
    variants = []
    with tempfile.TemporaryDirectory(dir=file_dir) as tmp:
        for m in (model, toggled):
            v = variant_report(m, real_dtype, twin)
            path = Path(tmp) / f"packed_emb{int(m.config.binarize_embeddings)}.npz"
            save_packed(path, m, card, real_dtype)
            with np.load(path) as f:
                meta_bytes = f[META_KEY].nbytes
            v["file"] = dict(bytes_on_disk=path.stat().st_size, meta_json_bytes=meta_bytes,
                             ratio_on_disk=v["twin_total"] / path.stat().st_size)
            variants.append(v)
    variants.sort(key=lambda v: v["binarize_embeddings"])
    return dict(config=cfg.to_dict(), dim=cfg.dim, paper_ratio=PAPER_RATIO, limit=LIMIT,
                alpha_bits=8 * np.dtype(real_dtype).itemsize,
                alpha_ceiling={f"n={n}": LIMIT * n / (n + 8 * np.dtype(real_dtype).itemsize)
                               for n in sorted({cfg.dim, cfg.token_dim})},
                variants=variants)


def checkpoint_size_report(folder, real_dtype=np.float32):
    """``size_report`` of a checkpoint folder or a packed file (or either opened); a packed file's model is the
    float one its bits give (``beexnp.packed.unpacked_model``: the same bits and alphas once packed again)."""
    saved = folder if isinstance(folder, Saved) else open_saved(folder)
    packed = saved.kind == "packed"
    model, card = as_packed(saved, packed=False) if packed else as_packed(saved)        # as export writes it
    report = size_report(model, card, real_dtype)
    report["checkpoint"] = str(saved.path)
    report["checkpoint_model_npz_bytes"] = None if packed else (saved.path / "model.npz").stat().st_size
    return report


def format_size_report(report):
    """The report as a text table: twin, then packed and ratio for real and binarized embeddings."""
    c = report["config"]
    real, binar = report["variants"]
    acts = "W1A1" if c["binarize_activations"] else "W1A32"
    head = (f"vocab {c['vocab_size']}, d={report['dim']} ({c['token_dim']} token + "
            f"{c['position_dim'] if c['position_mode'] == 'concat' else 0} position), {c['heads']} heads, "
            f"{c['blocks']} blocks, {c['ffn']}, {c['num_classes']} outputs, "
            f"{'binarized ' + acts if c['binarize'] else 'full precision'}; real parameters {real['real_dtype']}")
    lines = [f"Size of {report.get('checkpoint', 'the model')}", head, "",
             f"{'component':<12}{'twin fp32 B':>14}  {'packed B':>12}{'ratio':>9}  {'packed B':>12}{'ratio':>9}",
             f"{'':<12}{'':>14}  {'real embeddings':>21}  {'binarized embeddings':>21}"]

    def ratio(x):
        return f"{x:8.2f}x" if x else f"{'-':>9}"

    for k in real["components"]:
        a, b = real["components"][k], binar["components"][k]
        lines.append(f"{k:<12}{a['twin']:>14,}  {a['packed']:>12,}{ratio(a['ratio'])}  "
                     f"{b['packed']:>12,}{ratio(b['ratio'])}")
    lines.append(f"{'total':<12}{real['twin_total']:>14,}  {real['total']:>12,}{ratio(real['ratio'])}  "
                 f"{binar['total']:>12,}{ratio(binar['ratio'])}")
    lines.append(f"{'analytical':<12}{'':>14}  {real['analytical_total']:>12,}"
                 f"{'  agrees' if real['agrees'] else ' DIFFERS':>9}  {binar['analytical_total']:>12,}"
                 f"{'  agrees' if binar['agrees'] else ' DIFFERS':>9}")
    on_disk = report.get("checkpoint_model_npz_bytes")
    lines.append(f"{'file on disk':<12}{f'{on_disk:,}' if on_disk else '':>14}  "
                 f"{real['file']['bytes_on_disk']:>12,}{ratio(real['file']['ratio_on_disk'])}  "
                 f"{binar['file']['bytes_on_disk']:>12,}{ratio(binar['file']['ratio_on_disk'])}")
    configured = "binarized" if c["binarize_embeddings"] else "real"
    ceiling = ", ".join(f"{v:.1f}x at {k}" for k, v in report["alpha_ceiling"].items())
    lines += ["",
              f"The checkpoint's config has {configured} embeddings; the other column is the same weights with the "
              "option toggled.",
              "ratio = twin bytes / packed bytes, both summed from real arrays' nbytes (the packed arrays that "
              "`export` writes;",
              "a float32 BEExformer of the same config for the twin).  Alphas are a row of their own: the other "
              "rows' ratios leave them out.",
              f"file on disk: the exported .npz (arrays + zip headers + {real['file']['meta_json_bytes']:,} B of "
              "JSON config and tokenizer); twin column: the checkpoint's float32 model.npz;",
              "its ratio: twin bytes / file size.",
              f"DESIGN §7 formula (1 bit per binary weight, 32 per real parameter, alphas free): "
              f"{real['design_formula_ratio']:.2f}x with real, {binar['design_formula_ratio']:.2f}x with binarized "
              "embeddings.",
              f"Paper: {report['paper_ratio']:.2f}x.  Limit for 1-bit weights: {report['limit']:.0f}x; with one "
              f"{report['alpha_bits']}-bit alpha per row of n weights, 32n/(n+{report['alpha_bits']}): {ceiling}."]
    return "\n".join(lines)
