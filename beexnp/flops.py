r"""Analytical cost of a BEExformer: multiply-accumulates per layer (DESIGN §7).

A multiply-accumulate (MAC) is one ``a += x * w``.  A matrix product of an
(m, k) by a (k, n) matrix is m·k·n MACs.  We count only the MACs of matrix
products, layer by layer, for ONE input of real length L (its tokens, [CLS]
included, padding excluded), d = model width, h heads, C classes:

    layer                       MACs            kind
    embedding + positions       0               table lookup and a concatenation
    attention qkv projection    3·L·d·d         BinaryLinear(d, 3d)
    attention scores Q K^T      L·L·d           real (h heads · L·L·d/h)
    attention context P V       L·L·d           real (h heads · L·L·d/h)
    attention out projection    L·d·d           BinaryLinear(d, d)
    SLFN gates [f1|l|f2|c]      4·L·d·d         BinaryLinear(d, 4d); (k+1)·L·d·d with k gates (DESIGN §4.4)
      or FFN up + down          2·L·d·d_ff      BinaryLinear(d, d_ff), (d_ff, d); d_ff = 2d
    exit pooling                L·d             masked mean: sum_t w_t Y_t, w_t = 1/L
    exit pair cosine            3·d             siamese with pair_cosine: u.v, u.u, v.v (DESIGN §5.6)
    exit classifier             d·C             real Linear(d, C); 4d·C for the siamese pair head, (4d+1)·C
                                                with its cosine

(The FFN ablation with d_ff = 2d costs 4·L·d·d, exactly the SLFN's count.)
Not counted (O(L·d) elementwise work each, a few percent at most): biases,
LayerNorm, the 1/sqrt(d_h) scale, softmax, the gates' sigmoid/tanh and
products, residual adds, dropout (off at inference).

Two kinds of MACs are kept apart:

* ``binary_macs``: products with the binarized weight matrix of a BinaryLinear
  layer (``config.binarize``; the full-precision twin has none).
* ``real_macs``: everything else (attention's Q K^T and P V stay real, DESIGN
  §1; the exit heads are real Linear layers).

**FLOPs**, the convention of binary-network papers (Bi-Real Net, BiBERT): one
real MAC counts as 1 FLOP, and a binary MAC counts as 1/64 FLOP when BOTH of
its factors are one bit (W1A1, ``config.binarize_activations``): on a 64-bit
CPU one XNOR + popcount does 64 of them at once.

    flops = real_macs + binary_macs / 64          W1A1
    flops = real_macs + binary_macs               W1A32 (the default)

W1A32 convention (binary weights, real activations): a MAC with a weight
±alpha_j is still a real multiply-add (or an add/subtract of a real
activation, then one scale per output) — there is no XNOR shortcut — so it
counts as 1 FLOP like a real MAC.  The binary MACs stay a separate field, so a
report can show both views (e.g. the saving a W1A1 version would bring).

**float_ops** = 2 · (real_macs + binary_macs): what NumPy actually executes
in this package (binary weights are stored as ±alpha floats), one float
multiply and one float add per MAC.  This is the convention of hardware
throughput (an n×n matmul is 2n³ FLOP), so ``float_ops / seconds`` compares
directly with a BLAS's GFLOP/s (``benchmarks/bench_train_step.py``).

The siamese pair encoding (DESIGN §5.6) runs every block on the two sentences
apart: a pair is given as its two real lengths (L_a, L_b) (``input_lengths``),
every layer but the exit classifier costs cost(L_a) + cost(L_b), and the
classifier reads [u, v, |u - v|, u * v], 4d wide, once per input.

Early exit: an input leaving at block e has paid for blocks 1..e and exits
1..e (each exit's logits are needed to decide whether to leave), so

    cost(input) = e · (block(L) + exit(L))

and the average inference cost under early exit is the mean of that over the
inputs (``model_flops(config, lengths, exit_blocks).flops.mean()``).

Use::

    model_flops(cfg, lengths, exit_blocks).flops.mean()      # mean FLOPs per input
    print(format_table(flops_table(cfg, 64)))                # per-layer breakdown
    train_step_flops(cfg, 32, 64).float_ops                  # one training step
"""
from dataclasses import dataclass
from typing import Any

import numpy as np

from beexnp.pairs import part_lengths
from beexnp.slfn import SLFN_VARIANTS

BINARY_MAC_FLOPS = 1 / 64       # one W1A1 MAC in FLOPs (Bi-Real Net, BiBERT)
TRAIN_FACTOR = 3                # forward + backward (2 products per forward product)


@dataclass(frozen=True)
class Cost:
    r"""MACs of some computation, kept by kind.

    ``real_macs`` and ``binary_macs`` are integers, or integer arrays (one
    entry per input) when lengths were given as an array.  ``w1a1`` says the
    binary MACs have 1-bit activations too (so they cost 1/64 FLOP each)."""

    real_macs: Any
    binary_macs: Any
    w1a1: bool = False

    @property
    def macs(self):
        """All multiply-accumulates, whatever their kind."""
        return self.real_macs + self.binary_macs

    @property
    def flops(self):
        """real + binary/64 (W1A1) or real + binary (W1A32): see the module docstring."""
        return self.real_macs + (self.binary_macs * BINARY_MAC_FLOPS if self.w1a1 else self.binary_macs)

    @property
    def float_ops(self):
        """2 · MACs: floating-point operations as NumPy executes them (hardware convention)."""
        return 2 * self.macs

    def __add__(self, other):
        if self.w1a1 != other.w1a1:
            raise ValueError("cannot add W1A1 and W1A32 costs")
        return Cost(self.real_macs + other.real_macs, self.binary_macs + other.binary_macs, self.w1a1)

    def __mul__(self, times):
        """The cost repeated ``times`` times (an int or an int array)."""
        return Cost(self.real_macs * times, self.binary_macs * times, self.w1a1)

    __rmul__ = __mul__

    def as_dict(self):
        """Plain numbers (lists for arrays) for JSON and tables, the derived ones included."""
        def plain(x):
            return np.asarray(x).tolist()
        return dict(real_macs=plain(self.real_macs), binary_macs=plain(self.binary_macs),
                    macs=plain(self.macs), flops=plain(self.flops), float_ops=plain(self.float_ops),
                    w1a1=self.w1a1)


# ---- one small function per layer ------------------------------------------------
# Each takes the config and the real length L (an int or an int array) and
# returns a Cost.  ``_weights`` is for a product with a layer's weight matrix,
# which is binary when the config binarizes; ``_real`` for everything else.

def _w1a1(config):
    return bool(config.binarize and config.binarize_activations)


def _weights(config, macs):
    """MACs of x W with W the matrix of a BinaryLinear (binary) or of the twin's Linear (real)."""
    if config.binarize:
        return Cost(0 * macs, macs, _w1a1(config))
    return Cost(macs, 0 * macs, _w1a1(config))


def _real(config, macs):
    return Cost(macs, 0 * macs, _w1a1(config))


def qkv_projection(config, L):
    r"""[Q | K | V] = X [Wq | Wk | Wv]:   (L, d) x (d, 3d)  ->  3·L·d·d MACs"""
    d = config.dim
    return _weights(config, 3 * L * d * d)


def attention_scores(config, L):
    r"""S_h = Q_h K_h^T for h heads:   h · (L, d/h) x (d/h, L)  ->  L·L·d MACs"""
    return _real(config, L * L * config.dim)


def attention_context(config, L):
    r"""A_h = P_h V_h for h heads:   h · (L, L) x (L, d/h)  ->  L·L·d MACs"""
    return _real(config, L * L * config.dim)


def output_projection(config, L):
    r"""out = A Wo:   (L, d) x (d, d)  ->  L·d·d MACs"""
    d = config.dim
    return _weights(config, L * d * d)


def slfn_width(config):
    """Columns of the SLFN's fused matrix, in units of d: the gates present and the candidate (4 with all three)."""
    return len(SLFN_VARIANTS[config.slfn_gates].columns)


def slfn_gates(config, L):
    r"""[f1 | l | f2 | c] pre-activations = H [Wf1 | Wl | Wf2 | Wc]:   (L, d) x (d, 4d)  ->  4·L·d·d MACs

    With fewer gates (DESIGN §4.4), k + 1 column blocks: (k+1)·L·d·d."""
    d = config.dim
    return _weights(config, slfn_width(config) * L * d * d)


def ffn_hidden(config):
    """d_ff of the feed-forward ablation: 2d (``BinaryFeedForward``'s default, 4 d^2 weights like the SLFN)."""
    return 2 * config.dim


def ffn_up(config, L):
    r"""ReLU input = H W1:   (L, d) x (d, d_ff)  ->  L·d·d_ff MACs"""
    return _weights(config, L * config.dim * ffn_hidden(config))


def ffn_down(config, L):
    r"""out = ReLU(.) W2:   (L, d_ff) x (d_ff, d)  ->  L·d_ff·d MACs"""
    return _weights(config, L * ffn_hidden(config) * config.dim)


def exit_pooling(config, L):
    r"""m = sum_t w_t Y_t over the L real tokens (w_t = 1/L):  L·d MACs

    (The code's einsum is a weighted sum, so it is counted as multiply-adds;
    it is ~1/(8d) of the block and could as well be ignored.)"""
    return _real(config, L * config.dim)


def exit_cosine(config, L):
    r"""c = u.v / (|u| |v|) of a siamese pair (``pair_cosine``):  u.v, u.u and v.v,  3·d MACs, whatever L"""
    return _real(config, 0 * L + 3 * config.dim)


def exit_classifier(config, L):
    r"""z = m Wexit:   (1, d) x (d, C)  ->  d·C MACs, whatever L  (siamese: (1, 4d) x (4d, C), 4d·C;
    with the cosine (1, 4d + 1) x (4d + 1, C), (4d+1)·C)"""
    return _real(config, 0 * L + config.exit_width * config.num_classes)


def embedding(config, L):
    r"""E[ids] and [., PE]: lookups and a concatenation, 0 MACs"""
    return _real(config, 0 * L)


# ---- the layers of a block, in order ------------------------------------------------

def block_layers(config):
    """(name, equation, cost function) for a block's layers then its exit head, in forward order.

    The names are the module paths inside a block (``attn.qkv``) so the
    benchmark can match them to its timings; ``attn.scores`` and
    ``attn.context`` are the two products inside ``BinaryMultiHeadAttention``."""
    if config.ffn == "slfn":
        ffn = [("ffn.gates", f"{slfn_width(config)}·L·d·d", slfn_gates)]
    else:
        ffn = [("ffn.up", "L·d·d_ff", ffn_up), ("ffn.down", "L·d_ff·d", ffn_down)]
    return ([("attn.qkv", "3·L·d·d", qkv_projection),
             ("attn.scores", "L·L·d", attention_scores),
             ("attn.context", "L·L·d", attention_context),
             ("attn.out", "L·d·d", output_projection)]
            + ffn
            + [("exit.pool", "L·d", exit_pooling)]
            + [("exit.cosine", "3·d", exit_cosine)] * config.pair_cosine
            + [("exit.linear", ("(4d+1)·C" if config.pair_cosine else "4d·C") if config.pair_encoding == "siamese"
                else "d·C", exit_classifier)])


def _lengths(lengths):
    L = np.asarray(lengths)
    if not np.issubdtype(L.dtype, np.integer):
        raise TypeError(f"lengths must be integers, got {L.dtype}")
    if np.any(L < 1):
        raise ValueError("every length must be >= 1 (an input has at least its [CLS] token)")
    return L.astype(np.int64)


def _parts(config, L):
    """The lengths each layer runs on: [L], or [L_a, L_b] for the siamese pair encoding (L (..., 2))."""
    if config.pair_encoding != "siamese":
        return [L]
    if L.ndim == 0 or L.shape[-1] != 2:
        raise ValueError(f"the siamese pair encoding is costed on the two sentences' lengths, shape (..., 2), "
                         f"got shape {L.shape} (see input_lengths)")
    return [L[..., 0], L[..., 1]]


def _layer_cost(config, name, cost, L):
    """One layer's cost for lengths L: summed over the sentences of a siamese pair, except the exit's pair
    cosine and classifier, which run once per input."""
    parts = _parts(config, L)
    if name in ("exit.cosine", "exit.linear"):
        return cost(config, parts[0])
    return sum((cost(config, P) for P in parts[1:]), cost(config, parts[0]))


def input_lengths(config, data):
    """What ``model_flops`` takes for a split ``data`` (anything with ``lengths`` and ``padded``):
    the real lengths (n,), or for the siamese pair encoding those of [CLS] a and [SEP] b, (n, 2)."""
    if config.pair_encoding != "siamese":
        return data.lengths
    return part_lengths(*data.padded(np.arange(len(data))))


def block_flops(config, length, exit_head=True):
    r"""Cost of one block (and, by default, its exit head) on an input of real length L.

        block = (3 + 1 + 4)·L·d·d  [binary when config.binarize]  +  2·L·L·d  [real]
        exit  = L·d + d·C                                                    [real]

    ``length`` may be an int array: the cost of each input, elementwise (siamese: (..., 2))."""
    L = _lengths(length)
    total = _real(config, 0 * _parts(config, L)[0])                    # zero, shaped like one length per input
    for name, _, cost in block_layers(config):
        if exit_head or not name.startswith("exit."):
            total = total + _layer_cost(config, name, cost, L)
    return total


def model_flops(config, lengths, exit_blocks=None):
    r"""Inference cost of each input up to its exit block: e · (block(L) + exit(L)).

    lengths: real lengths (int or int array); exit_blocks: the block each input
    left at, 1-based (int or int array broadcastable to lengths), or None for
    all ``config.blocks`` blocks.  Returns a Cost of per-input arrays; the
    average cost under early exit is ``.flops.mean()``."""
    L = _lengths(lengths)
    e = np.full_like(_parts(config, L)[0], config.blocks) if exit_blocks is None else np.asarray(exit_blocks)
    if not np.issubdtype(e.dtype, np.integer):
        raise TypeError(f"exit_blocks must be integers (1-based), got {e.dtype}")
    if np.any((e < 1) | (e > config.blocks)):
        raise ValueError(f"exit blocks must be in 1..{config.blocks}")
    return block_flops(config, L) * e.astype(np.int64)


def flops_cut(config, lengths, exit_blocks):
    r"""Fraction of inference FLOPs saved by early exit: 1 - mean(early) / mean(full)."""
    early = model_flops(config, lengths, exit_blocks).flops
    full = model_flops(config, lengths).flops
    return 1.0 - float(np.mean(early)) / float(np.mean(full))


def train_step_flops(config, batch, tokens):
    r"""Cost of one training step on a padded batch: 3 x the forward of B inputs of T tokens.

        step = 3 · B · N · (block(T) + exit(T))

    Why 3: every forward product Y = X W has two backward products of the same
    size, dX = dY W^T and dW = X^T dY (likewise S = Q K^T gives dQ and dK, and
    A = P V gives dP and dV), so forward + backward = 3 x the forward MACs.
    The padded length T is used because the batched code computes the padding
    too.  Not counted: elementwise work, the embedding's scatter-add, the
    optimizer's update (O(parameters)).

    Training runs in floating point (latent weights are real, the backward
    pairs a binary factor with a real gradient), so the returned Cost has
    ``w1a1=False``: its ``flops`` equals its MACs even for a W1A1 config.
    For throughput compare ``float_ops`` (2 per MAC) with a matmul's 2n³."""
    if batch < 1 or tokens < 1:
        raise ValueError(f"batch and tokens must be >= 1, got {batch} and {tokens}")
    padded = [tokens, tokens] if config.pair_encoding == "siamese" else tokens   # siamese: both parts padded to T
    forward = model_flops(config, padded) * batch
    return Cost(int(forward.real_macs) * TRAIN_FACTOR, int(forward.binary_macs) * TRAIN_FACTOR, w1a1=False)


# ---- a printable breakdown ---------------------------------------------------------

def flops_table(config, length):
    r"""Per-layer rows for one input of real length L (siamese: the pair (L_a, L_b)): the
    embedding, each layer of a block, the block with its exit, and the whole model (N blocks).

    Each row is a dict: layer, equation, real_macs, binary_macs, flops, share
    (of one block + exit's FLOPs; None for the whole-model row)."""
    L = _lengths(length)
    block = block_flops(config, L)
    rows = [("embedding", "0", embedding(config, _parts(config, L)[0]))]
    rows += [(name, equation, _layer_cost(config, name, cost, L)) for name, equation, cost in block_layers(config)]
    rows += [("block + exit", "sum of the above", block),
             (f"model ({config.blocks} blocks)", "N · (block + exit)", model_flops(config, L))]
    return [dict(layer=name, equation=equation, real_macs=int(c.real_macs), binary_macs=int(c.binary_macs),
                 flops=float(c.flops), share=float(c.flops) / float(block.flops) if name != rows[-1][0] else None)
            for name, equation, c in rows]


def format_table(rows):
    """The rows of ``flops_table`` as aligned text."""
    header = ("layer", "equation", "real MACs", "binary MACs", "FLOPs", "of block")
    lines = [(r["layer"], r["equation"], f"{r['real_macs']:,}", f"{r['binary_macs']:,}",
              f"{r['flops']:,.0f}", "" if r["share"] is None else f"{100 * r['share']:.1f}%") for r in rows]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *lines)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*line) for line in [header, *lines])
