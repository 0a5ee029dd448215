"""The results tables, made from the run records that experiments/run.py wrote.

    python experiments/tables.py [--results results/experiments]   # prints and writes TABLES.md
    python experiments/tables.py --readme README.md                 # also refreshes the README's tables

Every number comes from a record (one JSON file per run); nothing is typed in.
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from selection import chosen_records, heldout_score

TASK_ORDER = ["sst2", "cola", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"]


def load_records(folder):
    return [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))
            if p.name not in ("skipped.json",)]


def pct(x):
    return f"{100 * x:.2f}"


def majority_baseline(task):
    """Dev metric of always predicting the training split's most frequent class (None if no data)."""
    from beexnp.glue import compute_metrics, get_task, load_split
    t = get_task(task)
    if t.regression:
        return 0.0                                                   # a constant has no correlation
    try:
        train, dev = load_split(t, "train"), load_split(t, t.dev_splits[0])
    except (FileNotFoundError, ValueError):
        return None
    majority = np.bincount(train.labels).argmax()
    return compute_metrics(t, np.full(len(dev.labels), majority), dev.labels)[t.main_metric]


def early_exit_cell(r):
    """One run's metric under early exit, with its dev-chosen delta and FLOPs cut."""
    chosen = r["early_exit"]
    return f"{pct(chosen['metrics'][r['metric']])} (δ={chosen['delta']:g}, {100 * r['flops']['cut']:.1f}%)"


def size_cell(r):
    return f"{r.get('size_ratio', float('nan')):.2f}×"


def find(records, task, variant, seed=0):
    return next((r for r in records if r["task"] == task and r["variant"] == variant and r["seed"] == seed), None)


def main_table(records, skipped):
    lines = ["| task | metric | majority class | full-precision twin | BEExformer, full depth | BEExformer, early exit "
             "(δ, FLOPs cut) | size ratio | training time (twin / BEEx) |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for task in TASK_ORDER:
        fp, bx = find(records, task, "full_precision"), find(records, task, "beexformer")
        if not (fp and bx):
            reason = next((v for k, v in skipped.items() if k.startswith(task + "-")), "not run")
            lines.append(f"| {task} | – | | not trained here: {reason} | | | | |")
            continue
        m = bx["metric"]
        seeds = [r for r in records if r["task"] == task and r["variant"] == "beexformer"]
        full, early = pct(bx["dev_full_depth"][m]), early_exit_cell(bx)
        if len(seeds) > 1:
            f = np.array([r["dev_full_depth"][m] for r in seeds])
            e = np.array([r["early_exit"]["metrics"][m] for r in seeds])
            full = f"{100 * f.mean():.2f} ± {100 * f.std(ddof=1):.2f} ({len(seeds)} seeds)"
            early = (f"{100 * e.mean():.2f} ± {100 * e.std(ddof=1):.2f} (δ="
                     + "/".join(f"{r['early_exit']['delta']:g}" for r in seeds)
                     + f", mean {100 * np.mean([r['flops']['cut'] for r in seeds]):.1f}%)")
        base = majority_baseline(task)
        lines.append(f"| {task} | {m} | {'–' if base is None else pct(base)} | {pct(fp['dev_full_depth'][m])} | "
                     f"{full} | {early} | {size_cell(bx)} | "
                     f"{fp['train_seconds'] / 60:.1f} / {bx['train_seconds'] / 60:.1f} min |")
    return "\n".join(lines)


def ablation_table(records):
    lines = ["| task | variant | full depth | best exit | early exit (δ, FLOPs cut) | size ratio |",
             "|---|---|---:|---:|---:|---:|"]
    for task in TASK_ORDER:
        rows = [r for r in records if r["task"] == task and r["group"] == "ablation"]
        base = find(records, task, "beexformer")
        if not rows:
            continue
        for r in ([base] if base else []) + rows:
            m = r["metric"]
            best = r["dev_per_exit"][r["best_exit"] - 1][m]
            name = "BEExformer (SLFN, second order, soft routing)" if r["variant"] == "beexformer" else r["variant"]
            epochs = f", {r['epochs_run']} epochs"
            lines.append(f"| {task} | {name}{epochs} | {pct(r['dev_full_depth'][m])} | {pct(best)} (exit "
                         f"{r['best_exit']}) | {early_exit_cell(r)} | {size_cell(r)} |")
    return "\n".join(lines)


def matched_flops_table(records):
    """Each criterion at (about) the FLOPs of the fractional rule's dev-chosen point."""
    lines = ["| task | FLOPs budget (fractional δ) | fractional | absolute entropy | max probability | patience |",
             "|---|---:|---:|---:|---:|---:|"]
    for task in TASK_ORDER:
        r = find(records, task, "beexformer")
        if not r or len(r["sweep"]) < 2:
            continue
        budget = next(s for s in r["sweep"] if s["criterion"] == "fractional"
                      and s["threshold"] == r["early_exit"]["delta"])["mean_flops"]
        cells = []
        for criterion in ("fractional", "entropy", "maxprob", "patience"):
            own = [s for s in r["sweep"] if s["criterion"] == criterion]
            if not own:                                   # regression: only the relative-change rule
                cells.append("–")
                continue
            within = [s for s in own if s["mean_flops"] <= 1.02 * budget]
            if not within:                                # no threshold of the grid is that cheap
                cheapest = min(own, key=lambda s: s["mean_flops"])
                cells.append(f"none within budget (cheapest: {pct(cheapest['metric'])} at "
                             f"{cheapest['mean_flops'] / 1e6:.1f} M)")
                continue
            s = max(within, key=lambda s: s["metric"])
            cells.append(f"{pct(s['metric'])} ({s['threshold']:g}, {s['mean_flops'] / 1e6:.1f} M)")
        lines.append(f"| {task} | {budget / 1e6:.1f} MFLOPs (δ={r['early_exit']['delta']:g}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---- runs whose every choice was made on the held-out rows (DESIGN §9.1) ------------------------------
HONEST_ROWS = [("twin", "twin", "full-precision twin (at the BEExformer's point)"),
               ("grid", "beexformer", "BEExformer"),
               ("pairs", "segments", "BEExformer + segments"), ("pairs", "siamese", "BEExformer, siamese pairs"),
               ("distill", "distilled", "BEExformer distilled from the twin")]


def spread(values):
    """mean ± standard deviation (× 100) over seeds, and how many; one value alone."""
    v = 100 * np.asarray(values, float)
    return f"{v[0]:.2f} (1 seed)" if len(v) == 1 else f"{v.mean():.2f} ± {v.std(ddof=1):.2f} ({len(v)} seeds)"


def selected(records):
    """The records selected on the held-out rows, and the others (selected on dev)."""
    honest = [r for r in records if heldout_score(r) is not None]
    return honest, [r for r in records if heldout_score(r) is None]


def reported(records, group, variant, task):
    """The runs a table reports for a (group, variant, task): a grid's chosen point, or the variant's runs."""
    own = [r for r in records if (r["group"], r["variant"], r["task"]) == (group, variant, task)]
    return chosen_records(records, group, variant, task) if any(r.get("point") for r in own) else own


def honest_table(records):
    """Every model of HONEST_ROWS per task: the grid point chosen on held-out rows, dev scored once per seed."""
    lines = ["| task | model | chosen on held-out (point) | held-out | dev, full depth | dev, early exit "
             "(δ on held-out, FLOPs cut) | majority class |", "|---|---|---|---:|---:|---:|---:|"]
    for task in TASK_ORDER:
        for group, variant, label in HONEST_ROWS:
            runs = reported(records, group, variant, task)
            if not runs:
                continue
            m = runs[0]["metric"]
            point = runs[0].get("point") or runs[0].get("chosen_point") or "–"
            early = spread([r["early_exit"]["metrics"][m] for r in runs])
            deltas = "/".join(f"{r['early_exit']['delta']:g}" for r in runs)
            cut = 100 * np.mean([r["flops"]["cut"] for r in runs])
            base = majority_baseline(task)
            lines.append(f"| {task} | {label} | {point} | {spread([heldout_score(r) for r in runs])} | "
                         f"{spread([r['dev_full_depth'][m] for r in runs])} | {early} (δ={deltas}, {cut:.1f}%) | "
                         f"{'–' if base is None else pct(base)} |")
    return "\n".join(lines)


def study_rows(records, task, group, variants, base_label):
    """(label, runs) of a study: the grid's chosen BEExformer (its default setting), then each variant."""
    rows = [(base_label, reported(records, "grid", "beexformer", task))]
    return rows + [(v, reported(records, group, v, task)) for v in variants]


def study_table(records, group, tasks, variants, base_label):
    """A depth or gate study: dev at full depth and at its best exit, mean exit, FLOPs and size, seeds' spread."""
    lines = ["| task | variant | dev, full depth | dev per exit (mean over seeds) | early exit (δ on held-out): "
             "dev, mean exit, FLOPs cut | MFLOPs full | size ratio |", "|---|---|---:|---|---:|---:|---:|"]
    for task in tasks:
        for label, runs in study_rows(records, task, group, variants, base_label):
            if not runs:
                continue
            m = runs[0]["metric"]
            per_exit = np.mean([[e[m] for e in r["dev_per_exit"]] for r in runs], axis=0)
            exits = " ".join(f"{100 * x:.1f}" for x in per_exit)
            early = (f"{spread([r['early_exit']['metrics'][m] for r in runs])}, "
                     f"{np.mean([r['early_exit']['mean_exit_block'] for r in runs]):.2f}, "
                     f"{100 * np.mean([r['flops']['cut'] for r in runs]):.1f}%")
            lines.append(f"| {task} | {label} | {spread([r['dev_full_depth'][m] for r in runs])} | {exits} | {early} | "
                         f"{np.mean([r['flops']['full'] for r in runs]) / 1e6:.2f} | "
                         f"{np.mean([r.get('size_ratio', np.nan) for r in runs]):.2f}× |")
    if len(lines) == 2:
        lines.append("| – | no run recorded yet (`python experiments/run.py --only " + group + "`) | | | | | |")
    return "\n".join(lines)


def matched_heldout_table(records):
    """Every criterion at the fractional rule's FLOPs, each threshold chosen on the held-out rows, dev reported."""
    names = ("fractional", "entropy", "maxprob", "patience")
    lines = ["| task | fractional δ (FLOPs cut on held-out) | " + " | ".join(names) + " |",
             "|---|---:|" + "---:|" * len(names)]
    for task in TASK_ORDER:
        runs = [r for r in reported(records, "grid", "beexformer", task) if r.get("matched")]
        if not runs:
            continue
        cells = []
        for name in names:
            got = [c for r in runs for c in r["matched"]["criteria"] if c["criterion"] == name]
            if not got:
                cells.append("–")                                   # regression: the relative-change rule only
            elif any(c["report"] is None for c in got):
                cells.append("no threshold within budget")
            else:
                cells.append(f"{spread([c['report']['metric'] for c in got])}, cut "
                             f"{100 * np.mean([c['report']['flops_cut'] for c in got]):.1f}%")
        frac = [c for r in runs for c in r["matched"]["criteria"] if c["criterion"] == "fractional"]
        budget = "/".join(f"{c['threshold']:g}" for c in frac)
        cut = 100 * np.mean([c["selection"]["flops_cut"] for c in frac])
        lines.append(f"| {task} | {budget} ({cut:.1f}%) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def accuracy_flops_figure(records, path):
    """One panel per task: the BEExformer's sweep (every criterion, full depth a star) and the twin's
    full-depth metric as a dashed line.  Returns the tasks drawn (none: no figure written)."""
    from matplotlib.figure import Figure
    from beexnp.sweep import draw_rows

    pairs = [(find(records, t, "beexformer"), find(records, t, "full_precision")) for t in TASK_ORDER]
    pairs = [(bx, fp) for bx, fp in pairs if bx and len(bx["sweep"]) > 1]
    if not pairs:
        return []
    cols = min(3, len(pairs))
    rows = -(-len(pairs) // cols)
    fig = Figure(figsize=(4.6 * cols, 3.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (bx, fp) in zip(axes, pairs):
        m = bx["metric"]
        draw_rows(ax, bx["sweep"], m, f"{bx['task']} (seed {bx['seed']})")
        if fp:
            ax.axhline(fp["dev_full_depth"][m], color="gray", ls="--", lw=1, label="full-precision twin")
    for ax in axes[len(pairs):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)
    return [bx["task"] for bx, _ in pairs]


def build(folder, figure=None):
    """The tables as markdown; ``figure``, the link to the accuracy-FLOPs figure, adds it below them."""
    folder = Path(folder)
    honest, records = selected(load_records(folder))                   # the tables below: runs selected on dev
    skipped_path = folder / "skipped.json"
    skipped = json.loads(skipped_path.read_text()) if skipped_path.exists() else {}
    parts = [
        "### Main table (GLUE dev; metric × 100)", main_table(records, skipped),
        "### Ablations", ablation_table(records),
        "### Exit criteria at matched FLOPs (best dev metric within the fractional rule's budget; "
        "threshold and mean MFLOPs per input in brackets)", matched_flops_table(records)]
    if honest:
        parts += [
            "### Every choice on the held-out slice (epoch, grid point, δ), dev scored once (metric × 100)",
            honest_table(honest),
            "### Depth (SST-2; the grid's chosen BEExformer has 6 blocks)",
            study_table(honest, "depth", ["sst2"], ["blocks2", "blocks4", "blocks8", "blocks12"], "blocks6"),
            "### The SLFN's gates (the grid's chosen BEExformer has all three)",
            study_table(honest, "gates", ["sst2", "cola"], ["no_slfn", "learn_gate_only", "forget_gates_only"],
                        "all three gates"),
            "### Exit criteria at matched FLOPs, thresholds chosen on the held-out slice, dev reported",
            matched_heldout_table(honest)]
    if figure:
        parts += ["### Accuracy vs. FLOPs per task (dev; every criterion over its threshold grid, the BEExformer "
                  "at full depth a star, the full-precision twin's full-depth metric dashed)",
                  f"![dev metric vs. mean inference MFLOPs per input, one panel per task]({figure})"]
    return "\n\n".join(parts) + "\n"


START, END = "<!-- results tables: written by experiments/tables.py -->", "<!-- end of results tables -->"


def refresh_readme(path, text):
    """Replace what stands between the START and END markers of ``path`` with ``text``."""
    readme = Path(path).read_text()
    if START not in readme or END not in readme:
        raise SystemExit(f"{path} has no results markers ({START} ... {END})")
    head, rest = readme.split(START, 1)
    Path(path).write_text(head + START + "\n" + text + rest[rest.index(END):])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default="results/experiments")
    p.add_argument("--readme", help="also write the tables into this file, between its results markers")
    args = p.parse_args(argv)
    folder = Path(args.results)
    figure = folder / "accuracy_flops.png"
    drawn = accuracy_flops_figure(selected(load_records(folder))[1], figure)
    text = build(folder, figure.name if drawn else None)
    (folder / "TABLES.md").write_text(text)
    if args.readme:
        link = os.path.relpath(figure, Path(args.readme).resolve().parent) if drawn else None
        refresh_readme(args.readme, build(folder, Path(link).as_posix() if link else None))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
