"""Choosing a grid point on the held-out rows (DESIGN §9.1), for run.py (what a later run builds on) and
tables.py (which runs a table reports).

Each run of a grid records the held-out score of its best epoch (``record["selection"]``).  The point of a
(group, variant, task) is chosen on the runs of the selection seed, SELECTION_SEED: every point runs with it,
and the point with the best held-out score wins.  The other seeds run at the chosen point only; they measure
the spread of what was chosen and take no part in choosing it.  Dev never takes part either.
"""
SELECTION_SEED = 0


def heldout_score(record):
    """The held-out score a run was selected with (its best epoch's), or None for a run selected on dev."""
    selection = record.get("selection") or {}
    return selection.get("score") if selection.get("split") == "heldout" else None


def best_point(scores):
    """The point of {point: held-out score of its selection-seed run} with the best score (ties: the larger
    name, for a fixed answer)."""
    return max(scores, key=lambda p: (scores[p], p))


def chosen_records(records, group, variant, task):
    """The records (one per seed) of the grid point of ``group``'s ``variant`` on ``task`` chosen on the held-out
    rows; [] when there is none, or when a selection-seed record was not selected on held-out rows."""
    own = [r for r in records if (r["group"], r["variant"], r["task"]) == (group, variant, task)]
    choosing = [r for r in own if r["seed"] == SELECTION_SEED]
    if not choosing or any(heldout_score(r) is None for r in choosing):
        return []
    point = best_point({r.get("point", ""): heldout_score(r) for r in choosing})
    return sorted((r for r in own if r.get("point", "") == point), key=lambda r: r["seed"])
