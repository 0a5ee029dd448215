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

from beexnp.activations import softmax, softmax_backward
from beexnp.linear import Binarization, make_linear
from beexnp.module import Module


def masked_softmax(S, key_mask):
    r"""softmax over the last axis, counting only keys with key_mask = 1.

    S (..., T_q, T_k), key_mask broadcastable to S with 1 for real keys.
    A padded key's score becomes -inf, and exp(-inf) is exactly 0.
    Every row must have at least one real key.  Returns a new array."""
    return softmax(np.where(key_mask > 0, S, -np.inf))


class BinaryMultiHeadAttention(Module):
    r"""out = concat_h softmax(Q_h K_h^T / sqrt(d_h) | mask) V_h  Wo_b + bo

    x (B, T, d), mask (B, T) with 1 for real tokens -> out (B, T, d).
    The projections binarize as ``binarization`` says; ``binary=False`` gives the
    full-precision twin (real Linear layers).

    After a forward: ``q`` (the queries already scaled by ``scale`` = 1/sqrt(d_h)), ``k``, ``v``
    (B, h, T, d_h) and the attention weights ``P`` (B, h, T, T)."""

    def __init__(self, dim, heads, rng, binary=True, binarization=Binarization(), dtype=np.float32):
        if dim % heads:
            raise ValueError(f"model width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = make_linear(dim, 3 * dim, rng, binary, binarization, dtype)   # Wq | Wk | Wv
        self.out = make_linear(dim, dim, rng, binary, binarization, dtype)       # Wo

    def split_heads(self, x):
        """(B, T, d) -> (B, h, T, d_h)"""
        B, T, d = x.shape
        return x.reshape(B, T, self.heads, d // self.heads).transpose(0, 2, 1, 3)

    def merge_heads(self, x):
        """(B, h, T, d_h) -> (B, T, d): the heads side by side"""
        B, h, T, dh = x.shape
        return x.transpose(0, 2, 1, 3).reshape(B, T, h * dh)

    def forward(self, x, mask):
        dh = x.shape[-1] // self.heads
        self.scale = float(1 / np.sqrt(dh))
        Q, K, V = np.split(self.qkv.forward(x), 3, axis=-1)                     # (B, T, d) each
        self.q = self.split_heads(Q) * self.scale                                # (B, h, T, dh), scaled once
        self.k, self.v = self.split_heads(K), self.split_heads(V)                # (B, h, T, dh)
        S = self.q @ self.k.transpose(0, 1, 3, 2)                                # (B, h, T, T) scores
        self.P = masked_softmax(S, mask[:, None, None, :])                      # (B, h, T, T)
        A = self.P @ self.v                                                      # (B, h, T, dh)
        return self.out.forward(self.merge_heads(A))                            # (B, T, d)

    def backward(self, dout):
        dA = self.split_heads(self.out.backward(dout))                           # (B, h, T, dh)
        dV = self.P.transpose(0, 1, 3, 2) @ dA                                   # A = P V:   dV = P^T dA
        dP = dA @ self.v.transpose(0, 1, 3, 2)                                   #            dP = dA V^T
        dS = softmax_backward(self.P, dP)                                        # P = softmax(S)
        dq = dS @ self.k                                                         # S = q K^T: dq = dS K
        dK = dS.transpose(0, 1, 3, 2) @ self.q                                   #            dK = dS^T q
        dQ = dq * self.scale                                                     # q = Q * scale
        dQKV = np.concatenate([self.merge_heads(g) for g in (dQ, dK, dV)], axis=-1)   # (B, T, 3d)
        return self.qkv.backward(dQKV)                                           # (B, T, d)
