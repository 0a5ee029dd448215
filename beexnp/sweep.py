"""The accuracy-cost curve: every exit criterion over a grid of its threshold.

What the ``sweep`` command writes (``python -m beexnp sweep CHECKPOINT [--out DIR]``).

One full forward gives every exit's logits; each criterion's decisions are then
replayed from them (``simulate_exits``, tested equal to real early exit), so a
sweep of dozens of thresholds costs one pass over the split.  Each point is
(mean inference FLOPs per input, dev metric); the full-depth model is one more
point.  delta is chosen on the same dev split (test labels are not public):
the largest FLOPs cut whose metric is at least the full-depth model's, else the
best metric.  Chosen on dev and reported on dev, so the point is optimistic.
"""
import json
from pathlib import Path

import numpy as np

from beexnp.criteria import make_criterion
from beexnp.evaluate import load_labelled_split
from beexnp.flops import model_flops
from beexnp.glue import compute_metrics
from beexnp.inference import exit_outputs, predictions, simulate_exits

GRIDS = {
    "fractional": [0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8],
    "entropy": [0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95],   # H / log C
    "maxprob": [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99],
    "patience": [1, 2, 3, 4, 5],
}


def sweep_outputs(outputs, labels, lengths, task, config, grids=None):
    """Rows (criterion, threshold, metric, mean exit block, mean FLOPs, cut) from every exit's outputs (N, n, C)."""
    grids = grids or ({"fractional": GRIDS["fractional"]} if task.regression else GRIDS)
    metric = task.main_metric
    per_exit = predictions(outputs, task.regression)                             # (N, n)
    full_flops = float(model_flops(config, lengths).flops.mean())
    rows = [dict(criterion="full depth", threshold=None, metric=compute_metrics(task, per_exit[-1], labels)[metric],
                 mean_exit_block=float(config.blocks), mean_flops=full_flops, flops_cut=0.0)]
    n = outputs.shape[1]
    for name, values in grids.items():
        for value in values:
            exits = simulate_exits(outputs, make_criterion(name, value, task.regression))
            chosen = per_exit[exits - 1, np.arange(n)]
            flops = float(model_flops(config, lengths, exits).flops.mean())
            rows.append(dict(criterion=name, threshold=value, metric=compute_metrics(task, chosen, labels)[metric],
                             mean_exit_block=float(exits.mean()), mean_flops=flops, flops_cut=1 - flops / full_flops))
    return rows


def choose(rows, criterion="fractional"):
    """The dev-chosen point of ``criterion``: the largest cut that keeps the full-depth metric, else the best metric."""
    full = rows[0]["metric"]
    own = [r for r in rows if r["criterion"] == criterion]
    keeping = [r for r in own if r["metric"] >= full]
    if keeping:
        return max(keeping, key=lambda r: (r["flops_cut"], r["metric"]))
    return max(own, key=lambda r: (r["metric"], r["flops_cut"]))


def format_rows(rows, metric):
    lines = [f"{'criterion':<12} {'threshold':>9} {metric:>9} {'exit':>6} {'MFLOPs':>8} {'cut':>7}"]
    for r in rows:
        t = "" if r["threshold"] is None else f"{r['threshold']:g}"
        lines.append(f"{r['criterion']:<12} {t:>9} {r['metric']:9.4f} {r['mean_exit_block']:6.2f} "
                     f"{r['mean_flops'] / 1e6:8.2f} {100 * r['flops_cut']:6.1f}%")
    return "\n".join(lines)


def draw_rows(ax, rows, metric, title):
    """Onto ``ax``: metric vs mean MFLOPs per input, a line per criterion, the full-depth model a star."""
    for name in dict.fromkeys(r["criterion"] for r in rows[1:]):
        own = sorted((r for r in rows if r["criterion"] == name), key=lambda r: r["mean_flops"])
        ax.plot([r["mean_flops"] / 1e6 for r in own], [r["metric"] for r in own], marker="o", ms=3, label=name)
    full = rows[0]
    ax.plot(full["mean_flops"] / 1e6, full["metric"], "k*", ms=12, label="full depth")
    chosen = choose(rows)
    ax.annotate(f"chosen δ={chosen['threshold']:g}", (chosen["mean_flops"] / 1e6, chosen["metric"]),
                textcoords="offset points", xytext=(8, -14), fontsize=8)
    ax.set_xlabel("mean inference MFLOPs per input")
    ax.set_ylabel(f"dev {metric}")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)


def plot_rows(rows, metric, title, path):
    """The sweep's figure, saved to ``path``: ``draw_rows`` on a figure of its own."""
    from matplotlib.figure import Figure         # no pyplot: leaves the caller's backend alone

    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    draw_rows(ax, rows, metric, title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return fig


def run_sweep(folder, out_dir=None, split=None, glue_dir=None, limit=None):
    """Sweep a checkpoint; writes sweep.json, sweep.md and sweep.png into ``out_dir``."""
    model, task, card, encoded = load_labelled_split(folder, split, glue_dir, limit)
    rows = sweep_outputs(exit_outputs(model, encoded), encoded.labels, encoded.lengths, task, model.config)
    chosen = choose(rows)
    out = Path(out_dir or Path(folder) / "sweep")
    out.mkdir(parents=True, exist_ok=True)
    result = dict(checkpoint=str(folder), task=task.name, split=encoded.split, metric=task.main_metric,
                  rows=rows, chosen=chosen)
    (out / "sweep.json").write_text(json.dumps(result, indent=2))
    table = format_rows(rows, task.main_metric)
    (out / "sweep.md").write_text("```\n" + table + "\n```\n")
    plot_rows(rows, task.main_metric, f"{task.name} {encoded.split}: early-exit criteria", out / "sweep.png")
    return result, table, out
