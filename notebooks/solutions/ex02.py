"""Notebook 2: BinaryLinear's backward through sign and alpha (DESIGN §1.2)."""
import numpy as np

from beexnp.sign import SecondOrderSign


def binary_linear_backward(dy, x, W, s):
    """(dx, dW, db) of y = x @ (alpha * s) + b, alpha = mean_i |W_ij|, s = sign(W) (or g(W) when relaxed).

    dy (..., out), x (..., in), W and s (in, out)."""
    n = W.shape[0]
    alpha = np.mean(np.abs(W), axis=0)                 # (out,)
    x2, dy2 = x.reshape(-1, n), dy.reshape(-1, W.shape[1])
    dx = (dy2 @ (alpha * s).T).reshape(x.shape)        # (..., in)
    dWb = x2.T @ dy2                                   # (in, out)
    dalpha = np.sum(dWb * s, axis=0)                   # (out,)
    dW = alpha * SecondOrderSign.grad(W) * dWb + dalpha * np.sign(W) / n
    return dx, dW, dy2.sum(axis=0)
