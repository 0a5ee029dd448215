r"""The bit-packed model: one bit per binarized weight on disk and in the layers (DESIGN §7).

    python -m beexnp export CHECKPOINT OUT.npz [--float16]

**What a packed file holds** (one ``.npz``, written to a temporary name and
renamed when whole):

=========================  ============================  ==========================================
key                        array                         what
=========================  ============================  ==========================================
``NAME.bits``              uint8 (rows, ceil(n/8))       sign bits of a binarized matrix, packed
                                                         along its reduction axis (``beexnp.xnor``:
                                                         little bit order, zero padding)
``NAME.alpha``             float32 or float16 (rows,)    its scales, alpha = mean |W| over that axis
``NAME`` (every other)     float32 (or float16)          the real parameters: biases, LayerNorm,
                                                         exit heads, real embeddings
``__meta__``               uint8 (bytes of UTF-8 JSON)   format, model config, each binarized
                                                         matrix's shape and axis, the card
                                                         (tokenizer, task, metrics, train config),
                                                         and ``card_sha256``, the sha256 of the rest
=========================  ============================  ==========================================

NAME is the parameter's dotted name in the float model.  Binarized matrices
are the latent weights of every ``BinaryLinear`` (W (in, out), alpha per
output unit: rows = out, n = in) and, with ``binarize_embeddings``, the token
embedding (E (V, d_tok), alpha per row: rows = V, n = d_tok).  In both cases

    W_b = alpha * sign(W)          is rebuilt exactly from (bits, alpha),

so the latent float weights are not needed for inference and are not stored.

**Opening** (``open_packed``) checks the file as a checkpoint is checked
(``beexnp.card``): the metadata's every field and its own checksum, every
array named, shaped and typed as the config gives, every real number finite.
**Loading** (``load_packed``) builds the same ``BEExformer`` and substitutes,
by composition, a ``PackedBinaryLinear`` for every ``BinaryLinear`` (and a
``PackedEmbedding`` for a binarized embedding): same ``forward`` interface,
computed from the packed bits (W1A32: unpacked signs times alpha and a BLAS
product; W1A1: XNOR-popcount).  It gives the float binary-mode model's logits,
the very same numbers: W1A32 multiplies the same +-alpha weights, and the
float W1A1 layer, like XNOR-popcount, forms the exact integer +-1 products
first and scales them by alpha after (summing +-alpha products instead would
round differently and can flip the sign of a value near 0 in the next layer).
Packed layers are inference only (no backward).
"""
import json
from pathlib import Path

import numpy as np

from beexnp.calibration import as_packed
from beexnp.card import CALIBRATION, SELF_SUM, check_arrays, check_card, type_name, unusable, with_self_sum
from beexnp.checkpoint import (CARD, NOT_A_CHECKPOINT, Saved, atomic_write, check_vocab_rows, interrupts_deferred,
                               json_error, npz_arrays, open_checkpoint)
from beexnp.embedding import Embedding
from beexnp.linear import BinaryLinear, affine_forward
from beexnp.config import ModelConfig
from beexnp.model import BEExformer
from beexnp.module import Module, Parameter, mismatches
from beexnp.xnor import as_words, binary_weight, pack_signs, step_matmul, unpack_signs, w1a1_matmul

FORMAT = "beexnp.packed/2"          # 2: the metadata carries its own checksum (``beexnp.card``)
READS = ("beexnp.packed/1", FORMAT)
META_KEY = "__meta__"
BINARY_SUFFIXES = (".bits", ".alpha")
TRAINING_ONLY = ("files", "rng", "optimizer", "state")   # card entries that only a training run needs
NOT_COPIED = TRAINING_ONLY + ("model_config", "format_version", SELF_SUM)   # the card's entries a packed file leaves out


# ---- which parameters are binarized, and along which axis -------------------------
def named_modules(module, prefix=""):
    """Yield (dotted path, module) for ``module`` and every descendant ("" for the root)."""
    yield prefix.rstrip("."), module
    for name, child in module.children():
        yield from named_modules(child, prefix + name + ".")


def binary_matrices(model):
    """[(parameter name, latent array, alpha axis)] of every binarized matrix.

    BinaryLinear: W (in, out), alpha per output unit -> axis 0.
    Embedding with binarize=True: E (V, d), alpha per row -> axis 1."""
    found = []
    for path, m in named_modules(model):
        prefix = path + "." if path else ""
        if isinstance(m, BinaryLinear):
            found.append((prefix + "weight", m.weight.data, 0))
        elif isinstance(m, Embedding) and m.binarize:
            found.append((prefix + "weight", m.weight.data, 1))
    unknown = {n for n, p in model.parameters() if p.binary} - {name for name, _, _ in found}
    if unknown:
        raise TypeError(f"binarized parameters of an unknown layer type (cannot pack): {sorted(unknown)}")
    return found


def get_module(root, path):
    """The submodule at a dotted path ("blocks.0.attn.qkv"); list items by index."""
    m = root
    for part in path.split("."):
        m = m[int(part)] if isinstance(m, list) else getattr(m, part)
    return m


def set_module(root, path, new):
    """Put ``new`` where the dotted ``path`` points (an attribute or a list item)."""
    parent_path, _, last = path.rpartition(".")
    parent = get_module(root, parent_path) if parent_path else root
    if isinstance(parent, list):
        parent[int(last)] = new
    else:
        setattr(parent, last, new)


# ---- the arrays of a packed file -----------------------------------------------------
def pack_model(model, real_dtype=np.float32):
    r"""{key: array} of the packed file, without the metadata.

    For each binarized matrix NAME (alpha along ``axis``, length n along it):
        NAME.bits  = packbits([W >= 0]) along axis       (rows, ceil(n/8)) uint8
        NAME.alpha = mean(|W|, axis)                      (rows,)          real_dtype
    and every other parameter cast to ``real_dtype``: with float16, the alphas are
    half precision too (they are real numbers like any other)."""
    binary = {name: (W, axis) for name, W, axis in binary_matrices(model)}
    arrays = {}
    for name, p in model.parameters():
        if name in binary:
            W, axis = binary[name]
            arrays[name + ".bits"] = pack_signs(W, axis)                             # (rows, ceil(n/8))
            arrays[name + ".alpha"] = np.mean(np.abs(W), axis=axis).astype(real_dtype)   # as binarize_weight
        else:
            arrays[name] = p.data.astype(real_dtype)
    return arrays


def packed_meta(model, card=None, real_dtype=np.float32):
    """The JSON-able description stored beside the arrays."""
    card = {k: v for k, v in (card or {}).items() if k not in NOT_COPIED}
    return with_self_sum(dict(format=FORMAT, model_config=model.config.to_dict(), real_dtype=np.dtype(real_dtype).name,
                              bitorder="little", card=card, binary=binary_layout(model)))


def binary_layout(model):
    """{name: {shape, axis}} of every binarized matrix: the metadata's ``binary`` entry."""
    return {name: dict(shape=list(W.shape), axis=axis) for name, W, axis in binary_matrices(model)}


def encode_meta(meta):
    """JSON as a uint8 array (compact, and loads without pickle)."""
    return np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8)


def save_packed(path, model, card=None, real_dtype=np.float32):
    """Write ``model`` bit-packed to ``path`` (atomic: temporary file, then rename).  Returns the arrays.

    A card with a calibration (DESIGN §9.3) must say it is folded into ``model``'s exit biases
    (``export_checkpoint`` folds it): a packed file always holds the shift there, once."""
    if (card or {}).get(CALIBRATION) and not card[CALIBRATION].get("folded"):
        raise ValueError("the card's calibration is not folded into the model: save a model and card made by "
                         "calibration.as_packed(saved), as export_checkpoint does")
    arrays = pack_model(model, real_dtype)
    meta = encode_meta(packed_meta(model, card, real_dtype))
    with interrupts_deferred():
        atomic_write(path, lambda f: np.savez(f, **arrays, **{META_KEY: meta}))
    return arrays


def export_checkpoint(folder, out, real_dtype=np.float32):
    """Checkpoint folder (or an opened ``Saved`` checkpoint) -> packed .npz file; returns the arrays written."""
    saved = folder if isinstance(folder, Saved) else open_saved(folder)
    if saved.kind == "packed":
        raise unusable("already a packed file", saved.path, "export reads a checkpoint folder (OUT/best of a run)")
    return save_packed(out, *as_packed(saved), real_dtype)           # the calibration folded once (§9.3)


def read_meta(f, path):
    """The metadata dict of an open .npz (``np.load``'s ``NpzFile``), its format and own checksum checked."""
    if META_KEY not in f:
        hint = (f"it is a checkpoint's weights: give its folder {path.parent}" if (path.parent / CARD).is_file()
                else "make one with: python -m beexnp export CHECKPOINT OUT.npz")
        raise unusable(f"not a packed beexnp model (no {META_KEY} entry)", path, hint)
    raw = f[META_KEY]
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise unusable(f"{META_KEY} must be the bytes of a JSON object (uint8), got {raw.dtype} {raw.shape}", path)
    try:
        meta = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise unusable(f"{META_KEY} is not valid JSON: {json_error(err)}", path) from None
    if not isinstance(meta, dict):
        raise unusable(f"{META_KEY} must be a JSON object, got {type_name(meta)}", path)
    if meta.get("format") not in READS:
        raise unusable(f"packed format {meta.get('format')!r}, this beexnp reads {', '.join(map(repr, READS))}", path,
                      "export the checkpoint again with this beexnp")
    if meta["format"] != READS[0] and SELF_SUM not in meta:
        raise unusable(f"{SELF_SUM} is missing (every file of format {meta['format']} has it)", path)
    if SELF_SUM in meta and with_self_sum(meta)[SELF_SUM] != meta[SELF_SUM]:
        raise unusable(f"the metadata does not match its own checksum {SELF_SUM}", path)
    return meta


def read_packed(path):
    """(arrays, meta) of a packed file, after checking its format and its metadata's own checksum."""
    path = Path(path)
    if path.is_dir():
        raise unusable(f"not a packed file: a folder with no {CARD}", path, NOT_A_CHECKPOINT)
    if not path.is_file():
        what = "nothing there" if not path.exists() else "not a regular file"
        raise unusable(f"not a packed file: {what}", path, NOT_A_CHECKPOINT)
    arrays = npz_arrays(path, path)
    meta = read_meta(arrays, path)
    return {k: v for k, v in arrays.items() if k != META_KEY}, meta


def expected_packed(model):
    """{key: (shape, kind)} of the packed arrays of ``model`` (a float skeleton of the config)."""
    binary = {name: (W.shape, axis) for name, W, axis in binary_matrices(model)}
    expected = {}
    for name, p in model.parameters():
        if name in binary:
            shape, axis = binary[name]
            rows, n = shape[1 - axis], shape[axis]
            expected[name + ".bits"], expected[name + ".alpha"] = ((rows, -(-n // 8)), "u1"), ((rows,), "f")
        else:
            expected[name] = (p.shape, "f")
    return expected


def check_packed(arrays, meta, path):
    """The ``Card`` of a packed file's metadata, every field checked and every array against the config."""
    if not isinstance(meta.get("card"), dict):
        raise unusable(f"card must be a JSON object, got {type_name(meta.get('card'))}", path)
    inner = dict(meta["card"], model_config=meta.get("model_config"))
    if "model_config" not in meta:
        raise unusable("model_config is missing", path)
    card = check_card({k: v for k, v in inner.items() if k != SELF_SUM}, path, training_fields=False)
    if meta.get("real_dtype") not in ("float32", "float16"):
        raise unusable(f"real_dtype must be 'float32' or 'float16', got {meta.get('real_dtype')!r}", path)
    if meta.get("bitorder") != "little":
        raise unusable(f"bitorder must be 'little', got {meta.get('bitorder')!r}", path)
    skeleton = BEExformer(card.config, np.random.default_rng(0))
    if meta.get("binary") != binary_layout(skeleton):
        raise unusable("binary (each binarized matrix's shape and axis) does not fit model_config", path)
    embedding = arrays.get("embedding.weight.alpha", arrays.get("embedding.weight"))
    check_vocab_rows(card.config, embedding.shape[0] if embedding is not None and embedding.ndim >= 1 else None, path)
    check_arrays(arrays, expected_packed(skeleton), path)
    return card


def open_packed(path):
    """The packed file ``path`` opened and checked (a ``Saved`` of kind "packed")."""
    arrays, meta = read_packed(path)
    card = check_packed(arrays, meta, Path(path))
    saved = Saved(Path(path), "packed", card, arrays, build=packed_model)
    saved.meta = meta
    return saved


def packed_model(saved, unpack="load", packed=True):
    """The model of a packed ``Saved``: computing from the bits (``model_from_packed``), or ``packed=False``
    the float model rebuilt from them (``unpacked_model``)."""
    return model_from_packed(saved.arrays, saved.meta, unpack) if packed else unpacked_model(saved.arrays, saved.meta)


def open_saved(path, resume=False):
    """A checkpoint folder or a packed file, opened and checked: whichever ``path`` is."""
    path = Path(path)
    if path.is_file() or (not path.exists() and path.suffix == ".npz"):
        if resume:
            raise unusable("a packed file holds no trainer state", path, "resume from OUT/last of a run")
        return open_packed(path)
    return open_checkpoint(path, resume=resume)


# ---- layers that compute from the packed bits -----------------------------------------
class PackedBinaryLinear(Module):
    r"""y = alpha * (s(x) . sign(W)) + b from packed sign bits.        x (..., in) -> (..., out)

    The inference twin of ``BinaryLinear`` (same ``forward``):

    * W1A1 (``binarize_input``): the integer s(x) . sign(W) by XNOR-popcount on
      uint64 words, then times alpha (``beexnp.xnor.w1a1_matmul``); for {0, 1}
      inputs (``input_levels="step"``, the FFN's second layer) by AND-popcount
      (``beexnp.xnor.step_matmul``).
    * W1A32: x @ W_b with W_b = alpha * (+-1 unpacked from the bits), the float
      model's numbers exactly.  ``unpack="load"`` builds W_b once (speed of the
      float model; RAM holds 32-bit weights again), ``unpack="call"`` on every
      forward (RAM keeps 1 bit per weight; each call pays an in x out unpack,
      small next to a (rows, in) x (in, out) product when rows is large).

    bits (out, ceil(in/8)) uint8, alpha (out,) float32, bias (out,) or None.
    Inference only: ``backward`` is Module's (NotImplementedError); train the float model."""

    def __init__(self, bits, alpha, n_in, bias=None, binarize_input=False, unpack="load", input_levels="sign"):
        if unpack not in ("load", "call"):
            raise ValueError(f"unpack must be 'load' or 'call', got {unpack!r}")
        self.bits, self.alpha, self.n_in = bits, alpha, n_in
        self.bias = None if bias is None else Parameter(bias)
        self.binarize_input, self.unpack = binarize_input, unpack
        self.matmul = step_matmul if input_levels == "step" else w1a1_matmul
        self.words = as_words(bits) if binarize_input else None                    # (out, ceil(in/64)) uint64
        self.weight_b = binary_weight(bits, alpha, n_in) if not binarize_input and unpack == "load" else None

    def forward(self, x):
        b = None if self.bias is None else self.bias.data
        if self.binarize_input:
            y = self.matmul(x, self.words, self.alpha, self.n_in)                 # (..., out)
            return y if b is None else y + b
        W_b = self.weight_b if self.weight_b is not None else binary_weight(self.bits, self.alpha, self.n_in)
        return affine_forward(x, W_b, b)                                           # (..., in) @ (in, out) + b


class PackedEmbedding(Module):
    r"""e[b, t] = alpha[ids] * sign-row(ids)  from packed bits.        ids (B, T) -> (B, T, d)

    The inference twin of a binarized ``Embedding``: bits (V, ceil(d/8)), alpha (V,).  No backward."""

    def __init__(self, bits, alpha, dim):
        self.bits, self.alpha, self.dim = bits, alpha, dim

    def forward(self, ids):
        if not np.issubdtype(np.asarray(ids).dtype, np.integer):
            raise TypeError(f"Embedding expects integer token ids, got {np.asarray(ids).dtype}")
        signs = unpack_signs(self.bits[ids], self.dim, self.alpha.dtype)           # (B, T, d) in {-1, +1}
        return self.alpha[ids][..., None] * signs                                  # (B, T, 1) * (B, T, d)


def packed_layer(module, bits, alpha, n, unpack):
    """The packed twin of a BinaryLinear or a binarized Embedding."""
    if isinstance(module, BinaryLinear):
        bias = None if module.bias is None else module.bias.data
        return PackedBinaryLinear(bits, alpha, n, bias, module.binarize_input, unpack, module.input_levels)
    return PackedEmbedding(bits, alpha, n)


def model_from_packed(arrays, meta, unpack="load"):
    """An inference BEExformer (eval mode) whose binarized layers compute from ``arrays``' bits."""
    config = ModelConfig.from_dict(meta["model_config"])
    model = BEExformer(config, np.random.default_rng(0))          # the skeleton: every value is replaced
    binary = {name: (W.shape, axis) for name, W, axis in binary_matrices(model)}
    expected = {}
    for name, (shape, axis) in binary.items():
        rows, n = shape[1 - axis], shape[axis]
        expected[name + ".bits"], expected[name + ".alpha"] = (rows, -(-n // 8)), (rows,)
    given = {k: v for k, v in arrays.items() if k.endswith(BINARY_SUFFIXES)}
    problems = mismatches(expected, given, "packed arrays")
    if problems:
        raise ValueError("packed arrays do not fit the config:\n  " + "\n  ".join(problems))
    for name, (shape, axis) in binary.items():
        path = name.rpartition(".")[0]
        layer = packed_layer(get_module(model, path), arrays[name + ".bits"],
                             arrays[name + ".alpha"].astype(np.float32), shape[axis], unpack)
        set_module(model, path, layer)
    real = {k: v.astype(np.float32) for k, v in arrays.items() if not k.endswith(BINARY_SUFFIXES)}
    model.load_state_dict(real)                                   # biases, norms, exits: names and shapes checked
    return model.eval()


def unpacked_model(arrays, meta):
    r"""The float BEExformer a packed file describes (eval mode), to look into or to train on.

    Each binarized matrix gets latent weights W = alpha * sign, rebuilt from (bits, alpha):

        W = moveaxis(alpha[:, None] * (+-1 unpacked from bits), -1, axis)      (in, out) or (V, d_tok)

    Binarizing them gives back the same signs, and alpha' = mean |W| = alpha exactly
    when the alphas were stored as float16 (k * alpha then fits float32's 24 bits for
    any k <= 2^13, so every partial sum is exact), within float32 rounding otherwise.
    Then the model's logits are those of ``model_from_packed``, bit for bit."""
    config = ModelConfig.from_dict(meta["model_config"])
    model = BEExformer(config, np.random.default_rng(0))          # the skeleton: every value is replaced
    state = {k: v.astype(np.float32) for k, v in arrays.items() if not k.endswith(BINARY_SUFFIXES)}
    for name, _, axis in binary_matrices(model):
        n = meta["binary"][name]["shape"][axis]
        alpha = arrays[name + ".alpha"].astype(np.float32)                            # (rows,)
        rows = alpha[:, None] * unpack_signs(arrays[name + ".bits"], n)               # (rows, n) = +-alpha
        state[name] = np.moveaxis(rows, -1, axis)                                     # the matrix's own layout
    model.load_state_dict(state)
    return model.eval()


def tokenizer_and_card(saved):
    """(tokenizer or None, card) of an opened packed file.

    ``card`` is the checkpoint card stored at export (task, tokenizer, metrics,
    train config) with ``model_config`` added back."""
    return saved.card.tokenizer, dict(saved.meta["card"], model_config=saved.meta["model_config"])


def load_packed(path, unpack="load"):
    """(model, tokenizer or None, card) from a packed file: an inference model computing from the bits."""
    saved = open_packed(path)
    return saved.model(unpack=unpack), *tokenizer_and_card(saved)


def load_unpacked(path):
    """(float model, tokenizer or None, card) from a packed file: ``unpacked_model`` of its arrays."""
    saved = open_packed(path)
    return saved.model(packed=False), *tokenizer_and_card(saved)
