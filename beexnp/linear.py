r"""Affine layers: the real ``Linear`` and the 1-bit ``BinaryLinear`` (DESIGN §1).

Both act on the last axis of an input of any leading shape, (..., in) -> (..., out),
and are computed as one matrix product on the (rows, in) view of the input.
"""
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
    r"""y = s(x) (alpha * sign(W)) + b,   alpha_j = mean_i |W_ij|      (DESIGN §1)

    x (..., in), latent W (in, out), alpha (out,), b (out,).  s(x) = x by default
    (W1A32); with ``binarize_input=True`` s(x) = sign(x) (W1A1), or, with ``input_levels="step"``
    for an input that is never negative (a ReLU's output), s(x) = [x > 0] in {0, 1}.  The gradient
    reaches W through sign (via the estimator's surrogate derivative) and, unless
    ``alpha_grad=False``, through alpha.  In relaxed mode sign is replaced by the
    estimator's smooth stand-in, so the backward is the exact derivative.

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
        self._eval_weight = None

    def effective_weight(self):
        """alpha * sign(W) as the forward uses it (in binary mode: exactly +-alpha_j)."""
        return self.binarized_weight()[0]

    def binarized_weight(self):
        """(W_b, cache).  In eval mode the weights do not change, so W_b is computed once
        and kept until the next train()/eval() switch or load_state_dict (``forget``)."""
        if self.training or self.relaxed:
            return binarize_weight(self.weight.data, self.estimator, self.relaxed)
        if self._eval_weight is None:
            self._eval_weight = binarize_weight(self.weight.data, self.estimator, self.relaxed)
        return self._eval_weight

    def forget(self):
        self._eval_weight = None

    def forward(self, x):
        self.Wb, self.w_cache = self.binarized_weight()                                        # (in, out)
        self.x = x
        bias = None if self.bias is None else self.bias.data
        if not self.binarize_input:
            self.xb = x
            return affine_forward(x, self.Wb, bias)                                             # (..., out)
        # W1A1: (s(x) sign(W)) alpha, the same function in the order the XNOR-popcount
        # path computes it: the +-1 (or 0/1) dot products are exact integers, then one scale per unit.
        self.xb = binarize_activation(x, self.estimator, self.relaxed, self.input_levels)      # (..., in)
        _, s, alpha, _, _ = self.w_cache
        y = affine_forward(self.xb, s, None)                                                    # (..., out)
        y *= alpha[0]
        return y if bias is None else y + bias

    def backward(self, dy):
        dx, dWb, db = affine_backward(dy, self.xb, self.Wb)
        self.weight.grad += binarize_weight_backward(dWb, self.w_cache, self.alpha_grad)
        if self.bias is not None:
            self.bias.grad += db
        if self.binarize_input:
            dx = dx * activation_grad(self.x, self.estimator, self.input_levels)   # through s(x)
        return dx


def make_linear(n_in, n_out, rng, binary, **binary_options):
    """A BinaryLinear, or (binary=False) the real Linear of the full-precision twin.

    ``binary_options`` are BinaryLinear's keywords (estimator, alpha_grad,
    binarize_input, input_levels, dtype); the real layer takes only dtype from them."""
    if binary:
        return BinaryLinear(n_in, n_out, rng, **binary_options)
    return Linear(n_in, n_out, rng, dtype=binary_options.get("dtype", np.float32))
