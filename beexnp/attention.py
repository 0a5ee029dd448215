r"""Binarized multi-head self-attention with a padding mask (DESIGN §3).

    Q = X Wq_b + bq,  K = X Wk_b + bk,  V = X Wv_b + bv
    S = Q_h K_h^T / sqrt(d_h),  padded keys removed
    A = softmax(S) V_h,  heads concatenated,  out = A Wo_b + bo

The three projections read the same X and have one alpha per output unit, so
they are one ``BinaryLinear(d, 3d)``: same math, one matrix product.  Scores
and softmax stay real.  A padded key gets exactly zero weight: its score is
set to -inf before the softmax, and exp(-inf) is exactly 0.
"""
import numpy as np

from beexnp.activations import softmax_backward
from beexnp.linear import make_linear
from beexnp.module import Module


def masked_softmax(S, key_mask):
    r"""softmax over the last axis, counting only keys with key_mask = 1.  Overwrites S.

    S (..., T_q, T_k), key_mask broadcastable to S with 1 for real keys.
    A padded key's score becomes -inf, and exp(-inf) is exactly 0.
    Every row must have at least one real key."""
    S += np.where(key_mask > 0, 0, -np.inf).astype(S.dtype)               # padded keys: -inf
    S -= S.max(axis=-1, keepdims=True)                                     # largest score 0: no overflow
    np.exp(S, out=S)
    S /= S.sum(axis=-1, keepdims=True)
    return S


class BinaryMultiHeadAttention(Module):
    r"""out = concat_h softmax(Q_h K_h^T / sqrt(d_h) | mask) V_h  Wo_b + bo

    x (B, T, d), mask (B, T) with 1 for real tokens -> out (B, T, d).
    ``binary=False`` gives the full-precision twin (real Linear layers)."""

    def __init__(self, dim, heads, rng, binary=True, **binary_options):
        if dim % heads:
            raise ValueError(f"model width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = make_linear(dim, 3 * dim, rng, binary, **binary_options)   # Wq | Wk | Wv
        self.out = make_linear(dim, dim, rng, binary, **binary_options)       # Wo

    def forward(self, x, mask):
        B, T, d = x.shape
        h, dh = self.heads, d // self.heads
        qkv = self.qkv.forward(x).reshape(B, T, 3, h, dh).transpose(2, 0, 3, 1, 4)  # (3, B, h, T, dh)
        self.scale = float(1 / np.sqrt(dh))
        q = qkv[0] * self.scale                                                  # (B, h, T, dh), scaled once
        k, v = qkv[1], qkv[2]                                                    # (B, h, T, dh) each
        P = masked_softmax(q @ k.transpose(0, 1, 3, 2), mask[:, None, None, :])  # (B, h, T, T)
        A = P @ v                                                               # (B, h, T, dh)
        self.q, self.k, self.v, self.P = q, k, v, P
        return self.out.forward(A.transpose(0, 2, 1, 3).reshape(B, T, d))      # (B, T, d)

    def backward(self, dout):
        B, T, d = dout.shape
        h, dh = self.heads, d // self.heads
        dA = self.out.backward(dout).reshape(B, T, h, dh).transpose(0, 2, 1, 3)  # (B, h, T, dh)
        P = self.P
        dqkv = np.empty((B, T, 3, h, dh), dout.dtype)                            # filled through the view below
        dq, dk, dv = dqkv.transpose(2, 0, 3, 1, 4)                               # (B, h, T, dh) views
        np.matmul(P.transpose(0, 1, 3, 2), dA, out=dv)                           # dV = P^T dA
        dS = softmax_backward(P, dA @ self.v.transpose(0, 1, 3, 2))               # dP (B, h, T, T) -> dS
        np.matmul(dS, self.k, out=dq)                                            # d(q scaled) = dS K
        dq *= self.scale                                                         # through the scale
        np.matmul(dS.transpose(0, 1, 3, 2), self.q, out=dk)                      # dK = dS^T (q scaled)
        return self.qkv.backward(dqkv.reshape(B, T, 3 * d))                      # (B, T, d)
