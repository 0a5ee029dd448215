r"""Exit criteria: when an input may leave the model (DESIGN §6.2-§6.4).

Every criterion has the same small interface, used both by real early exit
(``beexnp.inference.early_exit_forward``) and by its replay from precomputed
logits (``beexnp.inference.simulate_exits``)::

    state = criterion.start(n)                      # per-row memory (dict of arrays)
    leave, state = criterion.decide(i, z, state)     # block i (0-based), z (n, C) -> bool (n,)

The engine gathers ``state`` along with the rows, and makes every row still
active leave at the last block.

Each criterion refuses a threshold outside its legal range (NaN included) with
a one-line ValueError: the fractional rule delta in [0, 1), the relative change
delta >= 0, the entropy and probability thresholds in [0, 1], patience an
integer >= 1.

Each criterion has its own default threshold (``default``; ``threshold_for``): the fractional rule and the
relative change take the delta the model was trained with (soft routing's), the others a value of their own
(the entropy 0.1 of log C, the probability 0.9, patience 2): a threshold is never borrowed from another rule.
"""
import math

import numpy as np

from beexnp.activations import softmax
from beexnp.entropy import certain, entropy, fractional_entropy_drop, relative_change


def checked(value, criterion, legal, ok):
    """``value`` as a float if it is finite and ``ok(value)``; otherwise a one-line ValueError that
    gives the criterion's legal range."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if isinstance(value, bool) or not (math.isfinite(v) and ok(v)):
        raise ValueError(f"delta (the {criterion} criterion's threshold) must be {legal}, got {value!r} (--delta): "
                         f"give a threshold {legal}")
    return v


class FractionalEntropy:
    r"""BEExformer's rule: leave at the first block i >= 2 with
    r_i = (H_{i-1} - H_i) / H_{i-1} < delta, or H_{i-1} < 1e-6: an already-certain input
    leaves for every delta (DESIGN §6.2).  delta in [0, 1).

    A ratio of entropies: dividing H by log C changes nothing, so one delta
    already serves 2- and 3-class tasks."""

    name = "fractional"
    default = None                      # the delta the model was trained with

    def __init__(self, delta):
        self.delta = checked(delta, self.name, "in [0, 1)", lambda v: 0 <= v < 1)

    def start(self, n):
        return {"H": np.full(n, np.nan)}

    def decide(self, i, z, state):
        H = entropy(z)
        if i == 0:
            return np.zeros(len(z), bool), {"H": H}
        return (fractional_entropy_drop(state["H"], H) < self.delta) | certain(state["H"]), {"H": H}


class RelativeChange:
    r"""Regression (STS-B): leave at the first block i >= 2 where the prediction
    moved by less than a fraction delta:  |y_i - y_{i-1}| / |y_{i-1}| < delta.   delta >= 0."""

    name = "relative_change"
    default = None                      # the delta the model was trained with

    def __init__(self, delta):
        self.delta = checked(delta, self.name, ">= 0", lambda v: v >= 0)

    def start(self, n):
        return {"y": np.full(n, np.nan)}

    def decide(self, i, z, state):
        y = z[:, 0]
        leave = np.zeros(len(z), bool) if i == 0 else relative_change(state["y"], y) < self.delta
        return leave, {"y": y}


class EntropyThreshold:
    r"""DeeBERT: leave at the first exit whose entropy H_i < threshold (optionally H / log C).

    threshold in [0, 1] for the normalized entropy, >= 0 in nats."""

    name = "entropy"
    default = 0.1

    def __init__(self, threshold, normalized=True):
        legal, ok = ("in [0, 1]", lambda v: 0 <= v <= 1) if normalized else (">= 0", lambda v: v >= 0)
        self.threshold, self.normalized = checked(threshold, self.name, legal, ok), normalized

    def start(self, n):
        return {}

    def decide(self, i, z, state):
        return entropy(z, self.normalized) < self.threshold, state


class MaxProbability:
    r"""Leave at the first exit whose largest class probability max_c p_ic >= threshold, in [0, 1]."""

    name = "maxprob"
    default = 0.9

    def __init__(self, threshold):
        self.threshold = checked(threshold, self.name, "in [0, 1]", lambda v: 0 <= v <= 1)

    def start(self, n):
        return {}

    def decide(self, i, z, state):
        return softmax(z).max(axis=-1) >= self.threshold, state


class Patience:
    r"""PABEE: leave once the predicted class has stayed the same for ``patience``
    consecutive exits after the first (patience 1: two exits in a row agree); an integer >= 1."""

    name = "patience"
    default = 2

    def __init__(self, patience):
        self.patience = int(checked(patience, self.name, "an integer >= 1", lambda v: v >= 1 and v.is_integer()))

    def start(self, n):
        return {"pred": np.full(n, -1), "count": np.zeros(n, int)}

    def decide(self, i, z, state):
        pred = z.argmax(axis=-1)
        count = np.where(pred == state["pred"], state["count"] + 1, 0)
        return count >= self.patience, {"pred": pred, "count": count}


class NeverExit:
    """Full depth: every input leaves at the last block."""

    name = "never"
    default = 0

    def __init__(self, *_):
        pass

    def start(self, n):
        return {}

    def decide(self, i, z, state):
        return np.zeros(len(z), bool), state


CRITERIA = {c.name: c for c in (FractionalEntropy, RelativeChange, EntropyThreshold, MaxProbability, Patience,
                                NeverExit)}


def criterion_name(name, regression=False):
    """The criterion ``name`` means for the task: 'fractional' is RelativeChange for a regression task."""
    return "relative_change" if name == "fractional" and regression else name


def threshold_for(name, value=None, trained_delta=None, regression=False):
    """(criterion, threshold, where the threshold came from) for criterion ``name``: ``value`` if given, else the
    criterion's own default (``default``; for the fractional rule and the relative change, ``trained_delta``, the
    delta the model was trained with).  The threshold is checked (one-line ValueError)."""
    rule = make_criterion(name, value if value is not None else default_threshold(name, trained_delta, regression),
                          regression)
    threshold = getattr(rule, "delta", getattr(rule, "threshold", getattr(rule, "patience", None)))
    if value is not None:
        return rule, threshold, "given"
    own = CRITERIA[criterion_name(name, regression)].default
    return rule, threshold, ("the delta the model was trained with" if own is None else f"the {rule.name} default")


def default_threshold(name, trained_delta=None, regression=False):
    """The threshold criterion ``name`` uses when none is given (``trained_delta`` for the fractional rule)."""
    own = CRITERIA.get(criterion_name(name, regression))
    if own is None:
        return None
    return trained_delta if own.default is None else own.default


def make_criterion(name, value=None, regression=False):
    """A criterion by name; 'fractional' means RelativeChange for a regression task."""
    name = criterion_name(name, regression)
    if name not in CRITERIA:
        raise ValueError(f"unknown exit criterion {name!r}; choose one of {sorted(CRITERIA)}")
    if regression and name in ("entropy", "maxprob", "patience"):
        raise ValueError(f"criterion {name!r} needs class probabilities; use 'fractional' for regression")
    if value is None and name != "never":
        raise ValueError(f"criterion {name!r} needs a threshold value")
    return CRITERIA[name](value)
