r"""The input of the model: token embeddings and sinusoidal positions (DESIGN §2).

The paper's pipeline is *token embedding + position encoding -> concatenation*:
a token vector of width d_tok is joined by a fixed sinusoidal code of width
d_pos, giving d = d_tok + d_pos.  Adding the code (d_pos = d_tok) is an option.
"""
import numpy as np

from beexnp.module import Module, Parameter
from beexnp.sign import binarize_weight, binarize_weight_backward, get_estimator


class Embedding(Module):
    r"""e[b, t] = E[ids[b, t]]            ids (B, T) int, E (V, d), e (B, T, d)

    The padding row (id ``padding_idx``) starts at zero and gets no gradient.
    With ``binarize=True`` each row is stored as one bit per entry and a real
    scale (DESIGN §2.3): E_b[r] = alpha_r sign(E[r]), alpha_r = mean_k |E_rk|.
    Since alpha is per row, binarizing only the looked-up rows is the same thing;
    ``alpha_grad=False`` treats alpha as a constant in the backward (DESIGN §1.2).
    """

    def __init__(self, vocab_size, dim, rng, padding_idx=0, binarize=False,
                 estimator="second_order", alpha_grad=True, dtype=np.float32):
        E = rng.uniform(-0.5, 0.5, size=(vocab_size, dim)).astype(dtype)
        if padding_idx is not None:
            E[padding_idx] = 0
        self.weight = Parameter(E, binary=binarize)
        self.padding_idx = padding_idx
        self.binarize = binarize
        self.alpha_grad = alpha_grad
        self.estimator = get_estimator(estimator)

    def forward(self, ids):
        if not np.issubdtype(np.asarray(ids).dtype, np.integer):
            raise TypeError(f"Embedding expects integer token ids, got {np.asarray(ids).dtype}")
        self.ids = ids
        rows = self.weight.data[ids]                                       # e = E[ids]     (B, T, d)
        if not self.binarize:
            return rows
        self.rows = binarize_weight(rows, self.estimator, self.relaxed, axis=-1)   # e = alpha_r sign(E[r])
        return self.rows.Wb

    def backward(self, de):
        if self.binarize:
            de = binarize_weight_backward(de, self.rows, self.alpha_grad)  # (B, T, d) to the latent rows
        d = de.shape[-1]
        np.add.at(self.weight.grad, self.ids.reshape(-1), de.reshape(-1, d))    # dE[r] += de[b, t] where ids[b, t] = r
        if self.padding_idx is not None:
            self.weight.grad[self.padding_idx] = 0
        return None                                                        # ids have no gradient


def sinusoidal_table(length, dim):
    r"""PE[p, 2i] = sin(p / 10000^{2i/dim}),  PE[p, 2i+1] = cos(p / 10000^{2i/dim})      (length, dim)"""
    pos = np.arange(length)[:, None]                                       # (length, 1)
    freq = 10000.0 ** (-(np.arange(dim) // 2 * 2) / dim)                   # (dim,)
    angle = pos * freq                                                     # (length, dim)
    return np.where(np.arange(dim) % 2 == 0, np.sin(angle), np.cos(angle))


class SinusoidalPositions(Module):
    r"""Fixed position code joined to the token vectors (no parameters).

    concat (default): out = [x, PE[:T]]     x (B, T, d_tok) -> (B, T, d_tok + d_pos)
    add:              out = x + PE[:T]      x (B, T, d)     -> (B, T, d)
    """

    def __init__(self, dim, mode="concat", max_len=512):
        if mode not in ("concat", "add"):
            raise ValueError(f"position mode must be 'concat' or 'add', got {mode!r}")
        self.dim, self.mode = dim, mode
        self.table = sinusoidal_table(max_len, dim)                        # (max_len, d_pos) float64

    def forward(self, x):
        B, T, d = x.shape
        if T > len(self.table):
            self.table = sinusoidal_table(T, self.dim)
        pe = self.table[:T].astype(x.dtype)                                # (T, d_pos)
        self.d_in = d
        if self.mode == "add":
            if d != self.dim:
                raise ValueError(f"add mode needs token width == position width, got {d} and {self.dim}")
            return x + pe
        return np.concatenate([x, np.broadcast_to(pe, (B, T, self.dim))], axis=-1)

    def backward(self, dout):
        return dout if self.mode == "add" else dout[..., :self.d_in]
