r"""Calibrated decisions (DESIGN §9.3): one per-class shift of the logits, chosen on the selection split.

A classifier trained on imbalanced classes, or stopped early, may place its decision boundary where the
selection score is not best: MRPC's runs scored below always answering "paraphrase".  After the best epoch
the trainer (``TrainConfig.calibrate``) chooses a shift s (C,), s_0 = 0, added to every exit's logits,

    z_i' = z_i + s            every exit i, so the argmax and the exit criteria's entropy both see it

on the selection split's outputs of every exit: the shift that maximises the best exit's selection score
(§9.2), as the epoch was chosen; ties go to the smallest |s|, so s = 0 unless a shift helps.  For each class
c >= 1 in turn (two rounds when C > 2) the candidates are 0 and one value between each two consecutive
shifts at which a row's class c ties with its best other class, at some exit (``shift_candidates``): every
distinct set of decisions when there are at most 201 such ties, else 201 of them evenly spaced in rank.

The shift is stored in the best checkpoint's card (``card["calibration"]``) and folded into each exit
head's bias when a saved model is opened for inference (``calibrated``, the one place, used by
``evaluate.open_for_inference``): z = W h + (b + s) is the same affine map as (W h + b) + s, so evaluate,
predict, the sweep and early exit all use it.  A card without the key has no shift.  ``export_checkpoint``
folds it into the packed file's biases and marks it ``"folded"`` (``folded_card``), so a packed model
predicts as its checkpoint does and the shift is never added twice.  ``beexnp.card`` checks the entry.
"""
import dataclasses

import numpy as np

from beexnp.card import CALIBRATION as CARD_KEY
from beexnp.glue.metrics import compute_metrics, selection_score

MAX_TIES = 201


def shift_candidates(ties):
    """0, and a shift inside every interval between the sorted distinct ``ties`` (their midpoints, and one
    below the lowest and above the highest): every distinct set of decisions, for at most MAX_TIES ties; more
    are thinned to MAX_TIES evenly spaced in rank first."""
    u = np.unique(ties)
    if len(u) > MAX_TIES:
        u = np.unique(u[np.linspace(0, len(u) - 1, MAX_TIES).round().astype(int)])
    return np.unique(np.concatenate([[0.0, u[0] - 1, u[-1] + 1], (u[:-1] + u[1:]) / 2]))


def best_exit_score(task, outputs, labels, shift):
    """(best exit's selection score, that exit, 1-based) of outputs (N, n, C) shifted by ``shift`` (C,)."""
    scores = [selection_score(task, compute_metrics(task, (z + shift).argmax(axis=-1), labels)) for z in outputs]
    return max(scores), int(np.argmax(scores)) + 1


def choose_shift(task, outputs, labels):
    """The card's calibration: {"shift": s (list of C floats), "exit", "score_before", "score_after"} chosen on
    the outputs (N, n, C) of every exit on a labelled split (see the module docstring)."""
    outputs = np.asarray(outputs, np.float64)
    C = outputs.shape[-1]
    shift = np.zeros(C)
    before, _ = best_exit_score(task, outputs, labels, shift)
    for c in [c for _ in range(1 if C == 2 else 2) for c in range(1, C)]:
        others = np.delete(outputs + shift, c, axis=-1).max(axis=-1)            # (N, n)
        candidates = shift_candidates((others - outputs[..., c]).ravel())     # s_c at which class c ties
        candidates = candidates[np.argsort(np.abs(candidates), kind="stable")]  # smallest |s_c| first
        best = None
        for t in candidates:
            trial = np.concatenate([shift[:c], [t], shift[c + 1:]])
            score = best_exit_score(task, outputs, labels, trial)[0]
            if best is None or score > best[0]:
                best = score, t
        shift[c] = best[1]
    after, exit_ = best_exit_score(task, outputs, labels, shift)
    return dict(shift=shift.tolist(), exit=exit_, score_before=before, score_after=after)


def card_shift(card):
    """The shift (C,) a card stores, or None (none stored, or one already folded into the biases)."""
    stored = card.get(CARD_KEY)
    return None if not stored or stored.get("folded") else np.asarray(stored["shift"])


def folded_card(card):
    """``card`` saying that its shift is in the exit biases (what a packed file stores, DESIGN §9.3)."""
    return dict(card, **{CARD_KEY: dict(card[CARD_KEY], folded=True)}) if card.get(CARD_KEY) else card


def apply_calibration(model, card):
    """``model`` with the card's shift folded into every exit head's bias (nothing without one, or folded)."""
    shift = card_shift(card)
    if shift is not None:
        for head in model.exits:
            head.linear.bias.data += shift.astype(head.linear.bias.data.dtype)
    return model


def calibrated(saved):
    """The opened saved model ``saved`` (a ``beexnp.checkpoint.Saved``) whose ``model()`` has the card's shift
    in its exit biases: the one place the calibration is applied (``evaluate.open_for_inference``, export).
    ``saved`` as it is if it has it already: the shift is never added twice."""
    if saved.calibrated:
        return saved
    build = saved.build
    return dataclasses.replace(saved, calibrated=True,
                               build=lambda s, **options: apply_calibration(build(s, **options), s.raw))


def as_packed(saved, **options):
    """(model, card) of the opened ``saved`` as a packed file holds them: the shift in the exit biases and the card
    marked ``"folded"`` (``export_checkpoint`` writes them; ``size`` measures them)."""
    return calibrated(saved).model(**options), folded_card(saved.raw)
