r"""One-bit arithmetic: sign bits packed 8 per byte / 64 per word, and the two
binary matrix products of a packed BinaryLinear (DESIGN §1, §7).

A binarized matrix W (in, out) is alpha_j * s_ij with s = sign(W) in {-1, +1}.
A sign is one bit:

    bit = 1  <->  s = +1  (W >= 0: sign(0) = +1, as in beexnp.sign)
    bit = 0  <->  s = -1

**Layout.** Bits are packed along the *reduction* axis (the input axis of a
linear layer, the width of an embedding row), so each output unit owns one
contiguous row of bits: W (in, out) -> bits (out, ceil(in/8)) uint8.

**Bit order** (``BITORDER = "little"``): input index i is bit (i % 8) of byte
i // 8, i.e. byte k holds inputs 8k .. 8k+7 with input 8k in the lowest bit.
Viewing 8 bytes as one little-endian uint64 word (``as_words``) then puts
input i at bit (i % 64) of word i // 64, on any machine.

**Padding.** When the length n is not a multiple of 8 (bytes) or 64 (words),
the row is filled up with 0 bits.  Every operand (weights and activations) is
padded the same way, so in a padded position both bits are 0, their XOR is 0,
and popcount never sees them; the formula below uses the true n.  Padding can
therefore never change a result (tests/test_xnor.py checks it).

**W1A1** (binary weights and binary activations).  For a, w in {-1,+1}^n,

    a . w = (#agreeing) - (#disagreeing) = n - 2 * popcount(a_bits XOR w_bits)

(the agreeing positions are the 1 bits of the XNOR, and 2 popcount(XNOR) - n
is the same number; XOR is used because its padding bits stay 0), so 64
multiply-adds become one XOR and one popcount (``np.bitwise_count``, NumPy >= 2).
The layer's output is that integer times the output unit's alpha:  y_rj = alpha_j * (n - 2 popcount(x_r XOR w_j)) + b_j.
For an input binarized to {0, 1} (a ReLU's output, DESIGN §1.5), a in {0, 1}^n,

    a . w = (#ones of a where w = +1) - (#ones of a where w = -1) = 2 * popcount(a_bits AND w_bits) - popcount(a_bits)

(``step_matmul``; padding bits of a are 0, so they count in neither term).

**W1A32** (binary weights, real activations): there is no popcount trick for a
real x, so the signs are unpacked to +-1 and multiplied by alpha, giving the
float W_b = alpha * s bit for bit as the float model builds it, then one BLAS
product.  When to unpack is a trade-off (see ``beexnp.packed.PackedBinaryLinear``):
once at load (fast, but RAM holds 32-bit weights again) or on every call (RAM
holds 1 bit per weight; each call pays an unpack of in x out bits, small next to
the rows x in x out product when many tokens are batched).
"""
import numpy as np

from beexnp.linear import affine_forward

BITORDER = "little"
WORD = np.dtype("<u8")           # little-endian uint64: input i -> bit i % 64 of word i // 64


def pack_signs(x, axis=-1):
    r"""Sign bits of ``x`` along ``axis``, 8 per byte:  bit = [x >= 0].

    x (..., n, ...) -> uint8 (..., ceil(n/8)) with ``axis`` moved last.
    For a weight W (in, out) and axis=0: (out, ceil(in/8)), one row per output unit.
    Padding bits (past n) are 0."""
    bits = np.moveaxis(np.asarray(x) >= 0, axis, -1)                  # (..., n) bool, 1 = +1
    return np.packbits(bits, axis=-1, bitorder=BITORDER)              # (..., ceil(n/8))


def unpack_signs(bits, n, dtype=np.float32):
    r"""The +-1 values back from packed bytes:  s = 2 * bit - 1.       (..., ceil(n/8)) -> (..., n)"""
    b = np.unpackbits(bits, axis=-1, count=n, bitorder=BITORDER)     # (..., n) in {0, 1}
    return 2 * b.astype(dtype) - 1                                     # (..., n) in {-1, +1}


def as_words(bits):
    r"""Packed bytes -> uint64 words, zero-padded to a multiple of 8 bytes.   (..., nbytes) -> (..., ceil(nbytes/8))"""
    pad = -bits.shape[-1] % 8                                          # zero bytes to add
    padded = np.pad(bits, [(0, 0)] * (bits.ndim - 1) + [(0, pad)]) if pad else bits
    return np.ascontiguousarray(padded).view(WORD)                     # 8 bytes -> one word


def pack_words(x):
    """Sign bits of ``x`` along its last axis as uint64 words.        (..., n) -> (..., ceil(n/64))"""
    return as_words(pack_signs(x, axis=-1))


def popcount_matmul(x_words, w_words, n):
    r"""S_rj = sum_i sign(x_ri) sign(W_ij) = n - 2 * sum_k popcount(x_words[r, k] XOR w_words[j, k]).

    x_words (rows, K) uint64, w_words (out, K) uint64, both packed from length n
    (K = ceil(n/64)) -> (rows, out) int32, the exact integer +-1 dot products.

    The loop runs over the K words of the reduction axis (K = 2 for n = 128), like
    the k-blocking of a matmul kernel; each step is one vectorized (rows, out)
    XOR + popcount.  (Broadcasting all K at once, then summing an axis of length
    K, is several times slower: NumPy reduces a short last axis poorly.)
    Each word costs three passes over (rows, out) arrays in memory (XOR into
    8-byte words, popcount into bytes, add into int32), where a BLAS kernel keeps
    its tiles in registers: this is why it loses to float32 matmul in NumPy
    (benchmarks/bench_packed.py measures by how much)."""
    return n - 2 * popcount_products(x_words, w_words, np.bitwise_xor)     # agreeing - disagreeing


def popcount_products(x_words, w_words, op):
    r"""C_rj = sum_k popcount(op(x_words[r, k], w_words[j, k])): (rows, K), (out, K) uint64 -> (rows, out) int32.

    ``op`` is np.bitwise_xor (signs that differ, ``popcount_matmul``) or np.bitwise_and (ones of a {0, 1}
    input where the weight is +1, ``step_matmul``)."""
    rows, K = x_words.shape
    w_cols = np.ascontiguousarray(w_words.T)                           # (K, out): word k of every unit, contiguous
    total = np.zeros((rows, w_cols.shape[1]), np.int32)               # (rows, out) popcount accumulator
    bits = np.empty(total.shape, WORD)                                 # (rows, out) scratch
    count = np.empty(total.shape, np.uint8)                            # (rows, out) scratch
    for k in range(K):
        op(x_words[:, k, None], w_cols[k], out=bits)                   # (rows, 1) op (out,)
        np.bitwise_count(bits, out=count)                              # among these 64 inputs
        total += count
    return total


def step_matmul(x, w_words, alpha, n):
    r"""y = ([x > 0] @ sign(W)) * alpha: {0, 1} inputs (DESIGN §1.5), the integer part by AND-popcount:

        a . w = 2 * popcount(a AND w) - popcount(a)        a = [x > 0] packed, w the sign bits

    x (..., n) real (only x > 0 matters), w_words (out, K) uint64, alpha (out,) -> (..., out)."""
    ones = np.packbits(x.reshape(-1, n) > 0, axis=-1, bitorder=BITORDER)          # (rows, ceil(n/8))
    x_words = as_words(ones)                                                        # (rows, K)
    S = 2 * popcount_products(x_words, w_words, np.bitwise_and) \
        - np.bitwise_count(x_words).sum(axis=1, dtype=np.int32)[:, None]           # (rows, out) int32, exact
    y = S.astype(alpha.dtype) * alpha
    return y.reshape(*x.shape[:-1], len(alpha))


def w1a1_matmul(x, w_words, alpha, n):
    r"""y = (sign(x) @ sign(W)) * alpha, the integer part by XNOR-popcount.

    x (..., n) real (only its signs are used), w_words (out, K) uint64,
    alpha (out,) -> (..., out) in alpha's dtype."""
    x_words = pack_words(x.reshape(-1, n))                             # (rows, K)
    S = popcount_matmul(x_words, w_words, n)                           # (rows, out) int32, exact
    y = S.astype(alpha.dtype) * alpha                                  # int * alpha: exact below 2^24
    return y.reshape(*x.shape[:-1], len(alpha))                        # (..., out)


def binary_weight(bits, alpha, n):
    r"""W_b = alpha * s as a float (in, out) matrix from its packed rows.

    bits (out, ceil(n/8)) uint8, alpha (out,) -> (n, out): the same numbers as
    ``alpha * sign(W)`` in the float model (each entry is exactly +-alpha_j),
    in the same row-major layout: BLAS may sum in another order for a transposed
    (column-major) operand, and then the products would differ in the last bit."""
    signs = np.ascontiguousarray(unpack_signs(bits, n, alpha.dtype).T)  # (n, out) row-major
    return alpha * signs                                               # (out,) * (n, out)


def w1a32_matmul(x, bits, alpha, n):
    r"""y = x @ (alpha * sign(W)) with the signs unpacked from ``bits`` for this call.

    x (..., n) real, bits (out, ceil(n/8)), alpha (out,) -> (..., out)."""
    return affine_forward(x, binary_weight(bits, alpha, n), None)       # (..., n) @ (n, out)
