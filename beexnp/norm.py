r"""Layer normalization over the feature axis."""
import numpy as np

from beexnp.module import Module, Parameter


class LayerNorm(Module):
    r"""y = gamma * (x - mu) / sqrt(var + eps) + beta,  mu, var over the last axis.

    x (..., d), gamma (d,), beta (d,).  With xhat = (x - mu) / sigma, the input
    gradient is  dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / sigma.
    """

    def __init__(self, dim, eps=1e-5, dtype=np.float32):
        self.gamma = Parameter(np.ones(dim, dtype))
        self.beta = Parameter(np.zeros(dim, dtype))
        self.eps = eps

    def forward(self, x):
        mu = x.mean(axis=-1, keepdims=True)                        # (..., 1)
        xc = x - mu                                                # (..., d)
        var = np.einsum("...d,...d->...", xc, xc)[..., None] / x.shape[-1]   # mean(xc^2), one dot per row (..., 1)
        self.inv_sigma = 1 / np.sqrt(var + self.eps)                       # 1 / sigma                        (..., 1)
        self.xhat = xc * self.inv_sigma                            # (..., d)
        return self.gamma.data * self.xhat + self.beta.data

    def backward(self, dy):
        d = dy.shape[-1]
        self.gamma.grad += (dy * self.xhat).reshape(-1, d).sum(axis=0)     # y = gamma * xhat + beta
        self.beta.grad += dy.reshape(-1, d).sum(axis=0)
        dxhat = dy * self.gamma.data                               # (..., d)
        return self.inv_sigma * (dxhat                                                       # through xhat itself
                                 - dxhat.mean(axis=-1, keepdims=True)                        # through mu
                                 - self.xhat * (dxhat * self.xhat).mean(axis=-1, keepdims=True))   # through sigma
