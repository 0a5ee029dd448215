r"""Elementwise nonlinearities and the softmax, each a module with its backward.

The plain functions (``sigmoid``, ``softmax``, ``log_softmax``) are also used by
the losses and the early-exit criteria; the classes wrap them for the chain rule.
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


class Sigmoid(Module):
    r"""y = 1 / (1 + e^{-x});   dy/dx = y (1 - y)"""

    def forward(self, x):
        self.y = sigmoid(x)
        return self.y

    def backward(self, dy):
        return dy * self.y * (1 - self.y)


class Tanh(Module):
    r"""y = tanh x;   dy/dx = 1 - y^2"""

    def forward(self, x):
        self.y = np.tanh(x)
        return self.y

    def backward(self, dy):
        return dy * (1 - self.y * self.y)


class ReLU(Module):
    r"""y = max(0, x);   dy/dx = [x > 0]"""

    def forward(self, x):
        self.positive = x > 0
        return np.where(self.positive, x, 0).astype(x.dtype)

    def backward(self, dy):
        return dy * self.positive


class Softmax(Module):
    r"""p = softmax(z) on the last axis;   dz = p * (dp - sum(dp * p))"""

    def forward(self, z):
        self.p = softmax(z)
        return self.p

    def backward(self, dp):
        p = self.p
        return p * (dp - np.sum(dp * p, axis=-1, keepdims=True))
