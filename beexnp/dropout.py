r"""Inverted dropout: in training, zero each unit with probability p and scale the
survivors by 1/(1-p), so evaluation needs no rescaling."""
import numpy as np

from beexnp.module import Module


class Dropout(Module):
    r"""y = x * m / (1 - p),  m ~ Bernoulli(1 - p) drawn from the Generator ``rng``;
    y = x in eval mode or when p = 0.  dx = dy * m / (1 - p)."""

    def __init__(self, p, rng):
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p, self.rng = p, rng

    def forward(self, x):
        if not self.training or self.p == 0:
            self.scale = None
            return x
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.p      # (same as x)
        self.scale = keep.astype(x.dtype) / x.dtype.type(1 - self.p)
        return x * self.scale

    def backward(self, dy):
        return dy if self.scale is None else dy * self.scale
