"""Properties of the layers that hold for every input (Hypothesis), and the
statistical ones of dropout (seeded).  The math is DESIGN §1-5."""
import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from beexnp.activations import softmax, softmax_backward
from beexnp.attention import BinaryMultiHeadAttention, masked_softmax
from beexnp.block import Block, ExitHead, masked_mean
from beexnp.dropout import Dropout
from beexnp.embedding import Embedding, SinusoidalPositions, sinusoidal_table
from beexnp.linear import BinaryLinear
from beexnp.losses import SoftmaxCrossEntropy
from beexnp.norm import LayerNorm
from beexnp.sign import SecondOrderSign, StraightThroughSign, sign

PROPERTY = settings(max_examples=30, deadline=None)
FLOATS = [np.float32, np.float64]
G, STE = SecondOrderSign, StraightThroughSign


# ---- strategies -------------------------------------------------------------

def reals(lo, hi, dtype=np.float64):
    return st.floats(lo, hi, width=np.dtype(dtype).itemsize * 8)


def arrays(dtype, shape, lo=-3.0, hi=3.0, elements=None):
    return hnp.arrays(dtype, shape, elements=elements if elements is not None else reals(lo, hi, dtype))


def around(points, spread, dtype=np.float64):
    """Values within +-spread of the given points (where the kinks of g and STE are)."""
    return st.builds(lambda p, o: np.dtype(dtype).type(p + o), st.sampled_from(points), reals(-spread, spread))


def near_kinks_or_anywhere(dtype=np.float64):
    return st.one_of(reals(-3, 3, dtype), around([-1.0, -0.5, 0.0, 0.5, 1.0], 1e-6, dtype),
                     st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0]).map(np.dtype(dtype).type))


@st.composite
def padded_batch(draw, max_batch=3, max_tokens=5):
    """(B, T) mask of real-token prefixes: every row has a real token, row 0 has padding."""
    B = draw(st.integers(1, max_batch))
    T = draw(st.integers(2, max_tokens))
    lengths = [draw(st.integers(1, T - 1))] + [draw(st.integers(1, T)) for _ in range(B - 1)]
    return (np.arange(T)[None, :] < np.array(lengths)[:, None]).astype(np.float64)


def seeds():
    return st.integers(0, 2**32 - 1)


# ---- sign, g and the two estimators (DESIGN §1) ------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@PROPERTY
@given(data=st.data())
def test_sign_is_one_bit_with_sign_of_zero_plus_one(dtype, data):
    x = data.draw(hnp.arrays(dtype, hnp.array_shapes(max_dims=3, max_side=5),
                             elements=hnp.from_dtype(np.dtype(dtype), allow_nan=False)))
    s = sign(x)
    assert s.dtype == x.dtype
    assert set(np.unique(s)) <= {-1, 1}
    assert np.all(s[x > 0] == 1) and np.all(s[x < 0] == -1) and np.all(s[x == 0] == 1)


def test_sign_of_both_zeros_and_extremes():
    x = np.array([0.0, -0.0, 5e-324, -5e-324, np.inf, -np.inf])
    np.testing.assert_array_equal(sign(x), [1, 1, 1, -1, 1, -1])


def g_from_design(x):
    """g written as DESIGN §1 states it, piece by piece."""
    return np.select([x < -1, x < 0, x < 1], [-1.0, 2 * x + x * x, 2 * x - x * x], 1.0)


def triangle_from_design(x):
    return np.select([x < -1, x < 0, x < 1], [0.0, 2 + 2 * x, 2 - 2 * x], 0.0)


@PROPERTY
@given(arrays(np.float64, st.integers(1, 40), elements=near_kinks_or_anywhere()))
def test_g_is_odd_bounded_and_the_design_formula(x):
    g = G.relaxed(x)
    np.testing.assert_array_equal(G.relaxed(-x), -g)
    assert np.all(np.abs(g) <= 1)
    np.testing.assert_allclose(g, g_from_design(x), rtol=0, atol=1e-15)
    np.testing.assert_allclose(G.grad(x), triangle_from_design(x), rtol=0, atol=1e-15)
    np.testing.assert_array_equal(G.grad(x), np.maximum(0, 2 - 2 * np.abs(x)))


@PROPERTY
@given(arrays(np.float64, 30, elements=near_kinks_or_anywhere()), arrays(np.float64, 30, -1e-3, 1e-3))
def test_g_is_continuous(x, step):
    """|g'| <= 2, so |g(x + e) - g(x)| <= 2|e|: no jump at 0 or +-1."""
    jump = np.abs(G.relaxed(x + step) - G.relaxed(x))
    assert np.all(jump <= 2 * np.abs(step) + 1e-15)


AWAY_FROM_KINKS = reals(-3, 3).filter(lambda v: min(abs(v), abs(abs(v) - 1)) > 1e-3)


@pytest.mark.parametrize("estimator", [G, STE])
@PROPERTY
@given(x=arrays(np.float64, 20, elements=AWAY_FROM_KINKS))
def test_estimator_grad_is_the_derivative_of_its_relaxed_forward(estimator, x):
    h = 1e-6
    numeric = (estimator.relaxed(x + h) - estimator.relaxed(x - h)) / (2 * h)
    np.testing.assert_allclose(estimator.grad(x), numeric, rtol=0, atol=1e-7)


@pytest.mark.parametrize("dtype", FLOATS)
@PROPERTY
@given(data=st.data())
def test_ste_and_triangle_agree_exactly_at_half_and_beyond_one(dtype, data):
    """The triangle 2 - 2|x| and the STE's 1 on |x| <= 1 are equal only where
    |x| = 0.5 (both 1) or |x| > 1 (both 0); at |x| = 1 the STE is 1, the triangle 0.
    One float is excluded: just below |x| = 0.5 the exact triangle 1 + 2^-p rounds to 1."""
    below_half = np.nextafter(dtype(0.5), dtype(0))
    x = data.draw(arrays(dtype, st.integers(1, 30), elements=near_kinks_or_anywhere(dtype).filter(
        lambda v: abs(v) != below_half)))
    equal = G.grad(x) == STE.grad(x)
    np.testing.assert_array_equal(equal, (np.abs(x) == 0.5) | (np.abs(x) > 1))


def test_ste_and_triangle_at_the_named_points():
    x = np.array([-2, -1.5, -1, -0.75, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 1, 1.5, 2])
    np.testing.assert_array_equal(G.grad(x), [0, 0, 0, 0.5, 1, 1.5, 2, 1.5, 1, 0.5, 0, 0, 0])
    np.testing.assert_array_equal(STE.grad(x), [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0])


# ---- BinaryLinear in binary mode: +-alpha_j per column -----------------------

@pytest.mark.parametrize("dtype", FLOATS)
@PROPERTY
@given(data=st.data())
def test_binary_linear_weights_are_plus_minus_alpha_per_column(dtype, data):
    shape = data.draw(st.tuples(st.integers(1, 6), st.integers(1, 5)))
    W = data.draw(arrays(dtype, shape, -2.0, 2.0))
    layer = BinaryLinear(*shape, np.random.default_rng(data.draw(seeds())), dtype=dtype)
    layer.weight.data = W
    Wb = layer.effective_weight()
    alpha = np.abs(W).mean(axis=0)                                   # alpha_j = mean_i |W_ij|
    assert Wb.dtype == dtype
    np.testing.assert_array_equal(np.abs(Wb), np.broadcast_to(alpha, shape))
    real = np.broadcast_to(alpha > 0, shape)
    np.testing.assert_array_equal(np.sign(Wb)[real], np.where(W >= 0, 1, -1)[real])
    x = data.draw(arrays(dtype, (2, shape[0])))
    np.testing.assert_allclose(layer.forward(x), x @ Wb + layer.bias.data, rtol=1e-5, atol=1e-5)


# ---- softmax, cross-entropy, LayerNorm ---------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@PROPERTY
@given(data=st.data())
def test_softmax_rows_are_distributions(dtype, data):
    z = data.draw(arrays(dtype, hnp.array_shapes(min_dims=2, max_dims=3, max_side=6), -100.0, 100.0))
    p = softmax(z)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert p.dtype == dtype and np.all(p >= 0) and np.all(p <= 1)
    np.testing.assert_allclose(p.sum(axis=-1), 1, rtol=0, atol=tol)
    np.testing.assert_allclose(p, scipy.special.softmax(z.astype(np.float64), axis=-1), rtol=0, atol=tol)


@PROPERTY
@given(data=st.data())
def test_masked_softmax_and_softmax_backward_leave_their_arguments_alone(data):
    """Both return new arrays: the scores, the mask, p and dp are as they were (the attention's backward
    reads P again after softmax_backward)."""
    mask = data.draw(padded_batch())                                       # (B, T)
    B, T = mask.shape
    S = data.draw(arrays(np.float64, (B, 2, T, T), -50.0, 50.0))
    dP = data.draw(arrays(np.float64, (B, 2, T, T)))
    kept = [S.copy(), mask.copy(), dP.copy()]
    P = masked_softmax(S, mask[:, None, None, :])
    P_kept = P.copy()
    dS = softmax_backward(P, dP)
    for now, before in zip([S, mask, dP, P], kept + [P_kept]):
        np.testing.assert_array_equal(now, before)
    assert not np.shares_memory(P, S) and not np.shares_memory(dS, dP)
    np.testing.assert_array_equal(P[np.broadcast_to(mask[:, None, None, :], P.shape) == 0], 0)


@st.composite
def logits_and_labels(draw):
    B, C = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    return draw(arrays(np.float64, (B, C), -20.0, 20.0)), draw(arrays(np.int64, B, elements=st.integers(0, C - 1)))


@PROPERTY
@given(logits_and_labels())
def test_cross_entropy_is_mean_negative_log_probability_of_the_label(batch):
    z, y = batch
    p = scipy.special.softmax(z, axis=1)
    expected = -np.mean(np.log(p[np.arange(len(y)), y]))
    loss = SoftmaxCrossEntropy()
    np.testing.assert_allclose(loss.forward(z, y), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(loss.forward(z, y, weights=np.ones(len(y))), expected, rtol=1e-10, atol=1e-12)


@PROPERTY
@given(arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(2, 10)), -1e3, 1e3))
def test_layernorm_rows_have_mean_zero_and_unit_variance(x):
    """With gamma = 1, beta = 0: mean 0 and variance var / (var + eps), i.e. 1 up to eps / var."""
    norm = LayerNorm(x.shape[1], dtype=np.float64)
    y = norm.forward(x)
    var = x.var(axis=1)
    # the mean is exact up to the rounding of x's own mean, magnified by 1 / sigma
    rounding = 16 * x.shape[1] * np.finfo(x.dtype).eps * (1 + np.abs(x).max(axis=1) / np.sqrt(var + norm.eps))
    assert np.all(np.abs(y.mean(axis=1)) <= rounding)
    np.testing.assert_allclose(y.var(axis=1), var / (var + norm.eps), rtol=1e-9, atol=1e-12)
    # |var(y) - 1| <= eps / var + 1e-9, multiplied through by var (no overflow when var is subnormal)
    assert np.all(np.abs(y.var(axis=1) - 1) * var <= norm.eps + 1e-9 * var)


# ---- padding: masked positions never reach the real ones ---------------------

def attention_like(kind, dim, heads, rng, dtype):
    if kind == "attention":
        return BinaryMultiHeadAttention(dim, heads, rng, dtype=dtype)
    if kind == "exit head":
        return ExitHead(dim, 3, rng, dtype=dtype)
    return Block(dim, heads, rng, ffn=kind.split()[1], dropout=0.1, dtype=dtype).eval()


@pytest.mark.parametrize("kind", ["attention", "block slfn", "block ffn", "exit head"])
@pytest.mark.parametrize("dtype", FLOATS)
@PROPERTY
@given(data=st.data(), mask=padded_batch())
def test_padded_contents_do_not_reach_real_positions(kind, dtype, data, mask):
    heads, head_dim = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    dim = heads * head_dim
    module = attention_like(kind, dim, heads, np.random.default_rng(data.draw(seeds())), dtype)
    x = data.draw(arrays(dtype, mask.shape + (dim,)))
    other = np.where(mask[:, :, None] > 0, x, data.draw(arrays(dtype, x.shape, -1e3, 1e3)))
    mask = mask.astype(dtype)
    out, out_other = module.forward(x, mask), module.forward(other, mask)
    assert out.dtype == dtype
    real = (slice(None),) if kind == "exit head" else (mask > 0,)
    np.testing.assert_array_equal(out[real], out_other[real])


@pytest.mark.parametrize("dtype", FLOATS)
@PROPERTY
@given(data=st.data(), mask=padded_batch())
def test_padded_keys_get_exactly_zero_attention(dtype, data, mask):
    heads = data.draw(st.integers(1, 3))
    attn = BinaryMultiHeadAttention(2 * heads, heads, np.random.default_rng(data.draw(seeds())), dtype=dtype)
    attn.forward(data.draw(arrays(dtype, mask.shape + (2 * heads,))), mask.astype(dtype))
    P = attn.P                                                       # (B, h, T_q, T_k)
    padded_keys = np.broadcast_to((mask == 0)[:, None, None, :], P.shape)
    assert np.all(P[padded_keys] == 0)
    np.testing.assert_allclose(P.sum(axis=-1), 1, rtol=0, atol=1e-5 if dtype == np.float32 else 1e-12)


@PROPERTY
@given(data=st.data(), mask=padded_batch(max_batch=4, max_tokens=6))
def test_masked_mean_is_the_mean_over_real_tokens(data, mask):
    Y = data.draw(arrays(np.float64, mask.shape + (data.draw(st.integers(1, 4)),)))
    pooled, _ = masked_mean(Y, mask)
    expected = np.stack([Y[b, mask[b] > 0].mean(axis=0) for b in range(len(Y))])
    np.testing.assert_allclose(pooled, expected, rtol=1e-12, atol=1e-12)
    Y_other = np.where(mask[:, :, None] > 0, Y, data.draw(arrays(np.float64, Y.shape, -1e6, 1e6)))
    np.testing.assert_array_equal(masked_mean(Y_other, mask)[0], pooled)


# ---- embeddings and positions ------------------------------------------------

@pytest.mark.parametrize("binarize", [False, True])
@PROPERTY
@given(data=st.data())
def test_embedding_padding_row_is_zero_and_gets_no_gradient(binarize, data):
    vocab, dim = data.draw(st.integers(2, 8)), data.draw(st.integers(1, 5))
    ids = data.draw(arrays(np.int64, st.tuples(st.integers(1, 3), st.integers(1, 6)),
                           elements=st.integers(0, vocab - 1)))
    rng = np.random.default_rng(data.draw(seeds()))
    emb = Embedding(vocab, dim, rng, binarize=binarize, dtype=np.float64)
    out = emb.forward(ids)
    assert np.all(out[ids == 0] == 0)
    dout = rng.standard_normal(out.shape)
    emb.backward(dout)
    assert np.all(emb.weight.grad[0] == 0)
    if not binarize:                                 # every other row: the sum of its tokens' gradients
        expected = np.stack([dout[ids == r].sum(axis=0) for r in range(vocab)])
        np.testing.assert_allclose(emb.weight.grad[1:], expected[1:], rtol=1e-12, atol=1e-12)


@PROPERTY
@given(length=st.integers(1, 80), dim=st.integers(1, 16))
def test_sinusoidal_table_values(length, dim):
    PE = sinusoidal_table(length, dim)
    p = np.arange(length)
    assert PE.shape == (length, dim)
    np.testing.assert_allclose(PE[:, 0], np.sin(p), rtol=0, atol=1e-12)
    if dim > 1:
        np.testing.assert_allclose(PE[:, 1], np.cos(p), rtol=0, atol=1e-12)
    for i in range(dim):                             # PE[p, 2k] = sin(p / 10000^(2k/d)), PE[p, 2k+1] = cos(...)
        wave = np.sin if i % 2 == 0 else np.cos
        np.testing.assert_allclose(PE[:, i], wave(p / 10000 ** (2 * (i // 2) / dim)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("mode", ["concat", "add"])
def test_positions_join_the_table_to_the_tokens(rng, mode):
    x = rng.standard_normal((2, 9, 6)).astype(np.float32)
    pos = SinusoidalPositions(6, mode=mode, max_len=4)                 # T > max_len: the table grows
    out = pos.forward(x)
    table = sinusoidal_table(9, 6).astype(np.float32)
    expected = x + table if mode == "add" else np.concatenate([x, np.broadcast_to(table, x.shape)], axis=-1)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


# ---- dropout -----------------------------------------------------------------

def test_dropout_is_identity_in_eval_mode_and_at_p0(rng):
    x = rng.standard_normal((4, 5, 6))
    np.testing.assert_array_equal(Dropout(0.5, rng).eval().forward(x), x)
    np.testing.assert_array_equal(Dropout(0.0, rng).forward(x), x)
    drop = Dropout(0.5, rng).eval()
    drop.forward(x)
    np.testing.assert_array_equal(drop.backward(x), x)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_keeps_one_minus_p_and_rescales(rng, p, dtype):
    n = 50_000
    x = (rng.uniform(0.5, 1.5, n) * rng.choice([-1, 1], n)).astype(dtype)      # no zeros
    drop = Dropout(p, rng)
    y = drop.forward(x)
    kept = y != 0
    assert y.dtype == dtype
    assert abs(kept.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(y[kept], x[kept] / dtype(1 - p), rtol=1e-6)
    dy = np.ones_like(x)
    np.testing.assert_array_equal(drop.backward(dy), np.where(kept, dtype(1 / (1 - p)), 0).astype(dtype))
    assert np.any(drop.forward(x) != y), "each forward draws a new mask"


def test_dropout_is_reproducible_from_a_seeded_generator(rng):
    x = rng.standard_normal((8, 16))
    first, again, other = (Dropout(0.3, np.random.default_rng(seed)).forward(x) for seed in (7, 7, 8))
    np.testing.assert_array_equal(first, again)
    assert np.any(first != other)
