r"""sign(x) and the two ways of giving it a gradient (DESIGN §1).

Forward, in binary mode, is always the hard sign with sign(0) = +1, so every
value is one bit.  Its true derivative is 0 almost everywhere, which would stop
all learning; an *estimator* supplies a surrogate derivative instead:

* ``SecondOrderSign`` (BEExformer, the default): the derivative of the
  piecewise-quadratic approximation

  .. math::
      g(x) = \begin{cases} -1 & x < -1\\ 2x + x^2 & -1 \le x < 0\\
                           2x - x^2 & 0 \le x < 1\\ +1 & x \ge 1\end{cases}
      \qquad g'(x) = \max(0,\; 2 - 2|x|)

  a triangle around 0: weights about to flip get large gradients.

* ``StraightThroughSign`` (STE): the derivative of the hard tanh
  clip(x, -1, 1), i.e. 1 on |x| <= 1 and 0 outside.

Each estimator also exposes its smooth ``relaxed`` forward (g, or clip) whose
exact derivative *is* its ``grad``: layers use it in relaxed mode so that a
numerical gradient can check their backward.
"""
from typing import NamedTuple

import numpy as np

from beexnp.module import Module


def sign(x):
    """Hard sign with sign(0) = +1; output has x's dtype."""
    one = x.dtype.type(1)
    return np.where(x >= 0, one, -one)


class SecondOrderSign:
    """The second-order (piecewise quadratic) approximation g and its triangle g'."""

    name = "second_order"

    @staticmethod
    def relaxed(x):
        """g(x) = sign(x) * (2|x| - x^2) on |x| < 1, sign(x) outside."""
        a = np.minimum(np.abs(x), 1)                    # |x| clipped to [0, 1]
        return sign(x) * (2 * a - a * a)                # equals g(x) on all of R

    @staticmethod
    def grad(x):
        """g'(x) = max(0, 2 - 2|x|): the triangle."""
        return np.maximum(0, 2 - 2 * np.abs(x)).astype(x.dtype)


class StraightThroughSign:
    """The straight-through estimator: d sign/dx taken as 1 on |x| <= 1."""

    name = "ste"

    @staticmethod
    def relaxed(x):
        """The hard tanh clip(x, -1, 1), whose derivative is the STE."""
        return np.clip(x, -1, 1)

    @staticmethod
    def grad(x):
        return (np.abs(x) <= 1).astype(x.dtype)


ESTIMATORS = {e.name: e for e in (SecondOrderSign, StraightThroughSign)}


def get_estimator(name):
    """'second_order' or 'ste' -> the estimator class."""
    try:
        return ESTIMATORS[name]
    except KeyError:
        raise ValueError(f"unknown sign estimator {name!r}; choose one of {sorted(ESTIMATORS)}") from None


def binarize(x, estimator, relaxed):
    """sign(x) in binary mode, the estimator's smooth stand-in in relaxed mode."""
    return estimator.relaxed(x) if relaxed else sign(x)


LEVELS = ("sign", "step")           # a binarized activation: {-1, +1}, or {0, 1} for one that is >= 0


def binarize_activation(x, estimator, relaxed, levels="sign"):
    r"""The binarized input of a W1A1 layer (DESIGN §1.5), and the smooth stand-in in relaxed mode:

        levels="sign":  s(x) = sign(x) in {-1, +1}
        levels="step":  s(x) = [x > 0] in {0, 1}            BiT's levels for a non-negative input (ReLU's)
                        relaxed: (stand-in(x) + 1) / 2,     s'(x) = estimator'(x) / 2

    ``step`` is strict, so a ReLU's zeros stay 0 (sign(0) = +1 would make them all +1)."""
    if levels == "sign":
        return binarize(x, estimator, relaxed)
    if relaxed:
        return (estimator.relaxed(x) + 1) / 2
    return (x > 0).astype(x.dtype)


def activation_grad(x, estimator, levels="sign"):
    """s'(x) of ``binarize_activation``: the estimator's derivative (halved for the {0, 1} levels)."""
    g = estimator.grad(x)
    return g if levels == "sign" else g / 2


class BinarizedWeight(NamedTuple):
    r"""What ``binarize_weight`` returns: W_b = alpha * s, and what its backward needs.

    Wb         alpha * s, the weight the forward multiplies by     same shape as W
    W          the latent real weight
    s          sign(W) in {-1, +1} (relaxed mode: the estimator's smooth stand-in)
    alpha      mean |W| along ``axis``, that axis kept with length 1
    estimator  whose derivative stands in for sign's
    axis       the axis alpha averages over
    """

    Wb: np.ndarray
    W: np.ndarray
    s: np.ndarray
    alpha: np.ndarray
    estimator: type
    axis: int


def binarize_weight(W, estimator, relaxed, axis=0):
    r"""Magnitude-aware binarization: :math:`W_b = \alpha \cdot \mathrm{sign}(W)`.

    ``alpha`` is the mean of |W| along ``axis`` (for a (in, out) matrix and
    axis=0: one scale per output unit, alpha_j = mean_i |W_ij|).  Returns a
    ``BinarizedWeight``; ``binarize_weight_backward(dW_b, it)`` gives dL/dW.
    """
    s = binarize(W, estimator, relaxed)                             # (in, out) in {-1,+1} (or g(W))
    alpha = np.mean(np.abs(W), axis=axis, keepdims=True)            # (1, out)
    return BinarizedWeight(alpha * s, W, s, alpha, estimator, axis)  # W_b = alpha * s


def binarize_weight_backward(dWb, w, alpha_grad=True):
    r"""dL/dW for :math:`W_b = \alpha \odot s(W)`, through both factors; ``w``: the ``BinarizedWeight``.

    .. math::
        \frac{\partial L}{\partial W_{ij}} = \alpha_j\, s'(W_{ij})\, \frac{\partial L}{\partial W_{b,ij}}
          + \underbrace{\Big(\sum_k \frac{\partial L}{\partial W_{b,kj}} s_{kj}\Big)}_{\partial L/\partial\alpha_j}
            \frac{\mathrm{sign}(W_{ij})}{n}

    with s' the estimator's derivative and n the number of entries averaged
    into alpha.  ``alpha_grad=False`` drops the second term (Bi-Real Net,
    BiBERT and larq treat alpha as a constant).
    """
    dW = w.alpha * w.estimator.grad(w.W) * dWb                      # term 1, through sign: alpha_j s'(W_ij) dW_b,ij
    if alpha_grad:
        dalpha = np.sum(dWb * w.s, axis=w.axis, keepdims=True)       # dL/dalpha_j = sum_k dW_b,kj s_kj    (1, out)
        dW += dalpha * np.sign(w.W) / w.W.shape[w.axis]             # term 2, through alpha = mean|W|
    return dW


class Sign(Module):
    r"""y = sign(x) (relaxed: the estimator's smooth stand-in);  dx = dy * s'(x)

    The binarized activation of W1A1 layers, as a layer of its own."""

    def __init__(self, estimator="second_order"):
        self.estimator = get_estimator(estimator)

    def forward(self, x):
        self.x = x
        return binarize(x, self.estimator, self.relaxed)

    def backward(self, dy):
        return dy * self.estimator.grad(self.x)
