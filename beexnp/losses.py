r"""Losses: softmax cross-entropy for classes, mean squared error for STS-B, and the
soft-target loss of distillation (DESIGN §6.9).

Both take optional per-example weights w (B,) and return the weighted mean
L = (1/B) sum_b w_b loss_b, so the multi-exit loss can weight each input at
each exit (DESIGN §6).  ``backward(dL)`` returns the gradient of the
predictions; the targets and weights are constants.
"""
import numpy as np

from beexnp.activations import log_softmax
from beexnp.module import Module


class SoftmaxCrossEntropy(Module):
    r"""L = -(1/B) sum_b w_b log softmax(z_b)[y_b];    dz = (w/B) (p - onehot(y))

    z (B, C) logits, y (B,) int labels, w (B,) or None."""

    def forward(self, logits, labels, weights=None):
        B = logits.shape[0]
        logp = log_softmax(logits)                                         # (B, C)
        w = np.ones(B, logits.dtype) if weights is None else np.asarray(weights, logits.dtype)
        self.p, self.labels, self.w = np.exp(logp), labels, w
        return -np.sum(w * logp[np.arange(B), labels]) / B

    def backward(self, dloss=1.0):
        B = self.p.shape[0]
        dz = self.p.copy()                                                 # (B, C)
        dz[np.arange(B), self.labels] -= 1
        return dz * (dloss * self.w / B)[:, None]


class MSE(Module):
    r"""L = (1/B) sum_b w_b (yhat_b - y_b)^2;    dyhat = (2 w / B)(yhat - y)

    yhat (B,) or (B, 1) predictions, y (B,) targets, w (B,) or None."""

    def forward(self, pred, target, weights=None):
        self.shape = pred.shape
        self.diff = pred.reshape(-1) - np.asarray(target, pred.dtype)      # (B,)
        B = self.diff.shape[0]
        self.w = np.ones(B, pred.dtype) if weights is None else np.asarray(weights, pred.dtype)
        return np.sum(self.w * self.diff ** 2) / B

    def backward(self, dloss=1.0):
        B = self.diff.shape[0]
        return (dloss * 2 * self.w * self.diff / B).reshape(self.shape)


class SoftTargetKL(Module):
    r"""L = (1/B) sum_b w_b T^2 KL(softmax(t_b / T) || softmax(z_b / T));   dz = (w/B) T (q - p)      (DESIGN §6.9)

    z (B, C) the student's logits, t (B, C) the teacher's (a constant), w (B,) or None;
    p = softmax(t / T), q = softmax(z / T).  The T^2 keeps the gradient's scale as T changes
    (Hinton et al.)."""

    def __init__(self, temperature=1.0):
        self.T = float(temperature)

    def forward(self, logits, teacher_logits, weights=None):
        B, T = logits.shape[0], self.T
        logq = log_softmax(logits / T)                                     # (B, C)
        logp = log_softmax(np.asarray(teacher_logits, logits.dtype) / T)   # (B, C)
        self.q, self.p = np.exp(logq), np.exp(logp)
        self.w = np.ones(B, logits.dtype) if weights is None else np.asarray(weights, logits.dtype)
        kl = np.sum(self.p * (logp - logq), axis=-1)                       # (B,) >= 0
        return T * T * np.sum(self.w * kl) / B

    def backward(self, dloss=1.0):
        B = self.q.shape[0]
        return (self.q - self.p) * (dloss * self.T * self.w / B)[:, None]  # T^2 * (1/T) (q - p)
