r"""Affine layers: the real ``Linear`` and the 1-bit ``BinaryLinear`` (DESIGN §1).

Both act on the last axis of an input of any leading shape, (..., in) -> (..., out),
and are computed as one matrix product on the (rows, in) view of the input.
"""
from dataclasses import dataclass

import numpy as np

from beexnp.module import Module, Parameter
from beexnp.sign import (LEVELS, activation_grad, binarize_activation, binarize_weight, binarize_weight_backward,
                         get_estimator)


def init_weight(rng, n_in, n_out, dtype):
    """Uniform in +-1/sqrt(n_in): unit-scale outputs, and inside [-1, 1] where g' lives."""
    bound = 1.0 / np.sqrt(n_in)
    return rng.uniform(-bound, bound, size=(n_in, n_out)).astype(dtype)


def affine_forward(x, W, b):
    """y = x W + b on the last axis.        x (..., in), W (in, out), b (out,) or None"""
    y = (x.reshape(-1, x.shape[-1]) @ W).reshape(*x.shape[:-1], W.shape[1])  # one 2-D product: (..., out)
    if b is not None:
        y += b
    return y


def affine_backward(dy, x, W):
    """Gradients of y = x W + b: returns (dx, dW, db)."""
    x2 = x.reshape(-1, x.shape[-1])                                # (rows, in)   a view, no copy
    dy2 = dy.reshape(-1, dy.shape[-1])                             # (rows, out)
    dx = (dy2 @ W.T).reshape(x.shape)                              # (..., in)
    return dx, x2.T @ dy2, dy2.sum(axis=0)                         # (..., in), (in, out), (out,)


class Linear(Module):
    r"""y = x W + b            x (..., in), W (in, out), b (out,)"""

    def __init__(self, n_in, n_out, rng, bias=True, dtype=np.float32):
        self.weight = Parameter(init_weight(rng, n_in, n_out, dtype))
        self.bias = Parameter(np.zeros(n_out, dtype)) if bias else None

    def effective_weight(self):
        return self.weight.data

    def forward(self, x):
        self.x = x
        return affine_forward(x, self.weight.data, None if self.bias is None else self.bias.data)

    def backward(self, dy):
        dx, dW, db = affine_backward(dy, self.x, self.weight.data)
        self.weight.grad += dW
        if self.bias is not None:
            self.bias.grad += db
        return dx


class BinaryLinear(Module):
    r"""y = s(x) W_b + b,   W_b = alpha * sign(W),   alpha_j = mean_i |W_ij|      (DESIGN §1)

    x (..., in), latent W (in, out), alpha (out,), b (out,).  s(x) = x by default
    (W1A32); with ``binarize_input=True`` s(x) = sign(x) (W1A1), or, with ``input_levels="step"``
    for an input that is never negative (a ReLU's output), s(x) = [x > 0] in {0, 1}.  The gradient
    reaches W through sign (via the ``estimator``'s surrogate derivative) and, unless
    ``alpha_grad=False``, through alpha.  In relaxed mode sign is replaced by the
    estimator's smooth stand-in, so the backward is the exact derivative.

    What a forward keeps for the backward:

        self.x    the input x                                            (..., in)
        self.xb   s(x), the input as multiplied (x itself in W1A32)      (..., in)
        self.w    the ``BinarizedWeight``: w.Wb = w.alpha * w.s, and the latent W

    In eval mode the weights do not change, so W_b is computed once and kept in
    ``self.eval_weight``; ``clear_weight_cache`` drops it (every train()/eval() switch
    and load_state_dict call it).

    Because alpha is one scale per *output* unit, several BinaryLinear layers that
    read the same input can be fused into one with their outputs side by side
    (Q, K, V; the SLFN's four gates) without changing the math.
    """

    def __init__(self, n_in, n_out, rng, bias=True, estimator="second_order",
                 alpha_grad=True, binarize_input=False, input_levels="sign", dtype=np.float32):
        if input_levels not in LEVELS:
            raise ValueError(f"input_levels must be one of {LEVELS}, got {input_levels!r}")
        self.weight = Parameter(init_weight(rng, n_in, n_out, dtype), binary=True)
        self.bias = Parameter(np.zeros(n_out, dtype)) if bias else None
        self.estimator = get_estimator(estimator)
        self.alpha_grad = alpha_grad
        self.binarize_input = binarize_input
        self.input_levels = input_levels
        self.eval_weight = None

    def binarized_weight(self):
        """W_b = alpha * sign(W) as a ``BinarizedWeight``: computed anew in training and in relaxed mode,
        once in eval mode (kept in ``self.eval_weight``)."""
        if self.training or self.relaxed:
            return binarize_weight(self.weight.data, self.estimator, self.relaxed)
        if self.eval_weight is None:
            self.eval_weight = binarize_weight(self.weight.data, self.estimator, self.relaxed)
        return self.eval_weight

    def clear_weight_cache(self):
        self.eval_weight = None

    def effective_weight(self):
        """W_b = alpha * sign(W) as the forward uses it (in binary mode: exactly +-alpha_j)."""
        return self.binarized_weight().Wb

    def forward(self, x):
        self.w = self.binarized_weight()                                # W_b = alpha * sign(W)     (in, out)
        b = None if self.bias is None else self.bias.data
        self.x = x
        if not self.binarize_input:                                     # W1A32:  y = x W_b + b
            self.xb = x
            return affine_forward(x, self.w.Wb, b)
        # W1A1:  y = (s(x) sign(W)) alpha + b, the order the XNOR-popcount path computes it in:
        # the +-1 (or 0/1) dot products are exact integers, then one scale per output unit.
        self.xb = binarize_activation(x, self.estimator, self.relaxed, self.input_levels)     # s(x)
        y = affine_forward(self.xb, self.w.s, None) * self.w.alpha[0]
        return y if b is None else y + b

    def backward(self, dy):
        dxb, dWb, db = affine_backward(dy, self.xb, self.w.Wb)                       # y = s(x) W_b + b
        self.weight.grad += binarize_weight_backward(dWb, self.w, self.alpha_grad)   # W_b = alpha sign(W)
        if self.bias is not None:
            self.bias.grad += db
        if not self.binarize_input:
            return dxb
        return dxb * activation_grad(self.x, self.estimator, self.input_levels)     # through s(x)


@dataclass(frozen=True)
class Binarization:
    """How the binarized layers of a block binarize: what the model passes down to every ``BinaryLinear``.

    estimator       sign's surrogate gradient: "second_order" (BEExformer's g') or "ste"   (DESIGN §1.1)
    alpha_grad      whether dL/dW also flows through alpha = mean|W| (False: Bi-Real Net, BiBERT, larq;
                    DESIGN §1.2)
    binarize_input  W1A1: each layer binarizes its input too, s(x) in place of x          (DESIGN §1.5)
    input_levels    with binarize_input, s(x) = sign(x) in {-1, +1} ("sign"), or [x > 0] in {0, 1}
                    ("step", for an input that is never negative: the feed-forward's ReLU output)

    Whether a layer is binarized at all (``binary``; False: the full-precision twin) and its float
    type (``dtype``) are keywords of their own, as they are for every layer.
    """

    estimator: str = "second_order"
    alpha_grad: bool = True
    binarize_input: bool = False
    input_levels: str = "sign"


def make_linear(n_in, n_out, rng, binary, binarization, dtype):
    """A BinaryLinear that binarizes as ``binarization`` says, or (binary=False) the real Linear of the
    full-precision twin."""
    if not binary:
        return Linear(n_in, n_out, rng, dtype=dtype)
    b = binarization
    return BinaryLinear(n_in, n_out, rng, estimator=b.estimator, alpha_grad=b.alpha_grad,
                        binarize_input=b.binarize_input, input_levels=b.input_levels, dtype=dtype)
