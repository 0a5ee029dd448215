r"""Inference: every exit's outputs, predictions, and early exit that really skips work (DESIGN §6.5).

Two ways to run a trained BEExformer on a split (anything with ``len`` and
``padded(rows) -> (ids, mask)``, such as ``beexnp.glue.EncodedSplit``):

* ``exit_outputs``: the full forward, every exit's outputs (N, n, C) -- what
  per-exit metrics and threshold sweeps (``simulate_exits``) need;
* ``early_exit_forward`` / ``early_exit_split``: block by block, and after
  block i the criterion (``beexnp.criteria``) looks at exit i's logits of the
  rows still active and picks the ones that leave.  Only the rows that stay
  are gathered (not masked) into the next block, and every column that is
  padding in all of them is cut, so later blocks run on fewer, and often
  shorter, rows.  Saved FLOPs become saved time.  Any padding mask works
  (right, left, holes): the positions were added at the embedding, so a
  column that no remaining row reads can go.

This module needs only the model: not the trainer, not the GLUE readers.
"""
from dataclasses import dataclass

import numpy as np

from beexnp.activations import softmax
from beexnp.entropy import entropy
from beexnp.module import evaluating


def batches(data, batch_size):
    """(ids, mask) of ``data`` in file order, ``batch_size`` rows at a time."""
    for start in range(0, len(data), batch_size):
        yield data.padded(np.arange(start, min(start + batch_size, len(data))))


def exit_outputs(model, data, batch_size=256):
    """Every exit's outputs on a whole split, in eval mode: (N, n, C)."""
    with evaluating(model):
        chunks = [np.stack(model.forward(ids, mask)) for ids, mask in batches(data, batch_size)]   # (N, b, C)
    return np.concatenate(chunks, axis=1)


def predictions(outputs, regression):
    """Class ids (argmax) or the regression value, on the last axis: (..., C) -> (...)."""
    return outputs[..., 0] if regression else outputs.argmax(axis=-1)


def evaluate_exits(model, data, score, regression, batch_size=256):
    """``score(predictions)`` (a dict of metrics) at every exit: a list of N dicts."""
    return [score(p) for p in predictions(exit_outputs(model, data, batch_size), regression)]


@dataclass
class EarlyExitResult:
    """Per input: ``logits`` (n, C) at its exit, ``exit_block`` (n,) 1-based,
    ``entropy`` (n, N) at every block it passed (NaN after it left)."""

    logits: np.ndarray
    exit_block: np.ndarray
    entropy: np.ndarray

    def predictions(self, regression=False):
        return predictions(self.logits, regression)

    def probabilities(self):
        return softmax(self.logits)


def early_exit_forward(model, ids, mask, criterion):
    """Run ``model`` block by block (eval mode); each row leaves when ``criterion`` says so.

    ids, mask (n, T): any mask of 0/1 with at least one real token per row."""
    with evaluating(model):
        return _early_exit_forward(model, ids, mask, criterion)


def _early_exit_forward(model, ids, mask, criterion):
    n, N = len(ids), len(model.blocks)
    if np.shape(ids) != np.shape(mask):
        raise ValueError(f"ids {np.shape(ids)} and mask {np.shape(mask)} must have the same shape")
    empty = np.flatnonzero(np.asarray(mask).sum(axis=1) == 0)
    if len(empty):
        raise ValueError(f"rows {empty.tolist()[:10]} have no real token (mask all 0): every input holds [CLS]")
    X, mask = model.start(ids, mask)                                 # (n, T, d); siamese: (2n, T', d)
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
        X, mask = model.keep_rows(X, mask, stay)                     # gather: fewer rows, fewer columns
    return EarlyExitResult(logits, exit_block, entropies)


def early_exit_split(model, data, criterion, batch_size=256):
    """``early_exit_forward`` over a whole split, in batches; one result."""
    with evaluating(model):
        parts = [_early_exit_forward(model, ids, mask, criterion) for ids, mask in batches(data, batch_size)]
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
