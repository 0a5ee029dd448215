"""Notebook 1: central differences, and the second-order approximation g of sign with its derivative g'."""
import numpy as np


def central_differences(f, x, h=1e-5):
    """(f(x + h e_i) - f(x - h e_i)) / 2h for every entry i of x; f() reads x, which is restored."""
    grad = np.zeros(x.shape)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        f_plus = f()
        x[i] = old - h
        f_minus = f()
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def g(x):
    """-1 below -1, 2x + x^2 on [-1, 0), 2x - x^2 on [0, 1), +1 from 1 on."""
    a = np.minimum(np.abs(x), 1)                       # |x| clipped to [0, 1]
    return np.where(x >= 0, 1.0, -1.0) * (2 * a - a * a)


def g_prime(x):
    """max(0, 2 - 2|x|): the triangle."""
    return np.maximum(0, 2 - 2 * np.abs(x))
