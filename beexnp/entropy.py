r"""Exit entropy and its fractional drop between blocks (DESIGN §6).

    p_i = softmax(z_i),   H_i = -sum_c p_ic log p_ic
    r_i = (H_{i-1} - H_i) / H_{i-1}                         i = 2..N
    certain: H_{i-1} < 1e-6                                 leaves whatever r_i and delta (DESIGN §6.2)

H is computed from log-softmax: -sum_c p_c log p_c with log p from
``log_softmax`` stays finite where p underflows to 0 (p log p would be 0 * -inf
= NaN).  Shared by the soft-routing loss and the early-exit criteria.
"""
import numpy as np

from beexnp.activations import log_softmax


def entropy(logits, normalized=False):
    """H = -sum_c p_c log p_c over the last axis; / log C when ``normalized``.    (..., C) -> (...)"""
    logp = log_softmax(logits)
    H = -np.sum(np.exp(logp) * logp, axis=-1)
    return H / np.log(logits.shape[-1]) if normalized else H


CERTAIN = 1e-6          # an entropy below this (nats) is "already certain"


def certain(H_prev):
    """True where H_prev < 1e-6: the input is already certain, and leaves at this block for every delta."""
    return H_prev < CERTAIN


def fractional_entropy_drop(H_prev, H):
    """r = (H_prev - H) / H_prev; 0 where H_prev is ``certain`` (nothing left to gain: the exit rules
    let such an input leave whatever delta, see ``certain``)."""
    sure = certain(H_prev)
    return np.where(sure, 0.0, (H_prev - H) / np.where(sure, 1.0, H_prev))


def relative_change(prev, cur, eps=1e-6):
    """|cur - prev| / max(|prev|, eps): the regression (STS-B) analogue of r_i."""
    return np.abs(cur - prev) / np.maximum(np.abs(prev), eps)
