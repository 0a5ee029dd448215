"""Choosing a grid point on the held-out rows (DESIGN §9.1), for run.py (what a later run builds on) and
tables.py (which runs a table reports).

Each run of a grid records the held-out score of its best epoch (``record["selection"]``).  The point of a
(group, variant, task) is chosen on the runs of the selection seed, SELECTION_SEED: every declared point runs
with it, and the point with the best held-out score wins, once all of them have run.  The other seeds run at
the chosen point only; they measure the spread of what was chosen and take no part in choosing it.  Dev never
takes part either.
"""
import json
from itertools import product
from pathlib import Path

from beexnp.glue.heldout import unit_name
from beexnp.glue.metrics import selection_name, selection_score

SELECTION_SEED = 0
RUNS = Path(__file__).resolve().with_name("runs.json")          # what every grid is (its declared points)


def grid_points(grid):
    """[(point name, {"train.lr": v, ...})] of a grid, in order; one unnamed point without a grid."""
    if not grid:
        return [("", {})]
    keys = list(grid)
    return [("_".join(f"{k.split('.')[-1]}{v:g}" for k, v in zip(keys, values)), dict(zip(keys, values)))
            for values in product(*(grid[k] for k in keys))]


def declared_points(group, variant, task, runs_file=None):
    """The point names ``runs_file`` (default: RUNS) declares for (group, variant, task); [] if it declares none."""
    for spec in json.loads(Path(runs_file or RUNS).read_text()):
        if spec["group"] == group and variant in spec["variants"] and task in spec["tasks"]:
            return [name for name, _ in grid_points(spec.get("grid"))]
    return []


def slice_of(record):
    """The held-out slice (its ``unit_name``) a record's run was selected on; records before issue 25 say none:
    single rows."""
    return (record.get("selection") or {}).get("unit") or unit_name(record["task"], "rows")


def current_slice(task):
    """The slice every run selected on held-out rows is now trained with (DESIGN §9.1)."""
    return unit_name(task, "groups")


def one_slice(records, task):
    """The records of ``task`` selected on the current slice if there is one among them, else those of the
    slice before it; records selected on dev are kept either way (they have no slice)."""
    honest = [r for r in records if (r.get("selection") or {}).get("split") == "heldout"]
    slices = {slice_of(r) for r in honest}
    keep = current_slice(task) if current_slice(task) in slices else min(slices, default=None)
    return [r for r in records if r not in honest or slice_of(r) == keep]


def heldout_score(record):
    """The held-out score a run was selected with (its best epoch's), or None for a run selected on dev.

    A score that is not the task's selection score of the best epoch's held-out metrics (an MRPC run chosen on
    F1 alone, before DESIGN §9.2) is a ValueError: such a record must be run again, never mixed in."""
    selection = record.get("selection") or {}
    if selection.get("split") != "heldout":
        return None
    per_exit = (selection.get("per_exit") or {}).get("heldout")
    if per_exit and abs(max(selection_score(record["task"], m) for m in per_exit) - selection["score"]) > 1e-9:
        raise ValueError(f"{record['name']} was selected on another score than {selection_name(record['task'])} "
                         "(DESIGN §9.2): delete its record and run it again")
    return selection["score"]


def choose_point(points, scores):
    """The point of ``points`` (declared) with the best ``scores[point]`` (held-out score of its selection-seed
    run; ties: the larger name, for a fixed answer).  LookupError while a point has no score yet."""
    missing = [p for p in points if p not in scores]
    if missing:
        raise LookupError(f"{len(points) - len(missing)} of {len(points)} grid points have a seed-{SELECTION_SEED} "
                          f"run ({missing[0]} has none)")
    return max(points, key=lambda p: (scores[p], p))


def chosen_records(records, group, variant, task, runs_file=None):
    """The records (one per seed) of the grid point of ``group``'s ``variant`` on ``task`` chosen on the held-out
    rows; [] when no selection-seed run of it was selected on held-out rows.  LookupError while a point that
    ``runs_file`` declares has no selection-seed record (the choice would be made on part of the grid)."""
    own = one_slice([r for r in records if (r["group"], r["variant"], r["task"]) == (group, variant, task)
                     and heldout_score(r) is not None], task)
    scores = {r.get("point", ""): heldout_score(r) for r in own if r["seed"] == SELECTION_SEED}
    scores = {p: s for p, s in scores.items() if s is not None}
    if not scores:
        return []
    points = declared_points(group, variant, task, runs_file) or sorted(scores)
    point = choose_point(points, scores)
    return sorted((r for r in own if r.get("point", "") == point), key=lambda r: r["seed"])
