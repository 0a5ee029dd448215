"""Run the experiments of the results table: train, sweep delta on dev, evaluate, measure size.

    python experiments/run.py                      # every run in experiments/runs.json
    python experiments/run.py --only main ablation-sst2
    python experiments/run.py --fast               # the whole pipeline on tiny slices, in minutes (CI)

Each run writes one record, ``results/experiments/<name>.json``: task, variant,
seed, dev metrics at full depth (the last exit) and at the best exit, early
exit at the dev-chosen delta (metric, mean exit block, FLOPs full / early),
packed size and ratio to the full-precision twin, training wall time.  A run
whose record exists is skipped (delete the record to redo it); an interrupted
training resumes from its last checkpoint.  ``experiments/tables.py`` turns the
records into the README's tables.
"""
import argparse
import json
import sys
import time
from pathlib import Path

from beexnp.checkpoint import has_checkpoint
from beexnp.config import TrainConfig
from beexnp.evaluate import evaluate_checkpoint
from beexnp.glue import get_task
from beexnp.glue.location import find_glue_dir
from beexnp.sweep import choose, run_sweep
from beexnp.train import Trainer

HERE = Path(__file__).resolve().parent
FAST_MODEL = dict(token_dim=24, position_dim=8, heads=2, blocks=3)
FAST_TRAIN = dict(epochs=1, train_subset=300, dev_subset=100, batch_size=32)


def expand(spec):
    """The runs of one group in runs.json: one per task x variant x seed."""
    for task in spec["tasks"]:
        for variant, overrides in spec["variants"].items():
            for seed in spec.get("seeds", [0]):
                yield dict(name=f"{task}-{variant}-seed{seed}", group=spec["group"], task=task, variant=variant,
                           seed=seed, model=dict(spec.get("model", {}), **overrides.get("model", {})),
                           train=dict(spec.get("train", {}), **spec.get("task_train", {}).get(task, {}),
                                      **overrides.get("train", {})))


def available(task, glue_dir):
    """None if the task's training split is here, else the reason it is not."""
    t = get_task(task)
    try:
        folder = find_glue_dir(glue_dir, task)
    except (FileNotFoundError, ValueError):
        return f"no {t.dir} folder in the GLUE directory"
    if not (Path(folder) / t.dir / t.splits["train"]).exists():
        return f"{t.dir}/{t.splits['train']} is not in the GLUE directory used"
    return None


def run_one(run, out_root, glue_dir, fast):
    """Train (or resume), sweep, evaluate and size one run; returns its record."""
    model = dict(run["model"], **(FAST_MODEL if fast else {}))
    train = dict(run["train"], task=run["task"], seed=run["seed"], **(FAST_TRAIN if fast else {}))
    folder = out_root / "runs" / run["name"]
    start = time.perf_counter()
    if has_checkpoint(folder / "last"):             # a previous attempt: resume it, or take it if it finished
        trainer = Trainer.resume(folder / "last", glue_dir=glue_dir, progress=False)
    else:
        trainer = Trainer(TrainConfig.from_dict(train), model, folder, glue_dir=glue_dir, progress=False)
    if not trainer.state.get("finished"):
        trainer.fit()
    history = json.loads((folder / "history.json").read_text())
    best = folder / "best"
    limit = train.get("dev_subset")
    sweep, _, _ = run_sweep(best, folder / "sweep", glue_dir=glue_dir, limit=limit)
    chosen = choose(sweep["rows"])
    report = evaluate_checkpoint(best, glue_dir=glue_dir, criterion="fractional", delta=chosen["threshold"],
                                 limit=limit, timing=not fast, single_limit=200)
    metric = report["main_metric"]
    record = dict(name=run["name"], group=run["group"], task=run["task"], variant=run["variant"], seed=run["seed"],
                  fast=fast, metric=metric, model_config=trainer.model_config.to_dict(), train_config=train,
                  dev_full_depth=report["per_exit"][-1], dev_per_exit=report["per_exit"],
                  best_exit=1 + max(range(len(report["per_exit"])), key=lambda i: report["per_exit"][i][metric]),
                  early_exit=dict(criterion="fractional", delta=chosen["threshold"], metrics=report["early_exit"],
                                  mean_exit_block=report["mean_exit_block"],
                                  exit_histogram=report["exit_histogram"]),
                  flops=report["flops"], wall_clock=report.get("wall_clock"), sweep=sweep["rows"],
                  train_seconds=history[-1]["seconds"], epochs_run=len(history),
                  run_seconds=time.perf_counter() - start)
    record.update(size_record(best))
    return record


def size_record(folder):
    """Packed bytes of the run's model and the ratio to its full-precision twin (if the size module is here)."""
    try:
        from beexnp.size import checkpoint_size_report
    except ImportError:
        return {}
    variants = checkpoint_size_report(folder)["variants"]
    own = next(v for v in variants if v["binarize_embeddings"] == json.loads(
        (Path(folder) / "checkpoint.json").read_text())["model_config"]["binarize_embeddings"])
    return dict(packed_bytes=own["total"], twin_bytes=own["twin_total"], size_ratio=own["ratio"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="*", help="groups or run names to run (default: all)")
    p.add_argument("--fast", action="store_true", help="tiny slices and models: checks the pipeline end to end")
    p.add_argument("--results", default=None, help="records folder (default: results/experiments, or "
                                                   "results/experiments-fast with --fast)")
    p.add_argument("--glue-dir", help="GLUE folder (default: $GLUE_DIR, then data/glue)")
    p.add_argument("--runs", default=str(HERE / "runs.json"), help="the experiment list")
    args = p.parse_args(argv)
    out_root = Path(args.results or ("results/experiments-fast" if args.fast else "results/experiments"))
    out_root.mkdir(parents=True, exist_ok=True)
    runs = [r for spec in json.loads(Path(args.runs).read_text()) for r in expand(spec)]
    if args.only:
        runs = [r for r in runs if r["group"] in args.only or r["name"] in args.only]
    skipped = {}
    for run in runs:
        record_path = out_root / f"{run['name']}.json"
        if record_path.exists():
            print(f"{run['name']}: done already ({record_path})")
            continue
        reason = available(run["task"], args.glue_dir)
        if reason:
            skipped[run["name"]] = reason
            print(f"{run['name']}: skipped, {reason}")
            continue
        print(f"{run['name']}: training ...", flush=True)
        record = run_one(run, out_root, args.glue_dir, args.fast)
        record_path.write_text(json.dumps(record, indent=1))
        e = record["early_exit"]
        print(f"{run['name']}: {record['metric']} full depth {record['dev_full_depth'][record['metric']]:.4f}, "
              f"early exit {e['metrics'][record['metric']]:.4f} (delta {e['delta']}, "
              f"{100 * record['flops']['cut']:.1f}% FLOPs cut), {record['train_seconds']:.0f}s", flush=True)
    if skipped:
        (out_root / "skipped.json").write_text(json.dumps(skipped, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
