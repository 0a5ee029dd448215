"""One-bit arithmetic (beexnp/xnor.py) and the packed linear layer against the float
binary-mode BinaryLinear: bit order, zero padding, sign(0) = +1, the exact integer
XNOR-popcount product, and W1A1 / W1A32 outputs, for lengths that are not multiples
of 8 or 64 and for any leading (batch, tokens) shape."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beexnp.linear import Binarization, BinaryLinear
from beexnp.packed import PackedBinaryLinear, pack_model
from beexnp.sign import sign
from beexnp.slfn import BinaryFeedForward
from beexnp.xnor import as_words, pack_signs, pack_words, popcount_matmul, step_matmul, unpack_signs, w1a1_matmul

PROPERTY = settings(max_examples=40, deadline=None)
LENGTHS = st.one_of(st.integers(1, 200), st.sampled_from([1, 7, 8, 9, 63, 64, 65, 127, 128, 129]))


def seeds():
    return st.integers(0, 2**32 - 1)


def signed_values(rng, shape, zeros=0.2):
    """Normal values with a share of exact zeros (sign(0) = +1 must hold on the packed path too)."""
    x = rng.standard_normal(shape).astype(np.float32)
    x[rng.random(shape) < zeros] = 0
    return x


# ---- packing: bit order, padding, sign(0) ------------------------------------------------

@PROPERTY
@given(n=LENGTHS, lead=st.lists(st.integers(1, 3), max_size=2), seed=seeds())
def test_bits_roundtrip_documented_order_and_zero_padding(n, lead, seed):
    rng = np.random.default_rng(seed)
    x = signed_values(rng, (*lead, n))
    bits = pack_signs(x)
    assert bits.dtype == np.uint8 and bits.shape == (*lead, -(-n // 8))
    np.testing.assert_array_equal(unpack_signs(bits, n), sign(x))              # +-1 back, sign(0) = +1
    words = as_words(bits)
    assert words.dtype == np.dtype("<u8") and words.shape == (*lead, -(-n // 64))
    i = np.arange(64 * words.shape[-1])
    bit_i = (words[..., i // 64] >> (i % 64).astype(np.uint64)) & np.uint64(1)  # input i: bit i%64 of word i//64
    np.testing.assert_array_equal(bit_i[..., :n], (x >= 0).astype(np.uint64))
    assert not bit_i[..., n:].any()                                              # padding bits are 0


def test_weight_rows_are_output_units():
    """W (in, out) packed along axis 0: row j holds column j's signs."""
    W = np.array([[1.0, -2.0], [0.0, 3.0], [-1.0, -1.0]], np.float32)          # (3, 2)
    bits = pack_signs(W, axis=0)
    assert bits.shape == (2, 1)
    assert bits[:, 0].tolist() == [0b011, 0b010]                                 # little order: input 0 is bit 0


# ---- the integer product ------------------------------------------------------------------

@PROPERTY
@given(n=LENGTHS, rows=st.integers(1, 9), out=st.integers(1, 7), seed=seeds())
def test_popcount_matmul_is_the_exact_integer_dot_product(n, rows, out, seed):
    rng = np.random.default_rng(seed)
    x, W = signed_values(rng, (rows, n)), signed_values(rng, (n, out))
    S = popcount_matmul(pack_words(x), as_words(pack_signs(W, axis=0)), n)
    assert S.dtype == np.int32
    np.testing.assert_array_equal(S, sign(x).astype(np.int64) @ sign(W).astype(np.int64))


@given(n=st.integers(1, 200).filter(lambda n: n % 64), seed=seeds())
@PROPERTY
def test_padding_bits_cannot_change_the_result(n, seed):
    """Padding is the same in both operands, so XOR is 0 there whatever the pad bits are."""
    rng = np.random.default_rng(seed)
    xw, ww = pack_words(signed_values(rng, (4, n))), pack_words(signed_values(rng, (3, n)))
    pad = np.uint64(((1 << 64) - 1) ^ ((1 << (n % 64)) - 1))                    # the last word's unused bits
    xw_set, ww_set = xw.copy(), ww.copy()
    xw_set[:, -1] |= pad
    ww_set[:, -1] |= pad
    np.testing.assert_array_equal(popcount_matmul(xw_set, ww_set, n), popcount_matmul(xw, ww, n))


# ---- the packed layer against BinaryLinear in binary eval mode -----------------------------

def layer_pair(rng, n, out, binarize_input, bias=True, unpack="load"):
    """A float BinaryLinear (eval, binary mode) with random weights and bias, and its packed twin."""
    layer = BinaryLinear(n, out, rng, bias=bias, binarize_input=binarize_input)
    layer.weight.data[...] = rng.uniform(-1, 1, (n, out))
    if bias:
        layer.bias.data[...] = rng.standard_normal(out)
    layer.eval()
    arrays = pack_model(layer)
    packed = PackedBinaryLinear(arrays["weight.bits"], arrays["weight.alpha"], n,
                                arrays.get("bias"), binarize_input, unpack)
    return layer, packed


@PROPERTY
@given(n=LENGTHS, out=st.integers(1, 9), lead=st.lists(st.integers(1, 4), min_size=1, max_size=2),
       bias=st.booleans(), seed=seeds())
def test_w1a1_packed_layer_matches_binary_linear(n, out, lead, bias, seed):
    rng = np.random.default_rng(seed)
    layer, packed = layer_pair(rng, n, out, binarize_input=True, bias=bias)
    x = signed_values(rng, (*lead, n))
    y = packed.forward(x)
    assert y.shape == (*lead, out) and y.dtype == np.float32
    np.testing.assert_allclose(y, layer.forward(x), rtol=1e-5, atol=1e-5)
    integer = w1a1_matmul(x, packed.words, np.ones(out, np.float32), n)          # alpha = 1: the integer part
    np.testing.assert_array_equal(integer, sign(x).astype(np.float64) @ sign(layer.weight.data).astype(np.float64))


@pytest.mark.parametrize("unpack", ["load", "call"])
@PROPERTY
@given(n=LENGTHS, out=st.integers(1, 9), lead=st.lists(st.integers(1, 4), min_size=1, max_size=2), seed=seeds())
def test_w1a32_packed_layer_equals_binary_linear(unpack, n, out, lead, seed):
    """Unpacked signs times alpha are the float model's W_b bit for bit, so the outputs are identical."""
    rng = np.random.default_rng(seed)
    layer, packed = layer_pair(rng, n, out, binarize_input=False, unpack=unpack)
    assert (packed.weight_b is None) == (unpack == "call")                       # "call" keeps only the bits
    x = rng.standard_normal((*lead, n)).astype(np.float32)
    np.testing.assert_array_equal(packed.forward(x), layer.forward(x))


def test_packed_layer_is_inference_only():
    rng = np.random.default_rng(0)
    _, packed = layer_pair(rng, 10, 3, binarize_input=True)
    with pytest.raises(NotImplementedError):
        packed.backward(np.ones((1, 3), np.float32))
    with pytest.raises(ValueError, match="unpack"):
        PackedBinaryLinear(packed.bits, packed.alpha, 10, unpack="never")


# ---- {0, 1} inputs: the FFN's second layer under W1A1 (DESIGN §1.5) -------------------------

@PROPERTY
@given(n=LENGTHS, rows=st.integers(1, 9), out=st.integers(1, 7), seed=seeds())
def test_step_matmul_is_the_exact_zero_one_dot_product(n, rows, out, seed):
    """[x > 0] . sign(W) = 2 popcount(a AND w) - popcount(a); a ReLU's zeros count as 0, not +1."""
    rng = np.random.default_rng(seed)
    x, W = np.maximum(signed_values(rng, (rows, n)), 0), signed_values(rng, (n, out))
    y = step_matmul(x, as_words(pack_signs(W, axis=0)), np.ones(out, np.float32), n)
    np.testing.assert_array_equal(y, (x > 0).astype(np.int64) @ sign(W).astype(np.int64))


@PROPERTY
@given(n=LENGTHS, out=st.integers(1, 9), lead=st.lists(st.integers(1, 4), min_size=1, max_size=2), seed=seeds())
def test_step_packed_layer_equals_binary_linear(n, out, lead, seed):
    rng = np.random.default_rng(seed)
    layer = BinaryLinear(n, out, rng, binarize_input=True, input_levels="step")
    layer.weight.data[...] = rng.uniform(-1, 1, (n, out))
    layer.eval()
    arrays = pack_model(layer)
    packed = PackedBinaryLinear(arrays["weight.bits"], arrays["weight.alpha"], n, arrays["bias"], True,
                                input_levels="step")
    x = np.maximum(signed_values(rng, (*lead, n)), 0)
    np.testing.assert_array_equal(packed.forward(x), layer.forward(x))           # integers, then alpha: exact


def test_w1a1_feed_forward_depends_on_its_input():
    """sign(ReLU(h)) would be +1 everywhere, so the FFN's output would be the same for every input; with
    {0, 1} levels ([ReLU(h) > 0] = [h > 0]) it is not, and it is what those bits say."""
    rng = np.random.default_rng(0)
    ffn = BinaryFeedForward(8, rng, binarization=Binarization(binarize_input=True)).eval()
    x = rng.standard_normal((2, 5, 8)).astype(np.float32)
    y = ffn.forward(x)
    assert np.abs(y[0] - y[1]).max() > 0.1 and np.unique(y.reshape(-1, 8), axis=0).shape[0] > 1
    h = ffn.up.forward(x)
    W2 = ffn.down.weight.data
    expected = ((h > 0).astype(np.float32) @ sign(W2)) * np.abs(W2).mean(axis=0) + ffn.down.bias.data
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
