"""Choosing a grid point on the held-out rows (DESIGN §9.1), for run.py (what a later run builds on) and
tables.py (which runs a table reports).

Each run of a grid records the held-out score of its best epoch (``record["selection"]``); the chosen
point of a (group, variant, task) is the one with the best mean of that score over its seeds.  Dev never
takes part in the choice.
"""
import numpy as np


def heldout_score(record):
    """The held-out score a run was selected with (its best epoch's), or None for a run selected on dev."""
    selection = record.get("selection") or {}
    return selection.get("score") if selection.get("split") == "heldout" else None


def best_point(scores):
    """The point of {point: [held-out score per seed]} with the best mean (ties: the larger name, for a fixed answer)."""
    return max(scores, key=lambda p: (np.mean(scores[p]), p))


def chosen_records(records, group, variant, task):
    """The records (one per seed) of the grid point of ``group``'s ``variant`` on ``task`` chosen on the held-out
    rows; [] when there is none, or when a record was not selected on held-out rows."""
    own = [r for r in records if (r["group"], r["variant"], r["task"]) == (group, variant, task)]
    if not own or any(heldout_score(r) is None for r in own):
        return []
    scores = {}
    for r in own:
        scores.setdefault(r.get("point", ""), []).append(heldout_score(r))
    point = best_point(scores)
    return [r for r in own if r.get("point", "") == point]
