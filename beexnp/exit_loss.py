r"""The multi-exit training loss and its exit weights (DESIGN §6.6-§6.8).

    L = sum_i (1/B) sum_b w_ib loss(z_ib, y_b)          all exits trained together

Weightings (each sums to 1 over the exits, per input):

* ``uniform``:       w_i = 1/N
* ``linear``:        w_i = i / (1 + 2 + ... + N)        deeper exits weigh more
* ``soft_routing``:  this project's own weights, not the paper's (the paper
  names a soft-routing loss but gives no equation; DESIGN §6.8).  A soft
  version of the exit rule: with r_i the fractional entropy drop
  (regression: the relative change of the prediction),

      q_1 = 0,  q_i = sigmoid((delta - r_i) / tau)  (1 < i < N),  q_N = 1
      q_i = 1 where H_{i-1} < 1e-6                      already certain: it leaves (DESIGN §6.2)
      pi_i = q_i prod_{j<i} (1 - q_j)                   probability of leaving at i
      w_i = (1 - beta) pi_i + beta / N                  (one block: q_1 = q_N = 1, w = 1)

  pi is treated as a constant (no gradient flows through the weights): the
  exit an input would take weighs most, and every exit keeps learning.

With a teacher (distillation, DESIGN §6.9), each exit's loss mixes the task
loss with a soft-target loss against the teacher's outputs t_i, under the
same weights:

    L = sum_i (1/B) sum_b w_ib [(1 - lambda) loss(z_ib, y_b) + lambda soft(z_ib, t_ib)]
    soft = T^2 KL(softmax(t / T) || softmax(z / T))      classes
    soft = (yhat - t)^2                                  regression: MSE to the teacher's prediction
"""
from dataclasses import dataclass

import numpy as np

from beexnp.activations import sigmoid
from beexnp.entropy import certain, entropy, fractional_entropy_drop, relative_change
from beexnp.losses import MSE, SoftmaxCrossEntropy, SoftTargetKL
from beexnp.module import Module

WEIGHTINGS = ("uniform", "linear", "soft_routing")


@dataclass(frozen=True)
class SoftRouting:
    r"""The soft-routing weights' parameters (DESIGN §6.8), with their defaults:

    delta   the exit rule's threshold: q_i = sigmoid((delta - r_i) / tau)
    tau     the sigmoid's temperature (> 0; as tau -> 0, q_i becomes the exit rule r_i < delta)
    beta    the share of uniform weight every exit keeps: w_i = (1 - beta) pi_i + beta / N
    """

    delta: float = 0.1
    tau: float = 0.05
    beta: float = 0.2


def exit_drops(logits, regression=False):
    """r_i for i = 2..N: (N-1, B). Entropy drop, or the prediction's relative change."""
    return _drops_and_certainty(logits, regression)[0]


def _drops_and_certainty(logits, regression):
    """(r_i, H_{i-1} certain) for i = 2..N, both (N-1, B); nothing is certain in regression."""
    if regression:
        preds = np.stack([z.reshape(-1) for z in logits])               # (N, B)
        r = relative_change(preds[:-1], preds[1:])
        return r, np.zeros(r.shape, bool)
    H = np.stack([entropy(z) for z in logits])                           # (N, B)
    return fractional_entropy_drop(H[:-1], H[1:]), certain(H[:-1])


def soft_routing_weights(logits, routing=SoftRouting(), regression=False):
    """w (N, B) of the soft-routing loss with ``routing`` = (delta, tau, beta); each column sums to 1."""
    delta, tau, beta = routing.delta, routing.tau, routing.beta
    N, B = len(logits), logits[0].shape[0]
    q = np.ones((N, B), logits[0].dtype)
    if N > 1:
        q[0] = 0.0                                                       # no exit before block 2
    if N > 2:
        r, sure = _drops_and_certainty(logits, regression)              # (N-1, B) each
        q[1:-1] = np.where(sure[:-1], 1.0, sigmoid((delta - r[:-1]) / tau))   # (N-2, B)
    stay = np.cumprod(np.vstack([np.ones((1, B), q.dtype), 1 - q[:-1]]), axis=0)  # prod_{j<i} (1 - q_j)
    pi = q * stay                                                        # (N, B)
    return (1 - beta) * pi + beta / N


def exit_weights(logits, weighting, regression=False, routing=SoftRouting()):
    """(N, B) per-exit, per-input loss weights for the given weighting."""
    N, B = len(logits), logits[0].shape[0]
    if weighting == "uniform":
        w = np.full((N, 1), 1.0 / N)
    elif weighting == "linear":
        depth = np.arange(1, N + 1, dtype=np.float64)[:, None]
        w = depth / depth.sum()
    elif weighting == "soft_routing":
        return soft_routing_weights(logits, routing, regression)
    else:
        raise ValueError(f"unknown exit weighting {weighting!r}; choose one of {WEIGHTINGS}")
    return np.broadcast_to(w.astype(logits[0].dtype), (N, B))


class MultiExitLoss(Module):
    r"""L = sum_i (1/B) sum_b w_ib CE(z_ib, y_b)   (MSE for regression)     z: N x (B, C), y (B,)

    With teacher outputs (``targets`` in ``forward``), each exit's loss is
    (1 - lambda) task + lambda soft-target (DESIGN §6.9), lambda = ``distill_weight``."""

    def __init__(self, num_exits, weighting="soft_routing", regression=False, routing=SoftRouting(),
                 distill_weight=0.0, temperature=1.0):
        if weighting not in WEIGHTINGS:
            raise ValueError(f"unknown exit weighting {weighting!r}; choose one of {WEIGHTINGS}")
        self.weighting, self.regression, self.routing = weighting, regression, routing
        self.distill_weight = distill_weight
        loss_class = MSE if regression else SoftmaxCrossEntropy
        self.losses = [loss_class() for _ in range(num_exits)]
        self.soft = [MSE() if regression else SoftTargetKL(temperature) for _ in range(num_exits)]

    def weights(self, logits):
        """(N, B) exit weights for these logits (constants for the backward)."""
        return exit_weights(logits, self.weighting, self.regression, self.routing)

    def forward(self, logits, labels, weights=None, targets=None):
        """Total loss; ``weights`` (N, B) overrides the computed ones (gradient checks freeze them);
        ``targets``: the teacher's outputs, N arrays (B, C), or None (no distillation)."""
        self.w = self.weights(logits) if weights is None else np.asarray(weights)
        self.lam = 0.0 if targets is None else self.distill_weight
        self.per_exit = [(1 - self.lam) * loss.forward(z, labels, w)
                         for loss, z, w in zip(self.losses, logits, self.w)]
        if targets is not None:
            soft_targets = [t[:, 0] if self.regression else t for t in targets]     # regression: (B,)
            self.per_exit = [task + self.lam * soft.forward(z, t, w) for task, soft, z, t, w in
                             zip(self.per_exit, self.soft, logits, soft_targets, self.w)]
        return sum(self.per_exit)

    def backward(self, dloss=1.0):
        """dL/dz_i for every exit: a list of N arrays (B, C)."""
        grads = [loss.backward(dloss * (1 - self.lam)) for loss in self.losses]
        if self.lam:
            grads = [g + soft.backward(dloss * self.lam) for g, soft in zip(grads, self.soft)]
        return grads


class ModelWithLoss(Module):
    r"""The training objective: L = MultiExitLoss(model(ids, mask), y).

    ``forward`` returns the scalar loss (the logits stay in ``self.logits``);
    ``backward(dL)`` runs the loss's backward, then the model's.  ``teacher``
    (``beexnp.distill.Teacher``, not a Module: its weights are no parameter of
    the objective) gives the soft targets of distillation for each batch."""

    def __init__(self, model, loss, teacher=None):
        self.model, self.loss, self.teacher = model, loss, teacher

    def forward(self, ids, mask, labels, weights=None, targets=None):
        self.logits = self.model.forward(ids, mask)
        if targets is None and self.teacher is not None:
            targets = self.teacher(ids, mask)
        return self.loss.forward(self.logits, labels, weights, targets)

    def backward(self, dloss=1.0):
        return self.model.backward(self.loss.backward(dloss))
