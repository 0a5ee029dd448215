"""The results tables, made from the run records that experiments/run.py wrote.

    python experiments/tables.py [--results results/experiments]   # prints and writes TABLES.md and its figures
    python experiments/tables.py --readme README.md --results-readme results/README.md
                                       # also refreshes README's short summary and results/README.md's tables

Every number comes from a record (one JSON file per run); nothing is typed in.  Each README keeps its own prose;
only what stands between its markers (SUMMARY_START/END in README.md, START/END in results/README.md) is
written here.
"""
import argparse
import json
import os
import sys
from collections import namedtuple
from functools import lru_cache
from pathlib import Path

import numpy as np

import selection
from records import read_records, read_skipped
from beexnp.cli import guarded
from beexnp.glue import get_task, selection_score
from beexnp.outputs import guard_file, guard_input_file, problem, reason, save_figure, write_text
from selection import chosen_records, current_slice, heldout_score, one_slice, slice_of

TASK_ORDER = ["sst2", "cola", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"]


def load_records(folder):
    """The records of ``folder``, each checked (``records.read_records``: a damaged one is one error line)."""
    return list(read_records(folder).values())


def pct(x):
    return f"{100 * x:.2f}"


@lru_cache(maxsize=None)                # read once per task (and warned once)
def majority_baseline(task):
    """Dev metric of always predicting the training split's most frequent class; None where there is none:
    a regression task (no classes: a constant prediction has no correlation) or a task whose data is not here."""
    from beexnp.glue import compute_metrics, get_task, load_split
    t = get_task(task)
    if t.regression:
        return None
    try:
        train, dev = load_split(t, "train"), load_split(t, t.dev_splits[0])
    except (FileNotFoundError, ValueError) as err:
        print(f"warning: no majority class for {t.name}, its data is not found ({err}); set GLUE_DIR",
              file=sys.stderr)
        return None
    majority = np.bincount(train.labels).argmax()
    return compute_metrics(t, np.full(len(dev.labels), majority), dev.labels)[t.main_metric]


def majority_cell(task):
    """The majority-class column's cell: the baseline × 100, or "–" where there is none."""
    base = majority_baseline(task)
    return "–" if base is None else pct(base)


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
        lines.append(f"| {task} | {m} | {majority_cell(task)} | {pct(fp['dev_full_depth'][m])} | "
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


def chosen_row(r):
    """The row of a run's dev sweep at its chosen δ (the fractional rule's threshold the record says was chosen)."""
    return next(s for s in r["sweep"] if s["criterion"] == "fractional" and s["threshold"] == r["early_exit"]["delta"])


def matched_flops_table(records):
    """Each criterion at (about) the FLOPs of the fractional rule's dev-chosen point."""
    lines = ["| task | FLOPs budget (fractional δ) | fractional | absolute entropy | max probability | patience |",
             "|---|---:|---:|---:|---:|---:|"]
    for task in TASK_ORDER:
        r = find(records, task, "beexformer")
        if not r or len(r["sweep"]) < 2:
            continue
        budget = chosen_row(r)["mean_flops"]
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
            s = max(within, key=lambda s: s.get("score", s["metric"]))          # rows before DESIGN §9.2: metric
            cells.append(f"{pct(s['metric'])} ({s['threshold']:g}, {s['mean_flops'] / 1e6:.1f} M)")
        lines.append(f"| {task} | {budget / 1e6:.1f} MFLOPs (δ={r['early_exit']['delta']:g}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---- runs whose every choice was made on the held-out rows (DESIGN §9.1) ------------------------------
HONEST_ROWS = [("twin", "twin", "full-precision twin (at the BEExformer's point)"),
               ("grid", "beexformer", "BEExformer"),
               ("pairs", "segments", "BEExformer + segments"), ("pairs", "siamese", "BEExformer, siamese pairs"),
               ("distill", "distilled", "BEExformer distilled from the twin"),
               ("bpe", "bpe", "BEExformer, BPE subword tokens (at the BEExformer's point)"),
               ("pretrain", "pretrained", "BEExformer, self-pretrained: masked LM on the task's text (at the "
                                          "BEExformer's point)"),
               ("pretrain_long", "pretrained40", "BEExformer, self-pretrained for 40 epochs (CoLA)"),
               ("width", "width256", "BEExformer, width 256 (token 240 + position 16; the BEExformer row is 128)"),
               ("width_sst2", "width256", "BEExformer, width 256 on SST-2 (token 240 + position 16, at the BEExformer's "
                                          "point)"),
               ("long", "epochs10", "BEExformer, up to 10 epochs (SST-2; the grid allows 4)"),
               ("pairs_pretrain", "siamese_pretrained", "BEExformer, siamese pairs, self-pretrained (at the siamese "
                                                        "point)"),
               ("bpe_pretrain", "bpe_pretrained", "BEExformer, BPE subword tokens, self-pretrained (at the "
                                                  "BEExformer's point)"),
               ("pairs_bpe", "siamese_bpe", "BEExformer, siamese pairs, BPE subword tokens (at the siamese point)"),
               ("pairs_cos", "siamese_cos", "BEExformer, siamese pairs + their cosine (at the siamese point)"),
               ("pairs_bpe_cos", "siamese_bpe_cos", "BEExformer, siamese pairs + their cosine, BPE subword tokens (at "
                                                    "the siamese point)"),
               ("pairs_bpe_len128", "siamese_bpe_len128", "BEExformer, siamese pairs, BPE subword tokens, inputs up to "
                                                          "128 tokens, not 64 (at the siamese point)"),
               ("pairs_bpe_cos_len128", "siamese_bpe_cos_len128", "BEExformer, siamese pairs + their cosine, BPE subword "
                                                                  "tokens, inputs up to 128 tokens, not 64 (at the siamese "
                                                                  "point)"),
               ("pairs_bpe_len128_grid", "siamese_bpe_len128_grid", "BEExformer, siamese pairs, BPE subword tokens, "
                                                                    "inputs up to 128 tokens, not 64, over a grid of their "
                                                                    "own (MRPC)"),
               ("pairs_bpe_grid", "siamese_bpe_grid", "BEExformer, siamese pairs, BPE subword tokens, over a grid of "
                                                      "their own (STS-B, RTE)"),
               ("pairs_bpe_grid_lower", "siamese_bpe_grid_lower", "BEExformer, siamese pairs, BPE subword tokens, over "
                                                                  "a grid of lower lr and dropout (STS-B)"),
               ("pairs_bpe_pretrain_len128", "siamese_bpe_pretrained_len128", "BEExformer, siamese pairs, BPE subword "
                                                                              "tokens, inputs up to 128 tokens, "
                                                                              "self-pretrained (at the siamese point)"),
               ("depth_cola", "blocks2", "BEExformer, 2 blocks (CoLA, at the BEExformer's point; it has 6)"),
               ("depth_cola", "blocks4", "BEExformer, 4 blocks (CoLA, at the BEExformer's point; it has 6)"),
               ("bpe_vocab", "bpe1000", "BEExformer, BPE subword tokens, vocabulary of 1,000 (CoLA, at the "
                                        "BEExformer's point)"),
               ("bpe_vocab", "bpe2000", "BEExformer, BPE subword tokens, vocabulary of 2,000 (CoLA, at the "
                                        "BEExformer's point)"),
               ("long_grid", "epochs10_grid", "BEExformer, up to 10 epochs, over a grid of its own (SST-2)"),
               ("pairs_bpe_width", "siamese_bpe_width256", "BEExformer, siamese pairs, BPE subword tokens, width 256 "
                                                           "(STS-B, at its own grid's point)")]
DEPTH = dict(group="depth", tasks=["sst2"], variants=["blocks2", "blocks4", "blocks8", "blocks12"],
             base_label="blocks6")                              # the grid's chosen BEExformer has 6 blocks
GATES = dict(group="gates", tasks=["sst2", "cola"], variants=["no_slfn", "learn_gate_only", "forget_gates_only"],
             base_label="all three gates")
CRITERIA = ("fractional", "entropy", "maxprob", "patience")

Stat = namedtuple("Stat", "mean std seeds")
Stat.__doc__ = "One metric over seeds, × 100: mean, standard deviation (nan for a single seed), number of seeds."


def seed_stat(values):
    """The Stat of one value per seed."""
    v = 100 * np.asarray(values, float)
    return Stat(v.mean(), v.std(ddof=1) if len(v) > 1 else np.nan, len(v))


def seeds_text(n):
    """'1 seed', '3 seeds'."""
    return f"{n} seed{'s' if n > 1 else ''}"


def mean_std(stat):
    """'mean ± std' of a Stat, the mean alone for a single seed."""
    return f"{stat.mean:.2f}" if stat.seeds == 1 else f"{stat.mean:.2f} ± {stat.std:.2f}"


def spread(values):
    """mean ± standard deviation (× 100) over seeds, and how many; one value alone."""
    stat = seed_stat(values)
    return f"{mean_std(stat)} ({seeds_text(stat.seeds)})"


def full_depth(runs, metric=None):
    """Each run's dev metric at full depth: its main metric, or ``metric``."""
    return [r["dev_full_depth"][metric or r["metric"]] for r in runs]


def early_exit(runs):
    """Each run's dev main metric under early exit (δ chosen on the held-out rows)."""
    return [r["early_exit"]["metrics"][r["metric"]] for r in runs]


def per_exit_mean(runs):
    """Dev main metric at each exit, mean over the runs; shape (exits,)."""
    return np.mean([[e[r["metric"]] for e in r["dev_per_exit"]] for r in runs], axis=0)


def selected(records):
    """The records selected on the held-out rows, and the others (selected on dev)."""
    honest = [r for r in records if heldout_score(r) is not None]
    return honest, [r for r in records if heldout_score(r) is None]


def reported(records, group, variant, task, strict=False):
    """The runs a table reports for a (group, variant, task): a grid's chosen point, or the variant's runs.
    While a declared grid point has no seed-0 run there is no choice yet: [], or with ``strict`` the LookupError
    that says what is missing."""
    own = one_slice([r for r in records if (r["group"], r["variant"], r["task"]) == (group, variant, task)], task)
    if not any(r.get("point") for r in own):
        return own
    try:
        return chosen_records(records, group, variant, task)
    except LookupError:
        if strict:
            raise
        return []


def slice_note(record):
    """"; held-out: rows, before issue 25" for a run selected on the slice DESIGN §9.1 has since replaced."""
    old = slice_of(record)
    return "" if old == current_slice(record["task"]) else f"; held-out: {old}, before issue 25"


def full_depth_cell(runs):
    """Dev at full depth over seeds: the main metric, then each other metric the records hold beside it
    (MRPC's accuracy beside its F1: its target asks for both; STS-B's Spearman beside its Pearson)."""
    others = [k for k in runs[0]["dev_full_depth"] if k != runs[0]["metric"]]
    return "; ".join([spread(full_depth(runs))] + [f"{k} {mean_std(seed_stat(full_depth(runs, k)))}" for k in others])


def honest_table(records):
    """Every model of HONEST_ROWS per task: the grid point chosen on held-out rows, dev scored once per seed."""
    lines = ["| task | model | chosen on held-out (point) | held-out (selection score) | dev, full depth | "
             "dev, early exit (δ on held-out, FLOPs cut) | majority class |", "|---|---|---|---:|---:|---:|---:|"]
    for task in TASK_ORDER:
        for group, variant, label in HONEST_ROWS:
            try:
                runs = reported(records, group, variant, task, strict=True)
            except LookupError as err:                          # part of a grid: nothing is chosen yet
                lines.append(f"| {task} | {label} | not chosen yet: {err} | | | | |")
                continue
            if not runs:
                continue
            point = (runs[0].get("point") or runs[0].get("chosen_point") or "–") + slice_note(runs[0])
            deltas = "/".join(f"{r['early_exit']['delta']:g}" for r in runs)
            cut = 100 * np.mean([r["flops"]["cut"] for r in runs])
            lines.append(f"| {task} | {label} | {point} | {spread([heldout_score(r) for r in runs])} | "
                         f"{full_depth_cell(runs)} | {spread(early_exit(runs))} (δ={deltas}, {cut:.1f}%) | "
                         f"{majority_cell(task)} |")
    return "\n".join(lines)


# ---- the held-out slice against dev, before and after issue 25's groups (DESIGN §9.1) ----------------------
BEFORE = {"old-slices/rows": "single rows", "superseded/sst2-random-rows": "single rows (phrases)"}


def slice_gap(runs):
    """(held-out selection score, dev's selection score at full depth) × 100, means over the runs."""
    return (100 * float(np.mean([heldout_score(r) for r in runs])),
            100 * float(np.mean([selection_score(r["task"], r["dev_full_depth"]) for r in runs])))


GAP_MODELS = [("grid", "beexformer", "BEExformer"),                # every task
              ("pairs", "siamese", "BEExformer, siamese pairs")]  # where it has been run on today's slice too (STS-B)


def gap_table(records, before):
    """Per task and model of ``GAP_MODELS``, the runs at the point each slice chose: their held-out score, dev's same
    score at full depth and the gap, on the slices of single rows (``before``: {label: the records set aside}) and
    today's.  The grid's BEExformer is always shown; another model only once it has runs on today's slice."""
    lines = ["| task | model | score | held-out slice | seeds | held-out | dev | held-out − dev |",
             "|---|---|---|---|---:|---:|---:|---:|"]
    for task in TASK_ORDER:
        for n, (group, variant, name) in enumerate(GAP_MODELS):
            today = [r for r in reported(records, group, variant, task) if not slice_note(r)]
            if n and not today:
                continue
            rows = [(label, chosen_records([r for r in old if r["task"] == task], group, variant, task))
                    for label, old in before.items()] + [(current_slice(task), today)]
            for label, runs in rows:
                if runs:
                    held, dev = slice_gap(runs)
                    lines.append(f"| {task} | {name} | {selection.selection_name(task)} | {label} | {len(runs)} | "
                                 f"{held:.2f} | {dev:.2f} | {held - dev:+.2f} |")
    return "\n".join(lines)


def load_before(folder, records):
    """{label: records} of the slices of single rows: those set aside in the folders ``BEFORE`` names under
    ``folder``, and those of ``records`` not yet run again on today's slice (with the first label)."""
    before = {label: load_records(Path(folder) / sub) for sub, label in BEFORE.items() if (Path(folder) / sub).is_dir()}
    first = next(iter(BEFORE.values()))
    before[first] = before.get(first, []) + [r for r in records if slice_note(r)]
    return before


# ---- the calibrated decision (DESIGN §9.3): how far the shift chosen on held-out moved it ---------------------
def calibration_table(records):
    """Per classification task, the grid's chosen BEExformer runs that hold a calibration: the shift of each class's
    logit (against class 0) and the held-out selection score before and after it, means over seeds."""
    lines = ["| task | seeds | logit shift per class (mean ± std over seeds) | held-out before | held-out after |",
             "|---|---:|---|---:|---:|"]
    for task in TASK_ORDER:
        runs = [r for r in reported(records, "grid", "beexformer", task) if r.get("calibration")]
        if not runs:
            continue
        shifts = np.array([r["calibration"]["shift"] for r in runs])               # (seeds, classes)
        shift = ", ".join(mean_std(Stat(m, sd if len(runs) > 1 else np.nan, len(runs)))
                          for m, sd in zip(shifts.mean(0)[1:], shifts.std(0, ddof=min(1, len(runs) - 1))[1:]))
        before, after = (100 * np.mean([r["calibration"][k] for r in runs]) for k in ("score_before", "score_after"))
        lines.append(f"| {task} | {len(runs)} | {shift} | {before:.2f} | {after:.2f} |")
    return "\n".join(lines)


# ---- issue 25's targets: dev, mean over three seeds, every choice on the held-out slice ---------------------
TARGETS = dict(sst2=[("accuracy", 83.0)], cola=[("mcc", 17.5)], mrpc=[("accuracy", 68.4), ("f1", 81.2)],
               stsb=[("pearson", 70.0)], rte=[("accuracy", 52.7)])


def target_rows(records, task):
    """(label, runs, {metric: mean dev × 100 at full depth}) of every HONEST_ROWS model of ``task`` with three
    seeds (or more) chosen on the current slice."""
    rows = []
    for group, variant, label in HONEST_ROWS:
        runs = reported(records, group, variant, task)
        if len(runs) >= 3 and not slice_note(runs[0]):
            rows.append((label, runs, {m: 100 * float(np.mean(full_depth(runs, m))) for m, _ in TARGETS[task]}))
    return rows


def shortfall(means, task):
    """How far a row is below its targets: the largest gap (0 when every target is met)."""
    return max(max(0.0, target - means[m]) if np.isfinite(means[m]) else np.inf for m, target in TARGETS[task])


def heldout_pick(rows):
    """The row of ``rows`` (``target_rows``) that held-out alone picks: the best mean held-out score over its
    seeds.  Dev takes no part, so this, not the closest row, is the honest reading of what the project reaches."""
    return max(rows, key=lambda row: (np.mean([heldout_score(r) for r in row[1]]), row[0]))


def targets_table(records):
    """Per task: the targets, the BEExformer chosen on held-out, the row closest to the targets among the models
    with three seeds on the current slice (picked on dev, so an optimistic reading), and the row held-out picks
    among the same (``heldout_pick``)."""
    lines = ["| task | target (dev × 100, 3 seeds) | BEExformer | closest row (picked on dev) | its dev | short by | "
             "held-out's pick (best mean held-out score) | its dev | short by |",
             "|---|---|---:|---|---:|---:|---|---:|---:|"]
    cell = lambda means: " / ".join(f"{m} {means[m]:.2f}" for m in means)          # noqa: E731
    short = lambda means: "met" if shortfall(means, task) == 0 else f"{shortfall(means, task):.2f}"  # noqa: E731
    for task, targets in TARGETS.items():
        rows = target_rows(records, task)
        if not rows:
            continue
        base = next((means for label, _, means in rows if label == "BEExformer"), None)
        label, _, means = min(rows, key=lambda row: shortfall(row[2], task))
        picked, _, picked_means = heldout_pick(rows)
        lines.append(f"| {task} | {' and '.join(f'{m} ≥ {t:g}' for m, t in targets)} | "
                     f"{cell(base) if base else '–'} | {label} | {cell(means)} | {short(means)} | "
                     f"{picked} | {cell(picked_means)} | {short(picked_means)} |")
    return "\n".join(lines)


# ---- from-scratch reference points: our bag-of-words baseline and published figures ------------------------
# Published dev figures (× 100) of models trained on each task's data alone, as issue 25 quotes them: the GPT-1
# paper's "Transformer w/o pre-training" (12 layers, width 768, BPE) and the GLUE paper's single-task BiLSTM,
# whose words are GloVe vectors.  Both were picked on dev, so they are optimistic beside runs chosen on held-out.
PUBLISHED = [("GPT-1 paper, Transformer w/o pre-training", "no", dict(sst2="84.0", cola="18.9", mrpc="79.4 (F1)",
                                                                      stsb="30.9", rte="53.8")),
             ("GLUE paper, single-task BiLSTM", "yes (GloVe)", dict(sst2="87.5", cola="17.6", mrpc="85.1 / 77.9",
                                                                   stsb="71.6", rte="58.5"))]
REFERENCE_TASKS = ["sst2", "cola", "mrpc", "stsb", "rte", "wnli"]


def metrics_cell(metrics, task):
    """The main metric × 100, MRPC's as F1 / accuracy."""
    return (f"{pct(metrics['f1'])} / {pct(metrics['accuracy'])}" if task == "mrpc"
            else pct(metrics[get_task(task).main_metric]))


def reference_table(records, baselines):
    """Per task: the BEExformer chosen on held-out rows, the TF-IDF baseline (``experiments/baseline_tfidf.py``),
    the published from-scratch figures, and the majority class; MRPC as F1 / accuracy."""
    lines = ["| task | model | pretrained vectors? | chosen on | dev × 100 |", "|---|---|---|---|---:|"]
    for task in REFERENCE_TASKS:
        runs = reported(records, "grid", "beexformer", task)
        if runs:
            mean = {k: float(np.mean([r["dev_full_depth"][k] for r in runs])) for k in runs[0]["dev_full_depth"]}
            lines.append(f"| {task} | BEExformer (this project, mean of {seeds_text(len(runs))}) | no | held-out "
                         f"slice{slice_note(runs[0])} | {metrics_cell(mean, task)} |")
        for b in (b for b in baselines if b["task"] == task and b["selection"]["unit"] == current_slice(task)):
            lines.append(f"| {task} | {b['model']} (this project; n-grams 1..{b['point']['ngrams']}, strength "
                         f"{b['point']['strength']:g}) | no | held-out slice | "
                         f"{metrics_cell(b['dev_full_depth'], task)} |")
        for name, vectors, figures in PUBLISHED:
            if task in figures:
                lines.append(f"| {task} | {name} | {vectors} | dev | {figures[task]} |")
        lines.append(f"| {task} | majority class | no | – | {majority_cell(task)} |")
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
            exits = " ".join(f"{100 * x:.1f}" for x in per_exit_mean(runs))
            early = (f"{spread(early_exit(runs))}, "
                     f"{np.mean([r['early_exit']['mean_exit_block'] for r in runs]):.2f}, "
                     f"{100 * np.mean([r['flops']['cut'] for r in runs]):.1f}%")
            lines.append(f"| {task} | {label} | {spread(full_depth(runs))} | {exits} | {early} | "
                         f"{np.mean([r['flops']['full'] for r in runs]) / 1e6:.2f} | "
                         f"{np.mean([r.get('size_ratio', np.nan) for r in runs]):.2f}× |")
    if len(lines) == 2:
        lines.append("| – | no run recorded yet (`python experiments/run.py --only " + group + "`) | | | | | |")
    return "\n".join(lines)


def matched_runs(records, task):
    """The grid's chosen BEExformer runs on ``task`` that hold every criterion's choice at matched FLOPs."""
    return [r for r in reported(records, "grid", "beexformer", task) if r.get("matched")]


def criterion_choices(runs, name):
    """Each run's choice for criterion ``name`` at matched FLOPs (threshold chosen on held-out, "report" its dev
    row, None when no threshold fits the budget); [] when the task has no such criterion (regression)."""
    return [c for r in runs for c in r["matched"]["criteria"] if c["criterion"] == name]


def within_budget(choices):
    """Whether every run found a threshold within the fractional rule's FLOPs budget."""
    return all(c["report"] is not None for c in choices)


def matched_heldout_table(records):
    """Every criterion at the fractional rule's FLOPs, each threshold chosen on the held-out rows, dev reported."""
    lines = ["| task | fractional δ (FLOPs cut on held-out) | " + " | ".join(CRITERIA) + " |",
             "|---|---:|" + "---:|" * len(CRITERIA)]
    for task in TASK_ORDER:
        runs = matched_runs(records, task)
        if not runs:
            continue
        cells = []
        for name in CRITERIA:
            got = criterion_choices(runs, name)
            if not got:
                cells.append("–")                                   # regression: the relative-change rule only
            elif not within_budget(got):
                cells.append("no threshold within budget")
            else:
                cells.append(f"{spread([c['report']['metric'] for c in got])}, cut "
                             f"{100 * np.mean([c['report']['flops_cut'] for c in got]):.1f}%")
        frac = criterion_choices(runs, "fractional")
        budget = "/".join(f"{c['threshold']:g}" for c in frac)
        cut = 100 * np.mean([c["selection"]["flops_cut"] for c in frac])
        lines.append(f"| {task} | {budget} ({cut:.1f}%) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---- the figures' numbers: each function returns what its figure plots, all from records ---------------
def depth_points(records):
    """The depth study, one dict per depth (blocks ascending; the grid's chosen BEExformer among them): task,
    metric, blocks, dev at full depth and at the early exit (Stats over seeds), and dev at each exit (mean over
    seeds, × 100; shape (blocks,)).  [] while no depth variant has a run (the grid's model alone is no study)."""
    (task,) = DEPTH["tasks"]
    rows = study_rows(records, task, DEPTH["group"], DEPTH["variants"], DEPTH["base_label"])
    if not any(runs for _, runs in rows[1:]):
        return []
    points = [dict(task=task, metric=runs[0]["metric"], blocks=runs[0]["model_config"]["blocks"],
                   full=seed_stat(full_depth(runs)), early=seed_stat(early_exit(runs)),
                   per_exit=100 * per_exit_mean(runs)) for _, runs in rows if runs]
    return sorted(points, key=lambda p: p["blocks"])


def gate_bars(records):
    """The gate study, one panel per task with runs: task, metric, and bars [(label, Stat of dev at full depth)],
    "all three gates" (the grid's chosen BEExformer) first, variants without a run left out.  [] while no gate
    variant has a run."""
    panels = []
    for task in GATES["tasks"]:
        rows = study_rows(records, task, GATES["group"], GATES["variants"], GATES["base_label"])
        bars = [(label, seed_stat(full_depth(runs))) for label, runs in rows if runs]
        if bars:
            metric = next(runs for _, runs in rows if runs)[0]["metric"]
            panels.append(dict(task=task, metric=metric, bars=bars))
    has_variant = any(label != GATES["base_label"] for p in panels for label, _ in p["bars"])
    return panels if has_variant else []


def criteria_bars(records):
    """Exit criteria at matched FLOPs (the numbers of ``matched_heldout_table``), one panel per task: task,
    metric, bars [(criterion, Stat of its dev metric, or None: no threshold within budget)] (a criterion the
    task lacks is left out), and ``full``, the Stat of the same runs' dev metric at full depth."""
    panels = []
    for task in TASK_ORDER:
        runs = matched_runs(records, task)
        if not runs:
            continue
        bars = [(name, seed_stat([c["report"]["metric"] for c in got]) if within_budget(got) else None)
                for name, got in ((name, criterion_choices(runs, name)) for name in CRITERIA) if got]
        panels.append(dict(task=task, metric=runs[0]["metric"], bars=bars, full=seed_stat(full_depth(runs))))
    return panels


# ---- drawing: each function draws numbers it is given, nothing else ------------------------------------
def task_panels(n, width, height):
    """A Figure of ``n`` panels, at most three a row (spare ones hidden); returns (figure, the n axes)."""
    from matplotlib.figure import Figure        # no pyplot: leaves the caller's backend alone
    cols = min(3, n)
    rows = -(-n // cols)
    fig = Figure(figsize=(max(width * cols, 6.4), height * rows))     # room for a title over one panel
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def error(stat):
    """A Stat's error bar: its std, none (0) for a single seed."""
    return 0.0 if np.isnan(stat.std) else stat.std


def draw_bars(ax, bars, colors):
    """Onto ``ax``: a bar per (label, Stat), mean with std over seeds as error bar, the mean and the number of
    seeds written above it; a None Stat writes "no threshold within budget" in its bar's place."""
    for x, (label, stat) in enumerate(bars):
        if stat is None:
            ax.text(x, 0, "no threshold\nwithin budget", ha="center", va="bottom", fontsize=7)
            continue
        ax.bar(x, stat.mean, yerr=error(stat) or None, capsize=4, color=colors[label], width=0.7)
        ax.annotate(f"{stat.mean:.1f}\n{seeds_text(stat.seeds)}", (x, max(stat.mean + error(stat), 0)),
                    textcoords="offset points", xytext=(0, 2), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(bars)))
    ax.set_xticklabels([label for label, _ in bars], rotation=20, ha="right", fontsize=8)
    ax.axhline(0, color="black", lw=0.6)
    ax.margins(y=0.18)                                              # room for the text above the bars
    ax.grid(axis="y", alpha=0.3)


def draw_depth(points, path):
    """Left: dev at full depth and at the early exit against the number of blocks (mean, std over seeds);
    right: dev at each exit, a line per depth.  Saved to ``path``."""
    fig, (left, right) = task_panels(2, 5.4, 4.0)
    task, metric = points[0]["task"], points[0]["metric"]
    blocks = [p["blocks"] for p in points]
    for key, label, marker in (("full", "full depth", "o"), ("early", "early exit (δ chosen on held-out)", "s")):
        left.errorbar(blocks, [p[key].mean for p in points], yerr=[error(p[key]) for p in points],
                      marker=marker, capsize=4, label=label)
    left.set_xticks(blocks)
    left.set_xticklabels([f"{p['blocks']}\n({seeds_text(p['full'].seeds)})" for p in points], fontsize=8)
    left.set_xlabel("blocks")
    left.set_ylabel(f"{task} dev {metric} × 100")
    left.set_title(f"{task}: dev {metric} vs. depth\n(mean ± std over seeds)", fontsize=10)
    left.legend(fontsize=8)
    for p in points:
        right.plot(range(1, len(p["per_exit"]) + 1), p["per_exit"], marker="o", ms=3, label=f"{p['blocks']} blocks")
    right.set_xlabel("exit (after block)")
    right.set_ylabel(f"{task} dev {metric} × 100")
    right.set_title(f"{task}: dev {metric} at each exit\n(mean over seeds, one line per depth)", fontsize=10)
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def draw_gates(panels, path):
    """A panel per task: a bar per gate variant (dev at full depth, mean ± std over seeds).  Saved to ``path``."""
    colors = {label: f"C{i}" for i, label in enumerate([GATES["base_label"]] + GATES["variants"])}
    fig, axes = task_panels(len(panels), 4.4, 3.8)
    for ax, p in zip(axes, panels):
        draw_bars(ax, p["bars"], colors)
        ax.set_ylabel(f"dev {p['metric']} × 100, full depth")
        ax.set_title(f"{p['task']}: the SLFN's gates\n(dev {p['metric']}, mean ± std over seeds)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def draw_criteria(panels, path):
    """A panel per task: a bar per exit criterion at matched FLOPs (dev, mean ± std over seeds) and the same
    runs' dev at full depth as a dashed line (its std a band).  Saved to ``path``."""
    colors = {name: f"C{i}" for i, name in enumerate(CRITERIA)}
    fig, axes = task_panels(len(panels), 4.0, 3.8)
    for ax, p in zip(axes, panels):
        draw_bars(ax, p["bars"], colors)
        full = p["full"]
        ax.axhline(full.mean, color="gray", ls="--", lw=1, label="full depth (dev; mean, band ± std over seeds)")
        if error(full):
            ax.axhspan(full.mean - full.std, full.mean + full.std, color="gray", alpha=0.15, lw=0)
        ax.set_xlim(-0.6, len(CRITERIA) - 0.4)                     # the same bar width in every panel
        ax.set_ylabel(f"dev {p['metric']} × 100")
        ax.set_title(f"{p['task']}: dev {p['metric']} at the fractional rule's FLOPs", fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", fontsize=8)
    fig.suptitle("Exit criteria at matched FLOPs\n(each threshold chosen on the held-out slice; dev, mean ± std "
                 "over seeds)", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    save_figure(fig, path, dpi=110)


# ---- figures: the numbers, drawn when there are any; each returns what it drew ([]: no figure written) -----
def accuracy_flops_figure(records, path):
    """One panel per task: the BEExformer's sweep (every criterion, full depth a star) and the twin's
    full-depth metric as a dashed line.  Returns the tasks drawn (none: no figure written)."""
    from beexnp.sweep import draw_rows

    pairs = [(find(records, t, "beexformer"), find(records, t, "full_precision")) for t in TASK_ORDER]
    pairs = [(bx, fp) for bx, fp in pairs if bx and len(bx["sweep"]) > 1]
    if not pairs:
        return []
    fig, axes = task_panels(len(pairs), 4.6, 3.6)
    for ax, (bx, fp) in zip(axes, pairs):
        m = bx["metric"]
        draw_rows(ax, bx["sweep"], m, f"{bx['task']} (seed {bx['seed']})", chosen=chosen_row(bx))
        if fp:
            ax.axhline(fp["dev_full_depth"][m], color="gray", ls="--", lw=1, label="full-precision twin")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    save_figure(fig, path, dpi=110)
    return [bx["task"] for bx, _ in pairs]


def depth_figure(records, path):
    """The depth study (SST-2) to ``path``; returns the depths drawn."""
    points = depth_points(records)
    if points:
        draw_depth(points, path)
    return [p["blocks"] for p in points]


def gates_figure(records, path):
    """The SLFN gate study to ``path``; returns the tasks drawn."""
    panels = gate_bars(records)
    if panels:
        draw_gates(panels, path)
    return [p["task"] for p in panels]


def criteria_figure(records, path):
    """Exit criteria at matched FLOPs, chosen on held-out, to ``path``; returns the tasks drawn."""
    panels = criteria_bars(records)
    if panels:
        draw_criteria(panels, path)
    return [p["task"] for p in panels]


def draw_figures(folder):
    """Every figure with something to draw, written into ``folder`` as NAME.png; returns {name: path} of those."""
    honest, by_dev = selected(load_records(folder))
    figures = {"accuracy_flops": (accuracy_flops_figure, by_dev), "depth": (depth_figure, honest),
               "gates": (gates_figure, honest), "criteria": (criteria_figure, honest)}
    written = {}
    for name, (figure, records) in figures.items():
        path = Path(folder) / f"{name}.png"
        if figure(records, path):
            written[name] = path
    return written


def figure_link(links, name, description):
    """[the markdown image of figure ``name``] when it was drawn (``links`` holds its link), else []."""
    return [f"![{description}]({links[name]})"] if name in links else []


def build(folder, links=None):
    """The tables as markdown; ``links`` ({figure name: link}, those drawn) puts each figure under its table."""
    folder, links = Path(folder), links or {}
    honest, records = selected(load_records(folder))                   # held-out first, then the runs chosen on dev
    skipped = read_skipped(folder)
    parts = []
    baselines = load_records(folder / "baselines") if (folder / "baselines").is_dir() else []
    if honest or baselines:
        parts += ["### From-scratch reference points (dev; the published figures were picked on dev)",
                  reference_table(honest, baselines)]
    if honest:
        parts += [
            "### Every choice on the held-out slice (epoch, grid point, δ), dev scored once (metric × 100)",
            honest_table(honest),
            "### The held-out slice against dev: single rows before issue 25, groups of near-duplicate rows (SST-2: "
            "sentences) after (the grid's BEExformer, each slice's chosen point; the selection score, × 100)",
            gap_table(honest, load_before(folder, honest)),
            "### The calibrated decision: the logit shift chosen on held-out (DESIGN §9.3) and the held-out score it "
            "moved (after: on the rows it was chosen on, so optimistic), the grid's BEExformer", calibration_table(honest),
            "### Issue 25's targets: the BEExformer, the closest of the rows above with three seeds on the current "
            "slice (picked on dev, so optimistic), and the one held-out picks among them (full depth)",
            targets_table(honest),
            "### Depth (SST-2; the grid's chosen BEExformer has 6 blocks)", study_table(honest, **DEPTH),
            *figure_link(links, "depth", "SST-2 dev metric at full depth and at the early exit vs. number of "
                                         "blocks (mean ± std over seeds), and dev per exit, one line per depth"),
            "### The SLFN's gates (the grid's chosen BEExformer has all three)", study_table(honest, **GATES),
            *figure_link(links, "gates", "dev metric at full depth per gate variant and task, mean ± std over seeds"),
            "### Exit criteria at matched FLOPs, thresholds chosen on the held-out slice, dev reported",
            matched_heldout_table(honest),
            *figure_link(links, "criteria", "dev metric of each exit criterion at the fractional rule's FLOPs, "
                                            "mean ± std over seeds, full depth dashed")]
    parts += [
        "### Earlier runs, every choice made on dev (optimistic): main table (GLUE dev; metric × 100)",
        main_table(records, skipped),
        "### Earlier runs, chosen on dev: ablations", ablation_table(records),
        "### Earlier runs, chosen on dev: exit criteria at matched FLOPs (best dev metric within the fractional "
        "rule's budget; threshold and mean MFLOPs per input in brackets)", matched_flops_table(records)]
    if "accuracy_flops" in links:
        parts += ["### Earlier runs, chosen on dev: accuracy vs. FLOPs per task (dev; every criterion over its "
                  "threshold grid, the BEExformer at full depth a star, the full-precision twin's full-depth metric "
                  "dashed)", *figure_link(links, "accuracy_flops", "dev metric vs. mean inference MFLOPs per input, "
                                                                 "one panel per task")]
    return "\n\n".join(parts) + "\n"


# ---- the short summary for README.md: one table and the paper's three claims, one line each ----------------
PAPER_SIZE_RATIO, PAPER_FLOPS_CUT = 21.30, 0.5208          # the paper's claims 1 and 2 (DESIGN §7)


def grid_runs(records):
    """{task: the grid's chosen BEExformer runs (one per seed)} for every task that has them, in TASK_ORDER."""
    found = {task: reported(records, "grid", "beexformer", task) for task in TASK_ORDER}
    return {task: runs for task, runs in found.items() if runs}


OLD_SLICE_MARK = "†"
OLD_SLICE_NOTE = ("† chosen on the held-out slice of single rows, before issue 25's groups of near-duplicate rows "
                  "(DESIGN §9.1), and not yet run again on the groups.")


def marked(cell, runs):
    """``cell``, with OLD_SLICE_MARK when its runs were chosen on a held-out slice DESIGN §9.1 has since replaced."""
    return cell + OLD_SLICE_MARK if runs and slice_note(runs[0]) else cell


def summary_table(records):
    """Per task: the twin and the BEExformer at its held-out-chosen point, dev at full depth and under early
    exit (mean ± std over seeds), the FLOPs cut and the size ratio; a cell chosen on an old slice is marked."""
    lines = ["| task | metric | majority class | full-precision twin | BEExformer, full depth | "
             "BEExformer, early exit | FLOPs cut | size ratio |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for task, runs in grid_runs(records).items():
        twin = reported(records, "twin", "twin", task)
        twin_cell = marked(mean_std(seed_stat(full_depth(twin))), twin) if twin else "–"
        lines.append(f"| {task} | {runs[0]['metric']} | {majority_cell(task)} | {twin_cell} | "
                     f"{marked(mean_std(seed_stat(full_depth(runs))), runs)} | "
                     f"{marked(mean_std(seed_stat(early_exit(runs))), runs)} | "
                     f"{100 * np.mean([r['flops']['cut'] for r in runs]):.1f}% | "
                     f"{np.mean([r['size_ratio'] for r in runs]):.2f}× |")
    if any(OLD_SLICE_MARK in line for line in lines):
        lines += ["", OLD_SLICE_NOTE]
    return "\n".join(lines)


def value_range(values, form="{:.2f}"):
    """'1.52', or '1.52–5.01' for values that differ (each written with ``form``)."""
    low, high = form.format(min(values)), form.format(max(values))
    return low if low == high else f"{low}–{high}"


def size_claim(records, by_dev):
    """Claim 1, the size ratio: the held-out runs (real embeddings) per task, and the binarized-embedding runs
    (ablations chosen on dev)."""
    real = [np.mean([r["size_ratio"] for r in runs]) for runs in grid_runs(records).values()]
    binarized = {r["task"]: r["size_ratio"] for r in by_dev if r["variant"] == "binarized_embeddings"}
    verdict = lambda values: "held" if values and min(values) >= PAPER_SIZE_RATIO else "not held"   # noqa: E731
    parts = [f"{value_range(real)}× with real embeddings ({len(real)} tasks)"]
    if binarized:
        parts.append(f"{value_range(list(binarized.values()))}× with binarized embeddings (earlier runs chosen on "
                     f"dev: {', '.join(sorted(binarized))})")
    return (f"*{PAPER_SIZE_RATIO:.2f}× smaller than the full-precision twin*: {verdict(real)} with real embeddings, "
            f"{verdict(list(binarized.values()))} with binarized ones — " + "; ".join(parts) + ".")


def flops_claim(records):
    """Claim 2, the FLOPs cut of the fractional rule with δ chosen on held-out, per task (mean over seeds)."""
    cuts = {task: np.mean([r["flops"]["cut"] for r in runs]) for task, runs in grid_runs(records).items()}
    met = [t for t, c in cuts.items() if c >= PAPER_FLOPS_CUT]
    return (f"*{100 * PAPER_FLOPS_CUT:.2f}% fewer inference FLOPs with early exit*: met on {len(met)} of "
            f"{len(cuts)} tasks — " + ", ".join(f"{t} {100 * c:.1f}%" for t, c in cuts.items()) + ".")


def accuracy_claim(records):
    """Claim 3, early exit against full depth: the tasks where the mean over seeds rose under early exit, and
    how many of them rose by more than the larger of the two standard deviations over seeds."""
    pairs = {t: (seed_stat(early_exit(r)), seed_stat(full_depth(r))) for t, r in grid_runs(records).items()}
    rose = [t for t, (e, f) in pairs.items() if e.mean > f.mean]
    beyond = [t for t in rose if pairs[t][0].mean - pairs[t][1].mean > np.fmax(pairs[t][0].std, pairs[t][1].std)]
    return (f"*better accuracy with early exit than at full depth*: on {len(rose)} of {len(pairs)} tasks, "
            f"{len(beyond)} of them by more than one standard deviation over seeds — "
            + ", ".join(f"{t} {e.mean:.2f} vs {f.mean:.2f}" for t, (e, f) in pairs.items())
            + " (early exit vs full depth).")


def summary(folder):
    """README's results block: the summary table and the paper's three claims, from the records in ``folder``."""
    honest, by_dev = selected(load_records(folder))
    seeds = [len(runs) for runs in grid_runs(honest).values()]
    return "\n".join([
        f"From scratch (no pretrained weights), {len(seeds)} GLUE tasks, {value_range(seeds, '{}')} seeds each; "
        "every choice (epoch, grid point, δ) made on a held-out slice of the training split, dev scored once; "
        "mean ± std over seeds, metric × 100:", "", summary_table(honest), "",
        "The paper's three claims, measured here:", "",
        f"1. {size_claim(honest, by_dev)}", f"2. {flops_claim(honest)}", f"3. {accuracy_claim(honest)}"]) + "\n"


START, END = "<!-- results tables: written by experiments/tables.py -->", "<!-- end of results tables -->"
SUMMARY_START = "<!-- results summary: written by experiments/tables.py -->"
SUMMARY_END = "<!-- end of results summary -->"


def between_markers(text, start, end):
    """What ``text`` holds between its ``start`` and ``end`` lines (without them); None without both markers, the
    end one after the start one."""
    if start not in text or end not in text.split(start, 1)[1]:
        return None
    return text.split(start, 1)[1].split(end, 1)[0].removeprefix("\n")


def readme_text(path, start, end, flag):
    """The text of the README ``path``, which must hold the ``start`` marker and after it the ``end`` marker; one
    error line (naming ``flag``) otherwise.  Read before anything is written, so that a bad README leaves every
    file as it was."""
    where = f"{flag} {path}"
    try:
        readme = Path(guard_input_file(path, flag)).read_text()       # a FIFO or device (/dev/zero): refused
    except (OSError, UnicodeDecodeError) as err:
        raise problem(f"cannot read the README ({reason(err)})", where,
                      "give a README file that holds the markers") from None
    guard_file(path, flag)                                            # read-only: refused before anything is written
    if between_markers(readme, start, end) is None:
        raise problem(f"the markers {start} and, after it, {end} are missing", where,
                      "add both lines where the block goes")
    return readme


def refresh_readme(path, readme, text, start=START, end=END, flag="--readme"):
    """``readme`` (the text of ``path``, ``readme_text``) with what stands between its ``start`` and ``end``
    markers replaced by ``text``, written to ``path`` (``flag``: the option that named it)."""
    head, rest = readme.split(start, 1)
    write_text(path, head + start + "\n" + text + rest[rest.index(end):], flag)


def relative_links(written, readme):
    """{figure name: its path relative to the folder of ``readme``} of the figures ``written``."""
    folder = Path(readme).resolve().parent
    return {name: Path(os.path.relpath(Path(path).resolve(), folder)).as_posix() for name, path in written.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default="results/experiments")
    p.add_argument("--readme", help="also write the short summary into this file (README.md), between its "
                                    "summary markers")
    p.add_argument("--results-readme", help="also write the full tables into this file (results/README.md), "
                                            "between its results markers")
    args = p.parse_args(argv)
    return guarded(lambda: render(args))


def render(args):
    """Check every input (the records, each README's markers), build every text, then write: a wrong input
    writes nothing, and an empty or mistyped records folder never replaces tables with empty ones."""
    folder = Path(args.results)
    if not folder.is_dir():
        raise problem("not a folder of run records", f"--results {folder}", "give the folder run.py wrote")
    if not load_records(folder):
        raise problem("no run records in the folder", f"--results {folder}",
                      "give the folder run.py wrote its records to (results/experiments)")
    results = args.results_readme and readme_text(args.results_readme, START, END, "--results-readme")
    short = args.readme and readme_text(args.readme, SUMMARY_START, SUMMARY_END, "--readme")
    short_text = summary(folder) if args.readme else None
    written = draw_figures(folder)
    text = build(folder, {name: path.name for name, path in written.items()})
    results_text = build(folder, relative_links(written, args.results_readme)) if args.results_readme else None
    write_text(folder / "TABLES.md", text, "--results")
    if args.results_readme:
        refresh_readme(args.results_readme, results, results_text, flag="--results-readme")
    if args.readme:
        refresh_readme(args.readme, short, short_text, SUMMARY_START, SUMMARY_END, "--readme")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
