r"""Nonlinearities: sigmoid, softmax (and its backward), log-softmax, ReLU.

Plain functions, shared by the layers that use them (the SLFN's gates, the
attention's softmax, the losses, the exit criteria), which write their own
chain rule; ``ReLU`` is a module of its own (the feed-forward ablation).
"""
import numpy as np

from beexnp.module import Module


def sigmoid(x):
    """1 / (1 + e^-x), computed as (1 + tanh(x/2)) / 2: the same function, no overflow."""
    y = np.tanh(0.5 * x)
    y += 1
    y *= 0.5
    return y


def log_softmax(z, axis=-1):
    """log p = z - logsumexp(z): finite even where p underflows to 0."""
    z = z - np.max(z, axis=axis, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def softmax(z, axis=-1):
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def softmax_backward(p, dp):
    r"""dz from dp for p = softmax(z) on the last axis:  dz = p * (dp - sum_j dp_j p_j)

    p, dp (..., K) -> dz (..., K), a new array."""
    return p * (dp - np.einsum("...j,...j->...", dp, p)[..., None])


class ReLU(Module):
    r"""y = max(0, x);   dy/dx = [x > 0]"""

    def forward(self, x):
        self.positive = x > 0
        return np.where(self.positive, x, 0).astype(x.dtype)

    def backward(self, dy):
        return dy * self.positive
