"""Notebook 3: the masked softmax and its backward (DESIGN §3)."""
import numpy as np


def attention_weights(S, mask):
    """softmax over the last axis, with weight exactly 0 on keys where mask == 0."""
    S = np.where(mask > 0, S, -np.inf)
    e = np.exp(S - S.max(axis=-1, keepdims=True))      # largest score 0: no overflow; exp(-inf) = 0
    return e / e.sum(axis=-1, keepdims=True)


def scores_gradient(P, dP):
    """dS = P * (dP - rowsum(dP * P))."""
    return P * (dP - np.sum(dP * P, axis=-1, keepdims=True))
