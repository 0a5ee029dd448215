"""The accuracy-cost curve: every exit criterion over a grid of its threshold.

What the ``sweep`` command writes (``python -m beexnp sweep CHECKPOINT [--out DIR]``).

One full forward gives every exit's logits; each criterion's decisions are then
replayed from them (``simulate_exits``, tested equal to real early exit), so a
sweep of dozens of thresholds costs one pass over the split.  Each point is
(mean inference FLOPs per input, dev metric); the full-depth model is one more
point.  delta is chosen by ``choose``: the largest FLOPs cut whose selection
score (the main metric, or MRPC's mean of F1 and accuracy: DESIGN §9.2) is at
least the full-depth model's, else the best score.

On which split (DESIGN §9.1): a checkpoint trained with ``select_on="heldout"``
(or ``select_on="heldout"`` here) has delta, and every other criterion's
threshold at the fractional rule's FLOPs (``matched``), chosen on its held-out
training rows, and dev reported at those thresholds: an honest dev number.
With ``select_on="dev"`` the choice is made on the reported split itself, and
that point is optimistic.

Its three files are each written whole (``beexnp.outputs.atomic_write``), by default beside the checkpoint
(``CKPT-sweep``), never inside one: a checkpoint's next save replaces its folder.
"""
import json
from pathlib import Path

import numpy as np

from beexnp.checkpoint import Saved
from beexnp.criteria import make_criterion
from beexnp.evaluate import labelled_split, open_for_inference
from beexnp.flops import input_lengths, model_flops
from beexnp.glue import compute_metrics, selection_score
from beexnp.glue.heldout import SPLIT as HELDOUT
from beexnp.inference import exit_outputs, predictions, simulate_exits
from beexnp.outputs import guard_folder, save_figure, write_text

GRIDS = {
    "fractional": [0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8],
    "entropy": [0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95],   # H / log C
    "maxprob": [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99],
    "patience": [1, 2, 3, 4, 5],
}


def sweep_outputs(outputs, labels, lengths, task, config, grids=None):
    """Rows (criterion, threshold, metric, score, mean exit block, mean FLOPs, cut) from every exit's outputs
    (N, n, C): ``metric`` is the task's main metric, ``score`` what choices are made on (``selection_score``)."""
    grids = grids or ({"fractional": GRIDS["fractional"]} if task.regression else GRIDS)
    per_exit = predictions(outputs, task.regression)                             # (N, n)
    full_flops = float(model_flops(config, lengths).flops.mean())

    def row(criterion, threshold, chosen, exits=None):
        metrics = compute_metrics(task, chosen, labels)
        flops = float(model_flops(config, lengths, exits).flops.mean())
        return dict(criterion=criterion, threshold=threshold, metric=metrics[task.main_metric],
                    score=selection_score(task, metrics),
                    mean_exit_block=float(config.blocks if exits is None else exits.mean()), mean_flops=flops,
                    flops_cut=1 - flops / full_flops)

    rows = [row("full depth", None, per_exit[-1])]
    n = outputs.shape[1]
    for name, values in grids.items():
        for value in values:
            exits = simulate_exits(outputs, make_criterion(name, value, task.regression))
            rows.append(row(name, value, per_exit[exits - 1, np.arange(n)], exits))
    return rows


def sweep_split(model, task, encoded):
    """The sweep's rows on one encoded labelled split (one full forward)."""
    return sweep_outputs(exit_outputs(model, encoded), encoded.labels, input_lengths(model.config, encoded), task,
                         model.config)


def choose(rows, criterion="fractional"):
    """The chosen point of ``criterion`` on the rows' split: the largest cut that keeps the full-depth score
    (``selection_score``), else the best score."""
    full = rows[0]["score"]
    own = [r for r in rows if r["criterion"] == criterion]
    keeping = [r for r in own if r["score"] >= full]
    if keeping:
        return max(keeping, key=lambda r: (r["flops_cut"], r["score"]))
    return max(own, key=lambda r: (r["score"], r["flops_cut"]))


def at_threshold(rows, criterion, threshold):
    """The row of ``criterion`` at ``threshold`` (the full-depth row for criterion "full depth")."""
    return next(r for r in rows if r["criterion"] == criterion and r["threshold"] == threshold)


def matched(selection_rows, report_rows, slack=1.02):
    """Every criterion at the fractional rule's FLOPs, each threshold chosen on the selection split.

    The budget is the mean FLOPs of ``choose(selection_rows)``; each criterion takes, among its thresholds
    whose selection-split FLOPs stay within ``slack`` x budget, the best selection-split score, and is
    reported by its row of ``report_rows`` at that threshold (None when no threshold is that cheap)."""
    budget = choose(selection_rows)["mean_flops"]
    out = []
    for name in dict.fromkeys(r["criterion"] for r in selection_rows[1:]):
        within = [r for r in selection_rows if r["criterion"] == name and r["mean_flops"] <= slack * budget]
        pick = max(within, key=lambda r: (r["score"], -r["mean_flops"])) if within else None
        out.append(dict(criterion=name, threshold=pick and pick["threshold"], selection=pick,
                        report=pick and at_threshold(report_rows, name, pick["threshold"])))
    return dict(budget=budget, slack=slack, criteria=out)


def format_rows(rows, metric):
    lines = [f"{'criterion':<12} {'threshold':>9} {metric:>9} {'exit':>6} {'MFLOPs':>8} {'cut':>7}"]
    for r in rows:
        t = "" if r["threshold"] is None else f"{r['threshold']:g}"
        lines.append(f"{r['criterion']:<12} {t:>9} {r['metric']:9.4f} {r['mean_exit_block']:6.2f} "
                     f"{r['mean_flops'] / 1e6:8.2f} {100 * r['flops_cut']:6.1f}%")
    return "\n".join(lines)


def draw_rows(ax, rows, metric, title, chosen=None):
    """Onto ``ax``: metric vs mean MFLOPs per input, a line per criterion, the full-depth model a star,
    and the ``chosen`` row (default: ``choose(rows)``) annotated."""
    for name in dict.fromkeys(r["criterion"] for r in rows[1:]):
        own = sorted((r for r in rows if r["criterion"] == name), key=lambda r: r["mean_flops"])
        ax.plot([r["mean_flops"] / 1e6 for r in own], [r["metric"] for r in own], marker="o", ms=3, label=name)
    full = rows[0]
    ax.plot(full["mean_flops"] / 1e6, full["metric"], "k*", ms=12, label="full depth")
    chosen = chosen or choose(rows)
    ax.annotate(f"chosen δ={chosen['threshold']:g}", (chosen["mean_flops"] / 1e6, chosen["metric"]),
                textcoords="offset points", xytext=(8, -14), fontsize=8)
    ax.set_xlabel("mean inference MFLOPs per input")
    ax.set_ylabel(f"dev {metric}")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)


def plot_rows(rows, metric, title, path, chosen=None):
    """The sweep's figure, saved (whole) to ``path``: ``draw_rows`` on a figure of its own."""
    from matplotlib.figure import Figure         # no pyplot: leaves the caller's backend alone

    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    draw_rows(ax, rows, metric, title, chosen)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    return fig


def default_out(source):
    """Where a sweep of the checkpoint folder (or packed NAME.npz) ``source`` goes by default: ``CKPT-sweep`` (or
    ``NAME-sweep``) beside it, never inside a checkpoint, whose next save would delete it."""
    source = Path(source.path if isinstance(source, Saved) else source).absolute()
    name = source.stem if source.suffix == ".npz" and not source.is_dir() else source.name
    return source.parent / f"{name}-sweep"


def run_sweep(folder, out_dir=None, split=None, glue_dir=None, limit=None, select_on=None):
    """Sweep a checkpoint on ``split`` (default: dev); writes sweep.json, sweep.md and sweep.png into ``out_dir``.

    The thresholds are chosen on ``select_on`` (default: the split the checkpoint was selected on):
    "heldout" chooses them on the held-out training rows, "dev" on ``split`` itself."""
    out = Path(default_out(folder) if out_dir is None else out_dir)
    guard_folder(out, "--out")                                              # before the work
    saved = open_for_inference(folder)
    model, tokenizer, task, card = saved.model(), saved.card.tokenizer, saved.card.task, saved.raw
    encoded = labelled_split(model, tokenizer, task, card, split, glue_dir, limit)
    rows = sweep_split(model, task, encoded)
    select_on = select_on or card.get("train_config", {}).get("select_on", "dev")
    selection_rows = rows
    if select_on == HELDOUT:
        selection_rows = sweep_split(model, task, labelled_split(model, tokenizer, task, card, HELDOUT, glue_dir, limit))
    picked = choose(selection_rows)
    chosen = at_threshold(rows, picked["criterion"], picked["threshold"])       # reported at the chosen delta
    guard_folder(out, "--out", create=True)
    selection_split = HELDOUT if select_on == HELDOUT else encoded.split
    result = dict(checkpoint=str(saved.path), task=task.name, split=encoded.split, metric=task.main_metric,
                  selected_on=selection_split, rows=rows, chosen=chosen, chosen_on_selection=picked,
                  selection_rows=selection_rows, matched=matched(selection_rows, rows))
    write_text(out / "sweep.json", json.dumps(result, indent=2))
    table = format_rows(rows, task.main_metric)
    write_text(out / "sweep.md", "```\n" + table + "\n```\n")
    plot_rows(rows, task.main_metric, f"{task.name} {encoded.split}: early-exit criteria (δ chosen on "
              f"{selection_split})", out / "sweep.png", chosen)
    return result, table, out
