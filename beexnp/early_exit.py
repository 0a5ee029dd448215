r"""Early exit at inference: exit criteria, and a forward pass that really skips work (DESIGN §6).

A batch goes through the blocks one at a time.  After block i the criterion
looks at exit i's logits of the rows still active and picks the ones that
leave; only the rows that stay are gathered (not masked) into the next block,
and the padded length is cut to the longest row still active, so later blocks
run on fewer, and often shorter, rows.  Saved FLOPs become saved time.

Every criterion has the same small interface::

    state = criterion.start(n)                      # per-row memory (dict of arrays)
    leave, state = criterion.decide(i, z, state)     # block i (0-based), z (n, C) -> bool (n,)

The engine gathers ``state`` along with the rows, and makes every row still
active leave at the last block.
"""
from dataclasses import dataclass

import numpy as np

from beexnp.activations import softmax
from beexnp.entropy import entropy, fractional_entropy_drop, relative_change
from beexnp.glue import iterate_batches
from beexnp.module import evaluating


class FractionalEntropy:
    r"""BEExformer's rule: leave at the first block i >= 2 with
    r_i = (H_{i-1} - H_i) / H_{i-1} < delta  (an already-certain input, H_{i-1} ~ 0, leaves).

    A ratio of entropies: dividing H by log C changes nothing, so one delta
    already serves 2- and 3-class tasks."""

    name = "fractional"

    def __init__(self, delta):
        self.delta = delta

    def start(self, n):
        return {"H": np.full(n, np.nan)}

    def decide(self, i, z, state):
        H = entropy(z)
        leave = np.zeros(len(z), bool) if i == 0 else fractional_entropy_drop(state["H"], H) < self.delta
        return leave, {"H": H}


class RelativeChange:
    r"""Regression (STS-B): leave at the first block i >= 2 where the prediction
    moved by less than a fraction delta:  |y_i - y_{i-1}| / |y_{i-1}| < delta."""

    name = "relative_change"

    def __init__(self, delta):
        self.delta = delta

    def start(self, n):
        return {"y": np.full(n, np.nan)}

    def decide(self, i, z, state):
        y = z[:, 0]
        leave = np.zeros(len(z), bool) if i == 0 else relative_change(state["y"], y) < self.delta
        return leave, {"y": y}


class EntropyThreshold:
    r"""DeeBERT: leave at the first exit whose entropy H_i < threshold (optionally H / log C)."""

    name = "entropy"

    def __init__(self, threshold, normalized=True):
        self.threshold, self.normalized = threshold, normalized

    def start(self, n):
        return {}

    def decide(self, i, z, state):
        return entropy(z, self.normalized) < self.threshold, state


class MaxProbability:
    r"""Leave at the first exit whose largest class probability max_c p_ic >= threshold."""

    name = "maxprob"

    def __init__(self, threshold):
        self.threshold = threshold

    def start(self, n):
        return {}

    def decide(self, i, z, state):
        return softmax(z).max(axis=-1) >= self.threshold, state


class Patience:
    r"""PABEE: leave once the predicted class has stayed the same for ``patience``
    consecutive exits after the first (patience 1: two exits in a row agree)."""

    name = "patience"

    def __init__(self, patience):
        self.patience = int(patience)

    def start(self, n):
        return {"pred": np.full(n, -1), "count": np.zeros(n, int)}

    def decide(self, i, z, state):
        pred = z.argmax(axis=-1)
        count = np.where(pred == state["pred"], state["count"] + 1, 0)
        return count >= self.patience, {"pred": pred, "count": count}


class NeverExit:
    """Full depth: every input leaves at the last block."""

    name = "never"

    def __init__(self, *_):
        pass

    def start(self, n):
        return {}

    def decide(self, i, z, state):
        return np.zeros(len(z), bool), state


CRITERIA = {c.name: c for c in (FractionalEntropy, RelativeChange, EntropyThreshold, MaxProbability, Patience,
                                NeverExit)}


def make_criterion(name, value=None, regression=False):
    """A criterion by name; 'fractional' means RelativeChange for a regression task."""
    if name == "fractional" and regression:
        name = "relative_change"
    if name not in CRITERIA:
        raise ValueError(f"unknown exit criterion {name!r}; choose one of {sorted(CRITERIA)}")
    if regression and name in ("entropy", "maxprob", "patience"):
        raise ValueError(f"criterion {name!r} needs class probabilities; use 'fractional' for regression")
    if value is None and name != "never":
        raise ValueError(f"criterion {name!r} needs a threshold value")
    return CRITERIA[name](value)


@dataclass
class EarlyExitResult:
    """Per input: ``logits`` (n, C) at its exit, ``exit_block`` (n,) 1-based,
    ``entropy`` (n, N) at every block it passed (NaN after it left)."""

    logits: np.ndarray
    exit_block: np.ndarray
    entropy: np.ndarray

    def predictions(self, regression=False):
        return self.logits[:, 0] if regression else self.logits.argmax(axis=-1)

    def probabilities(self):
        return softmax(self.logits)


def early_exit_forward(model, ids, mask, criterion):
    """Run ``model`` block by block (eval mode); each row leaves when ``criterion`` says so."""
    with evaluating(model):
        return _early_exit_forward(model, ids, mask, criterion)


def _early_exit_forward(model, ids, mask, criterion):
    n, N = len(ids), len(model.blocks)
    mask = mask.astype(model.exits[0].linear.weight.data.dtype)
    X = model.embed(ids)                                             # (n, T, d)
    active = np.arange(n)                                            # rows of the batch still inside
    state = criterion.start(n)
    logits = np.zeros((n, model.config.num_classes), X.dtype)
    exit_block = np.zeros(n, np.int64)
    entropies = np.full((n, N), np.nan)
    for i in range(N):
        X, z = model.block_forward(i, X, mask)                       # only the active rows
        if not model.config.regression:
            entropies[active, i] = entropy(z)
        leave, state = criterion.decide(i, z, state)
        if i == N - 1:
            leave = np.ones(len(active), bool)
        logits[active[leave]] = z[leave]
        exit_block[active[leave]] = i + 1
        stay = ~leave
        if not stay.any():
            break
        active, state = active[stay], {k: v[stay] for k, v in state.items()}
        T = int(mask[stay].sum(axis=1).max())                        # the longest row still active
        X, mask = X[stay, :T], mask[stay, :T]                        # gather: fewer rows, fewer columns
    return EarlyExitResult(logits, exit_block, entropies)


def early_exit_split(model, encoded, criterion, batch_size=256):
    """``early_exit_forward`` over a whole ``EncodedSplit``, in batches; one result."""
    with evaluating(model):
        parts = [_early_exit_forward(model, b.ids, b.mask, criterion) for b in iterate_batches(encoded, batch_size)]
    return EarlyExitResult(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                             ("logits", "exit_block", "entropy")))


def simulate_exits(all_logits, criterion):
    """Exit block (1-based) of every input, decided from precomputed logits at every exit.

    all_logits (N, n, C): the full forward's exits.  Gives the same decisions as
    ``early_exit_forward`` (which computes only what it needs), at the cost of
    one full forward for any number of criteria: what a threshold sweep wants."""
    N, n = all_logits.shape[:2]
    exit_block = np.full(n, N, np.int64)
    inside = np.ones(n, bool)
    state = criterion.start(n)
    for i in range(N - 1):
        leave, state = criterion.decide(i, all_logits[i], state)
        exit_block[inside & leave] = i + 1
        inside &= ~leave
    return exit_block
