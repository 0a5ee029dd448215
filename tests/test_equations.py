r"""Every forward against its equation (DESIGN.md §1-6), written the slow, obvious way.

A gradient check proves that a backward matches its forward, not that the forward is
the right equation: delete attention's 1/sqrt(d_h), or the SLFN's inner tanh together
with its backward term, and every gradient check still passes.  Here each layer's
forward, in float64, is compared with a reference written straight from DESIGN.md,
with Python loops over examples, heads, tokens and gates (welcome here, and only here)
and ``math.fsum`` sums.  The references read nothing from the package but the
parameter arrays (by their stable dotted names) and the documented column layout of
the fused matrices ([Q | K | V] with head h at columns h*d_h .. (h+1)*d_h - 1 of
each; the SLFN's [f1 | l | f2 | c]).  They are composed into the whole model, whose
logits at every exit must come out the same.

Inputs: seeded shape sets, each batch with padding; latent binary weights in
[-1.5, 1.5] with exact zeros (sign(0) = +1) and beyond +-1 (where g saturates);
biases and LayerNorm parameters random, not 0 and 1.  Binary mode and relaxed mode,
W1A32 and W1A1, eval mode (dropout off).

Tolerance: 1e-12 relative to the scale of the result (its largest entry, at least 1):
a sum with cancellation is accurate relative to its terms, not to itself.
"""
import itertools
import math
from dataclasses import dataclass

import numpy as np
import pytest

# Every name this file takes from the package, in one place.
from beexnp.attention import BinaryMultiHeadAttention
from beexnp.block import Block, ExitHead
from beexnp.config import ModelConfig
from beexnp.criteria import FractionalEntropy, RelativeChange
from beexnp.embedding import Embedding, SinusoidalPositions
from beexnp.entropy import entropy, fractional_entropy_drop, relative_change
from beexnp.exit_loss import MultiExitLoss, SoftRouting, exit_weights
from beexnp.inference import early_exit_forward, simulate_exits
from beexnp.linear import Binarization, make_linear
from beexnp.model import BEExformer
from beexnp.norm import LayerNorm
from beexnp.sign import SecondOrderSign, StraightThroughSign, binarize_weight, sign
from beexnp.slfn import SLFN, BinaryFeedForward

RTOL = 1e-12
LN_EPS = 1e-5          # LayerNorm's epsilon (beexnp/norm.py; DESIGN leaves it open)
CERTAIN = 1e-6         # H_{i-1} (or |y_{i-1}|) below this counts as (near) zero (beexnp/entropy.py's guard)


def assert_close(actual, expected, rtol=RTOL):
    """|actual - expected| <= rtol * max(1, max |expected|) everywhere (and no NaN)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    error = np.abs(actual - expected)
    worst = np.nanmax(error) if error.size and not np.all(np.isnan(error)) else np.nan
    assert np.all(error <= rtol * scale), f"max |error| {worst:.3e} (NaN: {int(np.isnan(error).sum())}), " \
                                          f"allowed {rtol * scale:.1e}"


# ---- the references: scalars ------------------------------------------------------------

def ref_sign(v):
    """sign(x) = +1 if x >= 0 else -1  (sign(0) = +1)."""
    return 1.0 if v >= 0 else -1.0


def ref_g(v):
    """The second-order approximation of sign, piece by piece (DESIGN §1)."""
    if v < -1:
        return -1.0
    if v < 0:
        return 2 * v + v * v
    if v < 1:
        return 2 * v - v * v
    return 1.0


def ref_g_prime(v):
    """g'(x): the triangle 2 + 2x on [-1, 0), 2 - 2x on [0, 1), 0 elsewhere."""
    if -1 <= v < 0:
        return 2 + 2 * v
    if 0 <= v < 1:
        return 2 - 2 * v
    return 0.0


def ref_clip(v):
    """The STE's relaxed forward, the hard tanh clip(x, -1, 1)."""
    return -1.0 if v < -1 else 1.0 if v > 1 else v


def ref_ste_prime(v):
    """The straight-through estimator: 1 on |x| <= 1, else 0."""
    return 1.0 if abs(v) <= 1 else 0.0


def ref_sigmoid(v):
    return 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))


def each(f, x):
    """f applied to every entry of x, one by one."""
    x = np.asarray(x, np.float64)
    out = np.empty(x.shape)
    for index in np.ndindex(x.shape):
        out[index] = f(float(x[index]))
    return out


@dataclass(frozen=True)
class Mode:
    """How the binarized layers compute: binary (else the real twin), W1A1, relaxed, which estimator."""

    binary: bool = True
    w1a1: bool = False
    relaxed: bool = False
    estimator: str = "second_order"

    def s(self, v):
        """The one-bit function of the forward: sign, or in relaxed mode its smooth stand-in."""
        if not self.relaxed:
            return ref_sign(v)
        return ref_g(v) if self.estimator == "second_order" else ref_clip(v)

    def options(self):
        """The layers' keywords: how they binarize, and float64."""
        return dict(binarization=Binarization(estimator=self.estimator, binarize_input=self.w1a1), dtype=np.float64)


MODES = {
    "binary": Mode(),
    "w1a1": Mode(w1a1=True),
    "relaxed": Mode(relaxed=True),
    "relaxed-ste": Mode(relaxed=True, estimator="ste"),
    "relaxed-w1a1": Mode(relaxed=True, w1a1=True),
    "relaxed-w1a1-ste": Mode(relaxed=True, w1a1=True, estimator="ste"),
    "real": Mode(binary=False),
}


# ---- the references: layers --------------------------------------------------------------

def sub(params, prefix):
    """The parameters under a dotted prefix, with the prefix removed."""
    return {name[len(prefix):]: value for name, value in params.items() if name.startswith(prefix)}


def ref_binarize(W, s):
    """alpha_j = mean_i |W_ij| (one scale per output unit),  W_b[i, j] = alpha_j s(W_ij).     W (in, out)"""
    n_in, n_out = W.shape
    Wb = np.empty((n_in, n_out))
    for j in range(n_out):
        alpha = math.fsum(abs(float(W[i, j])) for i in range(n_in)) / n_in
        for i in range(n_in):
            Wb[i, j] = alpha * s(float(W[i, j]))
    return Wb


def ref_affine(x, W, b=None):
    """y_j = sum_i x_i W_ij + b_j for every row of x (..., in)."""
    rows = np.asarray(x, np.float64).reshape(-1, W.shape[0])
    y = np.empty((len(rows), W.shape[1]))
    for r, row in enumerate(rows):
        for j in range(W.shape[1]):
            terms = [float(row[i]) * float(W[i, j]) for i in range(W.shape[0])]
            y[r, j] = math.fsum(terms + ([] if b is None else [float(b[j])]))
    return y.reshape(*np.shape(x)[:-1], W.shape[1])


def ref_linear(p, x, mode):
    """A binarized linear layer y = s(x) W_b + b (W1A1) or x W_b + b (W1A32); the real twin y = x W + b."""
    if not mode.binary:
        return ref_affine(x, p["weight"], p.get("bias"))
    x_in = each(mode.s, x) if mode.w1a1 else x
    return ref_affine(x_in, ref_binarize(p["weight"], mode.s), p.get("bias"))


def ref_embedding(E, ids, binarized, s):
    """e[b, t] = E[ids[b, t]]; binarized: alpha_r s(E[r]) with alpha_r = mean_k |E_rk| (per row)."""
    B, T = ids.shape
    d = E.shape[1]
    out = np.empty((B, T, d))
    for b in range(B):
        for t in range(T):
            row = [float(v) for v in E[ids[b, t]]]
            if binarized:
                alpha = math.fsum(abs(v) for v in row) / d
                row = [alpha * s(v) for v in row]
            out[b, t] = row
    return out


def ref_position_code(T, dim):
    """PE[p, 2i] = sin(p / 10000^(2i/dim)),  PE[p, 2i+1] = cos(p / 10000^(2i/dim))."""
    PE = np.empty((T, dim))
    for p in range(T):
        for k in range(dim):
            angle = p / 10000 ** (2 * (k // 2) / dim)
            PE[p, k] = math.sin(angle) if k % 2 == 0 else math.cos(angle)
    return PE


def ref_positions(x, mode, dim):
    """concat: [x_t, PE_t] (token vector first);  add: x_t + PE_t."""
    B, T, d = x.shape
    PE = ref_position_code(T, dim)
    out = np.empty((B, T, d + dim if mode == "concat" else d))
    for b in range(B):
        for t in range(T):
            out[b, t] = list(x[b, t]) + list(PE[t]) if mode == "concat" else x[b, t] + PE[t]
    return out


def ref_layernorm(x, gamma, beta, eps=LN_EPS):
    """y = gamma (x - mu) / sqrt(var + eps) + beta, mu and the (biased) var over the features of each vector."""
    out = np.empty(x.shape)
    for index in np.ndindex(x.shape[:-1]):
        v = [float(a) for a in x[index]]
        d = len(v)
        mu = math.fsum(v) / d
        var = math.fsum((a - mu) ** 2 for a in v) / d
        out[index] = [gamma[k] * (v[k] - mu) / math.sqrt(var + eps) + beta[k] for k in range(d)]
    return out


def ref_attention(p, X, mask, heads, mode):
    """Q, K, V = X Wq_b + bq, ...;  per head: S = Q_h K_h^T / sqrt(d_h) over the real keys only,
    A_h = softmax(S) V_h;  heads concatenated;  out = A Wo_b + bo.   Returns (out, P (B, h, T, T))."""
    B, T, d = X.shape
    dh = d // heads
    QKV = ref_linear(sub(p, "qkv."), X, mode)                      # columns [Q | K | V]
    Q, K, V = QKV[..., :d], QKV[..., d:2 * d], QKV[..., 2 * d:]
    A = np.zeros((B, T, d))
    P = np.zeros((B, heads, T, T))
    for b in range(B):
        keys = [u for u in range(T) if mask[b, u] > 0]             # padded keys take no part
        for h in range(heads):
            cols = range(h * dh, (h + 1) * dh)
            for t in range(T):
                scores = [math.fsum(Q[b, t, k] * K[b, u, k] for k in cols) / math.sqrt(dh) for u in keys]
                top = max(scores)
                e = [math.exp(s - top) for s in scores]
                total = math.fsum(e)
                for u, eu in zip(keys, e):
                    P[b, h, t, u] = eu / total
                for k in cols:
                    A[b, t, k] = math.fsum(P[b, h, t, u] * V[b, u, k] for u in keys)
    return ref_linear(sub(p, "out."), A, mode), P


GATES = ("f1", "l", "f2", "c")     # the column blocks of slfn.gates.weight, as slfn.py documents them


def ref_slfn(p, H, mode, order=GATES):
    """f1 = sig(H Wf1_b + bf1), l = sig(H Wl_b + bl), c = tanh(H Wc_b + bc), f2 = sig(H Wf2_b + bf2);
    SLFN(H) = f2 * tanh(f1 * H + l * c), entry by entry.  ``order`` names the column blocks
    (the real order, or a wrong one to show that the test would notice)."""
    d = H.shape[-1]
    W, bias = p["gates.weight"], p["gates.bias"]
    pre = {g: ref_linear({"weight": W[:, k * d:(k + 1) * d], "bias": bias[k * d:(k + 1) * d]}, H, mode)
           for k, g in enumerate(order)}
    f1, l, f2 = each(ref_sigmoid, pre["f1"]), each(ref_sigmoid, pre["l"]), each(ref_sigmoid, pre["f2"])
    c = each(math.tanh, pre["c"])
    out = np.empty(H.shape)
    for index in np.ndindex(H.shape):
        out[index] = f2[index] * math.tanh(f1[index] * H[index] + l[index] * c[index])
    return out, dict(f1=f1, l=l, f2=f2, c=c)


def ref_feed_forward(p, H, mode):
    """FFN(H) = ReLU(H W1_b + b1) W2_b + b2; in W1A1 the second layer reads [ReLU(.) > 0] in {0, 1}, not its sign."""
    hidden = each(lambda v: max(v, 0.0), ref_linear(sub(p, "up."), H, mode))
    if mode.binary and mode.w1a1:
        return ref_affine(each(lambda v: 1.0 if v > 0 else 0.0, hidden), ref_binarize(p["down.weight"], mode.s),
                          p.get("down.bias"))
    return ref_linear(sub(p, "down."), hidden, mode)


def ref_block(p, X, mask, heads, ffn, mode):
    """Post-norm:  H = LN1(X + MHA(X)),  Y = LN2(H + F(H))   (eval: no dropout)."""
    H = ref_layernorm(X + ref_attention(sub(p, "attn."), X, mask, heads, mode)[0], p["norm1.gamma"], p["norm1.beta"])
    F = ref_slfn(sub(p, "ffn."), H, mode)[0] if ffn == "slfn" else ref_feed_forward(sub(p, "ffn."), H, mode)
    return ref_layernorm(H + F, p["norm2.gamma"], p["norm2.beta"])


def ref_exit_head(p, Y, mask):
    """z = Linear(mean of Y over the real tokens of each input)."""
    B, T, d = Y.shape
    pooled = np.empty((B, d))
    for b in range(B):
        real = [t for t in range(T) if mask[b, t] > 0]
        pooled[b] = [math.fsum(Y[b, t, k] for t in real) / len(real) for k in range(d)]
    return ref_affine(pooled, p["linear.weight"], p["linear.bias"])


def ref_model(params, cfg, ids, mask, mode):
    """Every exit's logits: X_0 = positions(embedding(ids)), X_i = Block_i(X_{i-1}), z_i = Exit_i(X_i)."""
    X = ref_embedding(params["embedding.weight"], ids, cfg.binarize_embeddings, mode.s)
    X = ref_positions(X, cfg.position_mode, cfg.position_dim if cfg.position_mode == "concat" else cfg.token_dim)
    block_mode = mode if cfg.binarize else Mode(binary=False)
    logits = []
    for i in range(cfg.blocks):
        X = ref_block(sub(params, f"blocks.{i}."), X, mask, cfg.heads, cfg.ffn, block_mode)
        logits.append(ref_exit_head(sub(params, f"exits.{i}."), X, mask))
    return logits


# ---- the references: entropy, exit rules, exit weights, loss --------------------------------

def ref_softmax(z):
    top = max(z)
    e = [math.exp(v - top) for v in z]
    total = math.fsum(e)
    return [v / total for v in e]


def ref_entropy(z):
    """H = -sum_c p_c log p_c (a class with p_c = 0 adds nothing)."""
    return -math.fsum(p * math.log(p) for p in ref_softmax([float(v) for v in z]) if p > 0)


def ref_fraction(H_prev, H):
    """r_i = (H_{i-1} - H_i) / H_{i-1}; None where H_{i-1} is (near) zero: already certain."""
    return None if H_prev < CERTAIN else (H_prev - H) / H_prev


def ref_fractional_exit(Hs, delta):
    """1-based exit block: the first i >= 2 with r_i < delta, or already certain (H_{i-1} ~ 0); else N."""
    for i in range(2, len(Hs) + 1):
        r = ref_fraction(Hs[i - 2], Hs[i - 1])
        if r is None or r < delta:
            return i
    return len(Hs)


def ref_change(prev, cur):
    """|y_i - y_{i-1}| / |y_{i-1}|, with |y_{i-1}| floored at CERTAIN."""
    return abs(cur - prev) / max(abs(prev), CERTAIN)


def ref_relative_exit(ys, delta):
    """Regression: the first i >= 2 where the prediction moved by less than a fraction delta; else N."""
    for i in range(2, len(ys) + 1):
        if ref_change(ys[i - 2], ys[i - 1]) < delta:
            return i
    return len(ys)


def ref_exit_weights(logits, weighting, regression=False, delta=0.1, tau=0.05, beta=0.2):
    """(N, B): uniform 1/N; linear i / (1 + ... + N); soft routing q_1 = 0, q_i = sig((delta - r_i) / tau),
    q_N = 1, pi_i = q_i prod_{j<i} (1 - q_j), w_i = (1 - beta) pi_i + beta / N.  Input by input."""
    N, B = len(logits), len(logits[0])
    W = np.empty((N, B))
    for b in range(B):
        if weighting == "uniform":
            w = [1 / N] * N
        elif weighting == "linear":
            w = [i / (N * (N + 1) / 2) for i in range(1, N + 1)]
        else:
            if regression:
                ys = [float(z[b, 0]) for z in logits]
                r = [None] + [ref_change(ys[i - 1], ys[i]) for i in range(1, N)]
            else:
                Hs = [ref_entropy(z[b]) for z in logits]
                r = [None] + [ref_fraction(Hs[i - 1], Hs[i]) for i in range(1, N)]
            # certain (r is None): it leaves here, q_i = 1; one exit alone takes all the weight
            q = [0.0] + [1.0 if r[i] is None else ref_sigmoid((delta - r[i]) / tau) for i in range(1, N - 1)] + [1.0]
            q = q[-N:]
            w, stay = [], 1.0
            for i in range(N):
                w.append((1 - beta) * q[i] * stay + beta / N)
                stay *= 1 - q[i]
        W[:, b] = w
    return W


def ref_multi_exit_loss(logits, y, w, regression=False):
    """L = sum_i (1/B) sum_b w_ib loss_ib, loss = -log softmax(z_ib)[y_b] or (yhat_ib - y_b)^2."""
    terms = []
    for i, z in enumerate(logits):
        B = len(z)
        for b in range(B):
            if regression:
                loss = (float(z[b, 0]) - float(y[b])) ** 2
            else:
                row = [float(v) for v in z[b]]                           # -log p_y = log sum_c e^(z_c) - z_y
                top = max(row)
                loss = top + math.log(math.fsum(math.exp(v - top) for v in row)) - row[int(y[b])]
            terms.append(float(w[i, b]) * loss / B)
    return math.fsum(terms)


# ---- inputs ------------------------------------------------------------------------------

# name -> (seed, batch B, tokens T, width d, heads h); every batch holds padding.  d_h = 1 only in "one-dim-heads".
SHAPES = {
    "default": (0, 3, 5, 8, 2),
    "odd": (1, 2, 7, 6, 3),
    "one-head": (2, 4, 4, 4, 1),
    "batch-1": (3, 1, 6, 6, 2),
    "one-dim-heads": (4, 2, 3, 3, 3),
}


def padded_mask(rng, B, T):
    """(B, T) float: real-token prefixes, every row at least one real token, row 0 always padded (T > 1)."""
    lengths = rng.integers(1, T + 1, size=B)
    lengths[0] = rng.integers(1, T) if T > 1 else 1
    return (np.arange(T)[None, :] < lengths[:, None]).astype(np.float64)


def with_zeros(rng, x, share=0.1):
    """x with a share of its entries set to exactly 0."""
    x = np.array(x, np.float64)
    x[rng.random(x.shape) < share] = 0.0
    return x


def randomize(module, rng):
    """Every parameter random: latent binary weights in [-1.5, 1.5] with exact zeros, LayerNorm gains
    around 1, everything else around 0; an embedding's padding row stays 0.  Then eval mode."""
    for name, p in module.parameters():
        if p.binary:
            p.data[...] = with_zeros(rng, rng.uniform(-1.5, 1.5, p.shape))
        elif name.endswith("gamma"):
            p.data[...] = 1 + 0.5 * rng.standard_normal(p.shape)
        else:
            p.data[...] = 0.5 * rng.standard_normal(p.shape)
    for m in module.modules():
        if isinstance(m, Embedding) and m.padding_idx is not None:
            m.weight.data[m.padding_idx] = 0
    return module.eval()


def build(module, mode, rng):
    return randomize(module, rng).relax(mode.relaxed)


def shape_case(name):
    seed, B, T, d, heads = SHAPES[name]
    rng = np.random.default_rng(seed)
    return rng, B, T, d, heads, padded_mask(rng, B, T)


# ---- 1. sign, g, g', the STE; alpha and BinaryLinear ---------------------------------------

POINTS = np.array([-3.0, -1.5, -1.0, -1 + 1e-9, -0.75, -0.5, -1e-12, -0.0, 0.0, 1e-12, 0.25, 0.5, 1 - 1e-9,
                   1.0, 1.0 + 1e-9, 2.0])


def test_sign_g_and_the_estimators_by_their_piecewise_definitions():
    x = np.concatenate([POINTS, np.random.default_rng(0).uniform(-2.5, 2.5, 200)])
    np.testing.assert_array_equal(sign(x), each(ref_sign, x))                  # exact: sign(0) = sign(-0) = +1
    assert sign(np.zeros(3))[0] == 1.0
    assert_close(SecondOrderSign.relaxed(x), each(ref_g, x))
    assert_close(SecondOrderSign.grad(x), each(ref_g_prime, x))
    assert_close(StraightThroughSign.relaxed(x), each(ref_clip, x))
    assert_close(StraightThroughSign.grad(x), each(ref_ste_prime, x))


@pytest.mark.parametrize("relaxed", [False, True])
def test_alpha_is_the_mean_absolute_weight_of_each_output_unit(relaxed):
    rng = np.random.default_rng(1)
    W = with_zeros(rng, rng.uniform(-1.5, 1.5, (7, 3)))                          # (in, out): not square
    Wb = binarize_weight(W, SecondOrderSign, relaxed).Wb
    assert_close(Wb, ref_binarize(W, Mode(relaxed=relaxed).s))
    if not relaxed:                                                               # one magnitude per column: +-alpha_j
        np.testing.assert_array_equal(np.abs(Wb), np.broadcast_to(np.abs(Wb[0]), W.shape))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", ["default", "odd"])
def test_linear_layers(shape, mode):
    rng, B, T, d, _, _ = shape_case(shape)
    m = MODES[mode]
    n_out = d + 3
    layer = make_linear(d, n_out, rng, m.binary, **m.options())
    build(layer, m, rng)
    x = with_zeros(rng, rng.standard_normal((B, T, d)))                          # zeros: sign(0) = +1 on W1A1 inputs
    assert_close(layer.forward(x), ref_linear(layer.state_dict(), x, m))


# ---- 2. embeddings and positions ----------------------------------------------------------

@pytest.mark.parametrize("binarized, mode", [(False, "binary"), (True, "binary"), (True, "relaxed"),
                                             (True, "relaxed-ste")])
def test_embedding(binarized, mode):
    rng = np.random.default_rng(2)
    m = MODES[mode]
    emb = build(Embedding(9, 5, rng, binarize=binarized, estimator=m.estimator, dtype=np.float64), m, rng)
    mask = padded_mask(rng, 3, 6)
    ids = (rng.integers(1, 9, size=(3, 6)) * mask).astype(np.int64)
    assert_close(emb.forward(ids), ref_embedding(emb.weight.data, ids, binarized, m.s))


@pytest.mark.parametrize("position_mode", ["concat", "add"])
@pytest.mark.parametrize("T", [5, 11])                                           # 11 > max_len: the table grows
def test_sinusoidal_positions(position_mode, T):
    rng = np.random.default_rng(3)
    d_tok, d_pos = (6, 4) if position_mode == "concat" else (6, 6)
    x = rng.standard_normal((2, T, d_tok))
    pos = SinusoidalPositions(d_pos, position_mode, max_len=8)
    assert_close(pos.forward(x), ref_positions(x, position_mode, d_pos))


# ---- 3. LayerNorm, attention, SLFN, feed-forward, block, exit head ------------------------

@pytest.mark.parametrize("scale", [1.0, 1e-2])                                   # small variance: eps matters more
def test_layernorm_by_its_definition(scale):
    rng = np.random.default_rng(4)
    norm = build(LayerNorm(7, dtype=np.float64), Mode(), rng)
    assert norm.eps == LN_EPS
    x = 3 + scale * rng.standard_normal((2, 3, 7))
    assert_close(norm.forward(x), ref_layernorm(x, norm.gamma.data, norm.beta.data))


@pytest.mark.parametrize("mode", ["binary", "w1a1", "relaxed", "real"])
@pytest.mark.parametrize("shape", SHAPES)
def test_masked_multi_head_attention_head_by_head(shape, mode):
    rng, B, T, d, heads, mask = shape_case(shape)
    m = MODES[mode]
    attn = build(BinaryMultiHeadAttention(d, heads, rng, binary=m.binary, **m.options()), m, rng)
    X = rng.standard_normal((B, T, d))
    out = attn.forward(X, mask)
    expected, P = ref_attention(attn.state_dict(), X, mask, heads, m)
    assert_close(attn.P, P)                                          # every head's weights, 0 on padded keys
    assert_close(out, expected)


@pytest.mark.parametrize("mode", ["binary", "w1a1", "relaxed", "real"])
@pytest.mark.parametrize("shape", ["default", "odd", "batch-1"])
def test_slfn_gate_by_gate(shape, mode):
    rng, B, T, d, _, _ = shape_case(shape)
    m = MODES[mode]
    slfn = build(SLFN(d, rng, binary=m.binary, **m.options()), m, rng)
    H = rng.standard_normal((B, T, d))
    out = slfn.forward(H)
    expected, gates = ref_slfn(slfn.state_dict(), H, m)
    for g in GATES:
        assert_close(getattr(slfn, g), gates[g])
    assert_close(out, expected)
    # the data tell the gates apart: with any two column blocks swapped the reference disagrees
    for a, b in itertools.combinations(range(4), 2):
        order = list(GATES)
        order[a], order[b] = order[b], order[a]
        assert np.abs(ref_slfn(slfn.state_dict(), H, m, tuple(order))[0] - out).max() > 1e-6, order


@pytest.mark.parametrize("mode", ["binary", "w1a1", "relaxed", "real"])
def test_binary_feed_forward(mode):
    rng, B, T, d, _, _ = shape_case("default")
    m = MODES[mode]
    ffn = build(BinaryFeedForward(d, rng, binary=m.binary, **m.options()), m, rng)
    H = rng.standard_normal((B, T, d))
    assert_close(ffn.forward(H), ref_feed_forward(ffn.state_dict(), H, m))


@pytest.mark.parametrize("ffn", ["slfn", "ffn"])
@pytest.mark.parametrize("mode", ["binary", "w1a1", "relaxed", "real"])
@pytest.mark.parametrize("shape", ["default", "odd"])
def test_post_norm_block(shape, mode, ffn):
    rng, B, T, d, heads, mask = shape_case(shape)
    m = MODES[mode]
    block = build(Block(d, heads, rng, ffn=ffn, dropout=0.3, binary=m.binary, **m.options()), m, rng)
    X = rng.standard_normal((B, T, d))
    assert_close(block.forward(X, mask), ref_block(block.state_dict(), X, mask, heads, ffn, m))


@pytest.mark.parametrize("shape", SHAPES)
def test_exit_head_is_the_masked_mean_then_linear(shape):
    rng, B, T, d, _, mask = shape_case(shape)
    head = build(ExitHead(d, 3, rng, dtype=np.float64), Mode(), rng)
    Y = rng.standard_normal((B, T, d))
    assert_close(head.forward(Y, mask), ref_exit_head(head.state_dict(), Y, mask))


# ---- 4. entropy and the exit rules, example by example ------------------------------------

def rule_logits(rng, N=5, n=40, C=3):
    """(N, n, C) logits of every kind: mild and sure, rising and falling entropy, certain inputs
    (H = 0 exactly, and H ~ 1e-10 falling further), and classes whose probability underflows."""
    scale = rng.choice([0.3, 1.0, 3.0], size=(1, n, 1)) * np.linspace(0.5, 2.0, N)[:, None, None]
    z = rng.standard_normal((N, n, C)) * scale
    z[:, 0] = [[800.0, 0.0, -5.0]] * N                                 # certain from block 1: H = 0 exactly
    z[:, 1] = [[22.0 + 2 * i, 0.0, 0.0] for i in range(N)]            # H ~ 1e-8, falling: near zero
    z[:, 2] = [[1.0, 0.0, 0.5]] + [[900.0, 0.0, 0.0]] * (N - 1)       # certain from block 2
    z[:, 3] = [[0.1 * i, 0.0, 0.0] for i in range(N)]                 # entropy falls slowly
    z[:, 4] = [[3.0 * i, 0.0, 0.0] for i in range(N)]                 # entropy falls fast
    return z


def test_entropy_by_its_definition():
    z = rule_logits(np.random.default_rng(5))
    expected = np.array([[ref_entropy(zb) for zb in zi] for zi in z])
    assert_close(entropy(z), expected)
    assert_close(entropy(z, normalized=True), expected / math.log(z.shape[-1]))
    assert entropy(z)[0, 0] == 0.0


@pytest.mark.parametrize("delta", [0.01, 0.1, 0.3, 0.7])
def test_fractional_rule_example_by_example(delta):
    z = rule_logits(np.random.default_rng(6))
    N, n = z.shape[:2]
    Hs = [[ref_entropy(z[i, b]) for i in range(N)] for b in range(n)]
    expected = [ref_fractional_exit(H, delta) for H in Hs]
    np.testing.assert_array_equal(simulate_exits(z, FractionalEntropy(delta)), expected)
    assert expected[0] == expected[1] == 2 and expected[2] == 3                  # certain inputs leave at once
    # r_i where H_{i-1} is not near zero
    H = entropy(z)
    r = fractional_entropy_drop(H[:-1], H[1:])
    for b in range(n):
        for i in range(1, N):
            ref = ref_fraction(Hs[b][i - 1], Hs[b][i])
            if ref is not None:
                assert_close(r[i - 1, b], ref)


def test_fractional_rule_leaves_at_every_block():
    """The deltas above, together, send inputs out at every block 2..N (so an off-by-one shows)."""
    z = rule_logits(np.random.default_rng(6))
    seen = {int(e) for delta in (0.01, 0.1, 0.3, 0.7) for e in simulate_exits(z, FractionalEntropy(delta))}
    assert seen == set(range(2, z.shape[0] + 1))


def regression_predictions(rng, N=5, n=30):
    """(N, n) predictions: positive and negative, rising and falling, tiny and zero previous values."""
    y = rng.standard_normal((1, n)) * 2 + np.cumsum(rng.standard_normal((N, n)) * rng.choice([0.01, 0.3, 2.0], n), 0)
    y[:, 0] = [-1.0, -0.5, -0.49, -0.48, -0.47][:N]       # negative, moving up
    y[:, 1] = [-1.0, -1.5, -1.52, -1.53, -1.54][:N]       # negative, moving down
    y[:, 2] = [2.0, 1.0, 0.99, 0.98, 0.97][:N]            # positive, falling
    y[:, 3] = [0.0, 1e-9, 1.0, 1.0, 1.0][:N]              # zero: the floor of the denominator
    return y


@pytest.mark.parametrize("delta", [0.02, 0.1, 0.5])
def test_relative_change_rule_example_by_example(delta):
    y = regression_predictions(np.random.default_rng(7))
    N, n = y.shape
    expected = [ref_relative_exit(list(y[:, b]), delta) for b in range(n)]
    np.testing.assert_array_equal(simulate_exits(y[..., None], RelativeChange(delta)), expected)
    assert len(set(expected)) >= 2
    assert_close(relative_change(y[:-1], y[1:]),
                 [[ref_change(y[i - 1, b], y[i, b]) for b in range(n)] for i in range(1, N)], rtol=1e-12)


def tiny_config(**overrides):
    return ModelConfig(**dict(dict(vocab_size=15, num_classes=3, token_dim=6, position_dim=2, heads=2, blocks=5,
                                   dropout=0.2), **overrides))


@pytest.mark.parametrize("regression", [False, True])
def test_early_exit_engine_against_a_loop_over_examples(regression):
    """Each input alone, through the reference model, and the rule applied by hand: the engine's exit
    block and logits, input by input."""
    rng = np.random.default_rng(8)
    cfg = tiny_config(num_classes=1 if regression else 3, regression=regression)
    model = randomize(BEExformer(cfg, rng, dtype=np.float64), rng)
    B, T = 10, 6
    mask = padded_mask(rng, B, T)
    ids = (rng.integers(4, cfg.vocab_size, size=(B, T)) * mask).astype(np.int64)
    params = model.state_dict()
    alone = [ref_model(params, cfg, ids[b:b + 1, :int(mask[b].sum())], mask[b:b + 1, :int(mask[b].sum())], Mode())
             for b in range(B)]                                          # per input: N logits (1, C)
    if regression:
        series = [[float(z[0, 0]) for z in zs] for zs in alone]
        drops = [ref_change(s[i - 1], s[i]) for s in series for i in range(1, cfg.blocks)]
    else:
        series = [[ref_entropy(z[0]) for z in zs] for zs in alone]
        drops = [ref_fraction(s[i - 1], s[i]) for s in series for i in range(1, cfg.blocks)]
    # delta halfway between two neighbouring drops (no decision is a matter of rounding), the one that
    # sends the inputs out at the most different blocks
    drops = np.sort([v for v in drops if v is not None and 0 <= v < 1])     # the rules' legal deltas only
    exit_rule = ref_relative_exit if regression else ref_fractional_exit
    delta = max((drops[:-1] + drops[1:]) / 2, key=lambda d: len({exit_rule(s, d) for s in series}))
    rule = RelativeChange(delta) if regression else FractionalEntropy(delta)
    expected = [exit_rule(s, delta) for s in series]
    result = early_exit_forward(model, ids, mask, rule)
    np.testing.assert_array_equal(result.exit_block, expected)
    assert len(set(expected)) >= 2
    assert_close(result.logits, np.stack([alone[b][expected[b] - 1][0] for b in range(B)]), rtol=1e-11)


# ---- 5. exit weights and the multi-exit loss ----------------------------------------------

@pytest.mark.parametrize("N", [2, 3, 5])
@pytest.mark.parametrize("regression", [False, True])
@pytest.mark.parametrize("weighting", ["uniform", "linear", "soft_routing"])
def test_exit_weights(weighting, regression, N):
    rng = np.random.default_rng(9)
    if regression:
        logits = list(regression_predictions(rng, N=N)[..., None])
    else:
        logits = list(rule_logits(rng, N=N))
    for delta, tau, beta in [(0.1, 0.05, 0.2), (0.3, 0.2, 0.0), (0.05, 0.5, 0.6)]:
        soft = dict(delta=delta, tau=tau, beta=beta)
        w = exit_weights(logits, weighting, regression, SoftRouting(**soft))
        assert_close(w, ref_exit_weights(logits, weighting, regression, **soft))


@pytest.mark.parametrize("regression", [False, True])
@pytest.mark.parametrize("weighting", ["uniform", "linear", "soft_routing"])
def test_weighted_multi_exit_loss(weighting, regression):
    rng = np.random.default_rng(10)
    N, B = 4, 12
    if regression:
        logits = list(regression_predictions(rng, N=N, n=B)[..., None])
        y = rng.standard_normal(B)
    else:
        logits = list(rule_logits(rng, N=N, n=B))
        y = rng.integers(0, 3, B)
    soft = dict(delta=0.2, tau=0.1, beta=0.3)
    loss = MultiExitLoss(N, weighting, regression=regression, routing=SoftRouting(**soft))
    total = loss.forward(logits, y)
    w = ref_exit_weights(logits, weighting, regression, **soft)
    assert_close(total, ref_multi_exit_loss(logits, y, w, regression))


# ---- 6. the whole model, every exit ------------------------------------------------------

MODEL_CASES = {
    "binary, concat, slfn": (dict(), "binary"),
    "binary, add, ffn": (dict(position_mode="add", token_dim=8, ffn="ffn"), "binary"),
    "w1a1, binarized embeddings": (dict(binarize_activations=True, binarize_embeddings=True), "w1a1"),
    "relaxed, binarized embeddings": (dict(binarize_embeddings=True), "relaxed"),
    "relaxed ste, w1a1": (dict(estimator="ste", binarize_activations=True), "relaxed-w1a1-ste"),
    "full precision twin": (dict(binarize=False), "real"),
    "regression": (dict(num_classes=1, regression=True, heads=4), "binary"),
}


@pytest.mark.parametrize("case", MODEL_CASES)
def test_whole_model_logits_at_every_exit(case):
    overrides, mode = MODEL_CASES[case]
    m = MODES[mode]
    rng = np.random.default_rng(11)
    cfg = tiny_config(blocks=3, **overrides)
    model = randomize(BEExformer(cfg, rng, dtype=np.float64), rng).relax(m.relaxed)
    B, T = 3, 6
    mask = padded_mask(rng, B, T)
    ids = (rng.integers(4, cfg.vocab_size, size=(B, T)) * mask).astype(np.int64)
    logits = model.forward(ids, mask)
    expected = ref_model(model.state_dict(), cfg, ids, mask, m)
    assert len(logits) == cfg.blocks
    for i in range(cfg.blocks):
        assert_close(logits[i], expected[i])
