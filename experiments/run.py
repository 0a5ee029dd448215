"""Run the experiments of the results tables: train, sweep delta, evaluate, measure size.

    python experiments/run.py                      # every run in experiments/runs.json
    python experiments/run.py --only main ablation-sst2
    python experiments/run.py --only grid --tasks sst2 cola --seeds 0
    python experiments/run.py --fast               # the whole pipeline on tiny slices, in minutes (CI)
    python experiments/run.py --jobs 2             # two runs side by side, one BLAS thread each

Each run writes one record, ``results/experiments/<name>.json``: task, variant,
seed, dev metrics at full depth (the last exit) and at the best exit, early
exit at the chosen delta (metric, mean exit block, FLOPs full / early),
packed size and ratio to the full-precision twin, training wall time.  A run
whose record exists is skipped; delete the record to evaluate its finished
training again, and its run folder ``runs/<name>`` too to train it again.  An
interrupted training resumes from its last checkpoint, and a run folder trained
with other settings than the run declares now is refused, never reported under
the new ones.  ``experiments/runs.json`` and the records are checked before
anything runs (``declarations.load_runs``, ``records.read_records``): a mistake
in either is one ``error:`` line.  ``experiments/tables.py`` turns the
records into the tables of results/README.md and README's summary.

Honest selection (DESIGN §9.1).  A group whose ``train`` sets
``"select_on": "heldout"`` makes every choice on the held-out training rows,
stored in ``experiments/heldout/<task>.json`` (written on first use, checked
before every run): the epoch, delta (and every criterion's threshold at
matched FLOPs, ``record["matched"]``), and across runs:

* ``"grid": {"train.lr": [...], "model.dropout": [...]}`` expands every
  variant into one run per grid point (named ``<task>-<variant>-<point>-seed<s>``).
  Every point runs with seed 0 (``selection.SELECTION_SEED``), and the point whose
  seed-0 run has the best held-out score is chosen (``chosen_point``); the other
  seeds run at the chosen point only, to measure its spread;
* ``"from_best": {"group": G, "variant": V}`` gives a run the chosen point of
  group G's variant V (``chosen_point``); it waits until every seed-0 run of
  that grid has its record;
* ``"teacher": {"group": G, "variant": V}`` distils from the run of group G's
  variant V (at its chosen point) with the same seed (its ``best`` checkpoint);
  it waits for that run.

Dev is scored once per run, at the end, and never chooses anything.

A record names the held-out slice it was selected on (``record["selection"]["unit"]``, see
``selection.slice_of``).  A record (and its run folder) from a slice DESIGN §9.1 has since replaced is moved
to ``<results>/old-slices/<unit>/`` and the run is done again on the current slice: the two never mix.

``--jobs N`` runs N runs side by side, each a subprocess of this script (``--only NAME``) with one BLAS
thread (OMP/OPENBLAS/MKL_NUM_THREADS=1, as every run has: ``ONE_THREAD``) and its output in
``<results>/logs/NAME.log``; a run that waits for others (``from_best``, ``teacher``) starts as soon as they
have their records, and every finished run prints one line: what it scored and how many runs are done,
running, waiting and left.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

# Every run has one BLAS thread, however it is started: a matrix product split over threads may sum in another
# order, and a binarized model can carry a last-bit difference into its signs and a later epoch, so a run's
# scores can depend on its thread count.  With one thread everywhere, ``--jobs 1`` (runs in this process) scores
# as the subprocesses of ``--jobs 2`` do, on the same machine and install (another CPU's BLAS kernels, or another
# release, may round otherwise).  Set before numpy loads its BLAS; a variable you set yourself is kept.
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
if __name__ == "__main__":
    for _name, _value in ONE_THREAD.items():
        os.environ.setdefault(_name, _value)

import numpy as np  # noqa: E402  (after the thread count is set)

from beexnp.calibration import CARD_KEY
from beexnp.checkpoint import OutputInUse, has_checkpoint, read_card
from beexnp.cli import guarded, positive_int
from beexnp.config import RESUME_OVERRIDES, TrainConfig, as_trained, model_config_for, resume_conflicts
from beexnp.evaluate import evaluate_checkpoint
from beexnp.glue import get_task, selection_score
from beexnp.glue.heldout import ensure_heldout_file, unit_name
from beexnp.glue.location import find_glue_dir
from beexnp.outputs import UserError, guard_folder, problem, write_text
from beexnp.mlm import MASK_RATE
from beexnp.pretrain import Pretrainer, load_encoder
from beexnp.sweep import run_sweep
from beexnp.train import Trainer
from declarations import load_runs, with_settings
from records import read_records, write_skipped
from selection import SELECTION_SEED, choose_point, heldout_score, slice_of

HERE = Path(__file__).resolve().parent
FAST_MODEL = dict(token_dim=24, position_dim=8, heads=2, blocks=3)
FAST_TRAIN = dict(epochs=1, train_subset=300, dev_subset=100, batch_size=32)


class NotChosen(LookupError):
    """A grid run of a seed other than the selection seed at a point that was not chosen: it is not run."""


def current_record(records, run):
    """``run``'s record if it has one selected on the slice the run is declared with now (``run_slice``), else
    None.  The one guard of every choice: a record of a replaced slice, not yet set aside, never chooses a grid
    point nor stands for a teacher."""
    record = records.get(run["name"])
    now = run_slice(run)
    return record if record is not None and (now is None or slice_of(record) == now) else None


def chosen_point(runs, records, group, variant, task):
    """(grid point, its settings) of ``group``'s ``variant`` on ``task`` with the best held-out score of its
    selection-seed run; raises LookupError (why) while one of those runs has no record on the current slice."""
    grid = [r for r in runs if (r["group"], r["variant"], r["task"]) == (group, variant, task)
            and r["seed"] == SELECTION_SEED]
    if not grid:
        raise LookupError(f"no run of group {group!r}, variant {variant!r} on {task} with seed {SELECTION_SEED} "
                          "is declared")
    missing = [r["name"] for r in grid if current_record(records, r) is None]
    if missing:
        raise LookupError(f"waits for {len(missing)} run(s) of group {group!r} ({missing[0]}, ...)")
    scores = {}
    for r in grid:
        scores[r["point"]] = heldout_score(records[r["name"]])
        if scores[r["point"]] is None:
            raise LookupError(f"{r['name']} was not selected on the held-out rows: it cannot choose a grid point")
    best = choose_point([r["point"] for r in grid], scores)
    return best, next(r["settings"] for r in grid if r["point"] == best)


def resolve(run, runs, records, out_root):
    """``run`` with its ``from_best`` settings and ``teacher`` checkpoint filled in (LookupError while they wait;
    NotChosen for a grid point a seed other than the selection seed does not run)."""
    if run["point"] and run["seed"] != SELECTION_SEED:
        point, _ = chosen_point(runs, records, run["group"], run["variant"], run["task"])
        if run["point"] != point:
            raise NotChosen(f"seed {run['seed']} runs at the chosen point ({point}) only")
    if run["from_best"]:
        point, settings = chosen_point(runs, records, run["from_best"]["group"], run["from_best"]["variant"],
                                       run["task"])
        run = dict(with_settings(run, settings), chosen_point=point)
    if run["teacher"]:
        g, v = run["teacher"]["group"], run["teacher"]["variant"]
        theirs = [r for r in runs
                  if (r["group"], r["variant"], r["task"], r["seed"]) == (g, v, run["task"], run["seed"])]
        if not theirs:
            raise LookupError(f"no teacher of group {g!r}, variant {v!r} with seed {run['seed']} is declared")
        point = chosen_point(runs, records, g, v, run["task"])[0] if len(theirs) > 1 else theirs[0]["point"]
        teacher = next(r for r in theirs if r["point"] == point)
        name = teacher["name"]
        if current_record(records, teacher) is None:
            raise LookupError(f"waits for its teacher {name}")
        run = dict(run, train=dict(run["train"], teacher=str(out_root / "runs" / name / "best")))
    return run


def available(task, glue_dir):
    """None if the task's training split is here, else the reason it is not (a task whose files are not on this
    machine is skipped; ``campaign`` has made sure the GLUE folder itself is there)."""
    t = get_task(task)
    try:
        folder = find_glue_dir(glue_dir, task)
    except FileNotFoundError:
        return f"no {t.dir} folder in the GLUE directory"          # no path: the tables quote it
    if not (Path(folder) / t.dir / t.splits["train"]).exists():
        return f"{t.dir}/{t.splits['train']} is not in the GLUE directory used"
    return None


def run_one(run, out_root, glue_dir, fast):
    """Train (or resume), sweep, evaluate and size one run; returns its record."""
    model = dict(FAST_MODEL if fast else {}, **run["model"])         # a variant's own setting wins (depth)
    train = dict(run["train"], task=run["task"], seed=run["seed"], **(FAST_TRAIN if fast else {}))
    cfg = TrainConfig.from_dict(train)
    if cfg.select_on == "heldout":                  # the stored rows are those the trainer draws, or an error
        ensure_heldout_file(out_root / "heldout" if fast else HERE / "heldout", cfg.task, glue_dir,
                            cfg.heldout_fraction, cfg.heldout_seed, cfg.train_subset, cfg.heldout_unit)
    folder = out_root / "runs" / run["name"]                  # a checkpoint of another slice was set aside
    pretrained = None
    if has_checkpoint(folder / "last"):             # a previous attempt: resume it, or take it if it finished
        check_trained_as_declared(folder / "last", model, train, out_root)
        trainer = Trainer.resume(folder / "last", glue_dir=glue_dir, progress=False,   # how long: as declared now
                                 **{k: train[k] for k in RESUME_OVERRIDES if k in train})
        if run.get("pretrain") is not None:         # the encoder it really started from (its card), not redone
            pretrained = pretrain_summary(out_root / "pretrain" / Path(trainer.init_source["checkpoint"]).parent.name)
    else:
        if run.get("pretrain") is not None:
            pretrained = pretrain_encoder(run, train, model, out_root, glue_dir, fast)
        trainer = Trainer(cfg, model, folder, glue_dir=glue_dir, progress=False)
        if pretrained:
            load_encoder(trainer, pretrained["checkpoint"])
    if not trainer.state.get("finished"):
        trainer.resume_hint = RESUME_HINT
        trainer.fit()
    start = time.perf_counter()                     # the evaluation's time: training's is in the history
    history = json.loads((folder / "history.json").read_text())
    best = folder / "best"
    limit = train.get("dev_subset")
    sweep, _, _ = run_sweep(best, folder / "sweep", glue_dir=glue_dir, limit=limit)
    chosen = sweep["chosen"]                        # delta chosen on the selection split, its row on dev
    report = evaluate_checkpoint(best, glue_dir=glue_dir, criterion="fractional", delta=chosen["threshold"],
                                 limit=limit, timing=not fast, single_limit=200)
    metric = report["main_metric"]
    best_epoch = trainer.state["best_epoch"]
    record = dict(name=run["name"], group=run["group"], task=run["task"], variant=run["variant"], seed=run["seed"],
                  point=run.get("point", ""), chosen_point=run.get("chosen_point"),
                  fast=fast, metric=metric, model_config=trainer.model_config.to_dict(),
                  train_config=dict(train, **portable_teacher(train, out_root)),
                  dev_full_depth=report["per_exit"][-1], dev_per_exit=report["per_exit"],
                  best_exit=1 + int(np.argmax([selection_score(run["task"], m) for m in report["per_exit"]])),
                  early_exit=dict(criterion="fractional", delta=chosen["threshold"], metrics=report["early_exit"],
                                  mean_exit_block=report["mean_exit_block"],
                                  exit_histogram=report["exit_histogram"]),
                  flops=report["flops"], wall_clock=report.get("wall_clock"), sweep=sweep["rows"],
                  selection=dict(split=cfg.select_on, score=trainer.state["best_score"], best_epoch=best_epoch,
                                 unit=unit_name(cfg.task, cfg.heldout_unit) if cfg.select_on == "heldout" else None,
                                 per_exit=history[best_epoch - 1][cfg.select_on] if best_epoch else None,
                                 sweep=sweep["selection_rows"] if cfg.select_on == "heldout" else None),
                  matched=sweep["matched"], calibration=read_card(best).get(CARD_KEY),
                  pretrain=pretrained and dict(pretrained, checkpoint=pretrained["checkpoint"].relative_to(
                      out_root).as_posix()),
                  train_seconds=history[-1]["seconds"], epochs_run=len(history),
                  run_seconds=(pretrained or {}).get("seconds", 0) + history[-1]["seconds"]
                  + time.perf_counter() - start)
    record.update(size_record(best))
    return record


def check_trained_as_declared(checkpoint, model, train, out_root):
    """Refuse a run folder whose checkpoint was trained with other settings than the run declares now (a record
    says what trained it); those a resumed run may change (epochs, patience, ...) aside.  A teacher is compared
    by its place in the records folder, which may have moved."""
    card = read_card(checkpoint)
    stored = as_trained(card["train_config"])
    if stored.get("teacher") and train.get("teacher"):
        stored = dict(stored, teacher=Path(*Path(stored["teacher"]).parts[-3:]).as_posix())
        train = dict(train, **portable_teacher(train, out_root))
    conflicts = resume_conflicts(card["model_config"], stored, model, train)
    if conflicts:
        raise problem(f"the run folder was trained with other settings than the run declares ({'; '.join(conflicts)})",
                      checkpoint.parent, "delete the run folder (and the run's record) to train it with the declared "
                      "ones, or declare the settings it was trained with")


def pretrain_encoder(run, train, model, out_root, glue_dir, fast=False):
    """Masked-LM pretraining (DESIGN §11) for a run of a group with ``"pretrain": {train settings}``: the run's own
    data, vocabulary and model settings, those train settings over its own (epochs, lr).  Done once per (task,
    seed, settings) in ``<results>/pretrain/<task>-seed<s>-<hash of the settings>/``, resumed if interrupted;
    returns {"checkpoint": its ``last`` folder, "epochs", "masked_accuracy" on the selection split, "seconds"}.
    ``--fast`` pretrains for FAST_TRAIN's epochs."""
    settings = dict(train, **run["pretrain"])
    if fast:
        settings["epochs"] = FAST_TRAIN["epochs"]
    cfg = TrainConfig.from_dict(settings)
    folder = out_root / "pretrain" / f"{run['task']}-seed{run['seed']}-{pretrain_key(cfg, model)}"
    if has_checkpoint(folder / "last"):
        trainer = Pretrainer.resume(folder / "last", glue_dir=glue_dir, progress=False)
    else:
        trainer = Pretrainer(cfg, model, folder, glue_dir=glue_dir, progress=False)
    if not trainer.state.get("finished"):
        trainer.resume_hint = RESUME_HINT
        trainer.fit()
    return pretrain_summary(folder)


# TrainConfig fields a pretraining never reads: a change of them is no reason to pretrain again
NOT_READ_BY_PRETRAINING = ("patience", "calibrate", "save_every", "dev_subset")


def pretrain_key(cfg, model):
    """The hash naming a pretraining's folder: every setting it is trained with, defaults included (a default
    that changes, such as the held-out unit of DESIGN §9.1, names another folder), and none it does not read."""
    train = {k: v for k, v in asdict(cfg).items() if k not in NOT_READ_BY_PRETRAINING}
    what = dict(train=train, model=asdict(model_config_for(cfg, model)), mlm=dict(levels="last", rate=MASK_RATE))
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:10]


def pretrain_summary(folder):
    """{"checkpoint", "epochs", "masked_accuracy", "seconds"} of the finished pretraining in ``folder``."""
    history = json.loads((folder / "history.json").read_text())
    last = history[-1][json.loads((folder / "last" / "checkpoint.json").read_text())["train_config"]["select_on"]]
    return dict(checkpoint=folder / "last", epochs=len(history), seconds=history[-1]["seconds"],
                masked_accuracy=next(iter(last.values()))["accuracy"])


def portable_teacher(train, out_root):
    """{"teacher": its path relative to the records folder} for a distilled run (records name no machine's
    paths), else {}."""
    return {"teacher": Path(train["teacher"]).relative_to(out_root).as_posix()} if train.get("teacher") else {}


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


def run_slice(run):
    """The held-out slice (``unit_name``) a declared run is selected on now; None for a run selected on dev."""
    cfg = TrainConfig.from_dict(dict(run["train"], task=run["task"]))
    return unit_name(cfg.task, cfg.heldout_unit) if cfg.select_on == "heldout" else None


def set_aside(out_root, name, unit):
    """Move run ``name``'s record and run folder, selected on the replaced slice ``unit``, to
    ``old-slices/<unit>/``, where no table and no choice reads them."""
    dest = out_root / "old-slices" / unit.replace(" ", "-")
    for source in (out_root / f"{name}.json", out_root / "runs" / name):
        if source.exists():
            target = dest / source.relative_to(out_root)
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():                                     # a folder set aside before: replaced
                shutil.rmtree(target, ignore_errors=True)
            os.replace(source, target)
    return dest


def checkpoint_slice(folder, run):
    """The slice an unfinished run's ``last`` checkpoint was trained on, or None (no checkpoint, selected on dev)."""
    if not has_checkpoint(folder / "last"):
        return None
    stored = read_card(folder / "last")["train_config"]
    return run_slice(dict(run, train=as_trained(stored)))


def prepare(run, runs, out_root, glue_dir, records):
    """(what to do, detail) for a run: ("done", its record path), ("not run", why: a grid point it does not
    run), ("skipped", why: no data, or it waits for other runs), or ("ready", the run resolved).  ``records``:
    the records folder's (``read_records``)."""
    record_path = out_root / f"{run['name']}.json"
    now = run_slice(run)
    if run["name"] in records:
        before, what = slice_of(records[run["name"]]), "record was selected on"
        if now is None or before == now:
            return "done", record_path
    else:
        before, what = checkpoint_slice(out_root / "runs" / run["name"], run), "checkpoint was trained without"
    if now is not None and before not in (None, now):
        print(f"{run['name']}: its {what} the held-out {before}, now {now}: moved to "
              f"{set_aside(out_root, run['name'], before)}, run again", flush=True)
    why = available(run["task"], glue_dir)
    if why:
        return "skipped", why
    try:
        return "ready", resolve(run, runs, records, out_root)
    except NotChosen as err:
        return "not run", str(err)
    except LookupError as err:
        return "skipped", str(err)


def result_line(record):
    """One line: the run's dev metric at full depth and under early exit, FLOPs cut, training time."""
    e, m = record["early_exit"], record["metric"]
    return (f"{m} full depth {record['dev_full_depth'][m]:.4f}, early exit {e['metrics'][m]:.4f} (delta "
            f"{e['delta']}, {100 * record['flops']['cut']:.1f}% FLOPs cut), {record['train_seconds']:.0f}s")


def run_serially(selected, runs, out_root, args):
    """Every selected run in turn, in this process, those that wait for none first (``level``), so that one call
    runs a grid, its chosen point's other seeds and what builds on it; (the runs that could not run, with why; exit
    status: 1 if a run failed, each failure one line, the others run on)."""
    skipped, failed = {}, {}
    for run in sorted(selected, key=level):
        status, detail = prepare(run, runs, out_root, args.glue_dir, read_records(out_root, args.fast))
        if status == "done":
            print(f"{run['name']}: done already ({detail})")
        elif status == "not run":
            print(f"{run['name']}: not run, {detail}")
        elif status == "skipped":
            skipped[run["name"]] = detail
            print(f"{run['name']}: skipped, {detail}")
        else:
            print(f"{run['name']}: training ...", flush=True)
            try:
                record = run_one(detail, out_root, args.glue_dir, args.fast)
            except OutputInUse as err:              # its run folder, or the pretraining it shares
                failed[run["name"]] = f"another run.py is running it now ({str(err).split(';')[0]})"
            except UserError as err:                # refused (a run folder trained otherwise): the others go on
                failed[run["name"]] = str(err)
            else:
                write_text(out_root / f"{run['name']}.json", json.dumps(record, indent=1))
                print(f"{run['name']}: {result_line(record)}", flush=True)
                continue
            print(f"{run['name']}: failed: {failed[run['name']]}", file=sys.stderr, flush=True)
    if failed:
        print(f"error: {len(failed)} run(s) failed, the first: {next(iter(failed))} ({next(iter(failed.values()))})",
              file=sys.stderr)
    return skipped, int(bool(failed))


# after Ctrl-C, a campaign's run is resumed by the campaign, not by `python -m beexnp train --resume` (which
# would train it without writing its record)
RESUME_HINT = "the same python experiments/run.py command (it resumes the interrupted run)"


def run_in_parallel(selected, runs, out_root, args):
    """The selected runs, ``args.jobs`` at a time, each a subprocess with one BLAS thread; a run that waits for
    others starts once they have their records.  (skipped runs with why, exit status: 1 if a run failed)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--results", str(out_root), "--runs", args.runs]
    command += ["--fast"] * args.fast + (["--glue-dir", args.glue_dir] if args.glue_dir else [])
    logs = out_root / "logs"
    logs.mkdir(exist_ok=True)
    todo, running, failed, done, waiting = list(selected), {}, [], 0, {}
    start = time.perf_counter()
    try:
        while True:
            waiting, records = {}, read_records(out_root, args.fast)
            for run in list(todo):
                status, detail = prepare(run, runs, out_root, args.glue_dir, records)
                if status in ("done", "not run"):
                    todo.remove(run)
                    done += status == "done"
                elif status == "skipped":
                    waiting[run["name"]] = detail
                elif len(running) < args.jobs:
                    todo.remove(run)
                    with open(logs / f"{run['name']}.log", "w") as log:
                        running[run["name"]] = subprocess.Popen(command + ["--only", run["name"]], stdout=log,
                                                                stderr=subprocess.STDOUT,
                                                                env=dict(os.environ, **ONE_THREAD))
            if not running:
                for name, why in waiting.items():                  # they wait for runs not selected or failed
                    print(f"{name}: skipped, {why}")
                return waiting, int(bool(failed))
            while not (ended := [name for name, child in running.items() if child.poll() is not None]):
                time.sleep(1)
            for name in ended:
                code = running.pop(name).returncode
                path = out_root / f"{name}.json"
                if code == 0 and path.exists():
                    done += 1
                    what = result_line(json.loads(path.read_text()))
                else:
                    failed.append(name)
                    what = f"failed (exit status {code}), see {logs / (name + '.log')}"
                print(f"[{done} done, {len(running)} running, {len(waiting)} waiting, {len(todo) - len(waiting)} to "
                      f"start, {len(failed)} failed; {time.perf_counter() - start:.0f}s] {name}: {what}", flush=True)
    finally:
        stop(running)


def stop(children, grace=120):
    """Stop the runs still going (a signal or an error ended the parent): SIGTERM, as the parent had, so that each
    saves its ``last`` checkpoint and leaves no partial file; then wait for them, killing those still running
    after ``grace`` seconds.  None is left running on its own, writing records nobody waits for."""
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + grace
    for child in children.values():
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def level(run):
    """How many runs a run waits for one after the other: 0, 1 (a grid's chosen point), 2 (its teacher too)."""
    return 2 if run["teacher"] else int(bool(run["from_best"]) or (bool(run["point"]) and run["seed"] != SELECTION_SEED))


def campaign_seconds(runs, records, jobs):
    """An estimate of the wall time of ``runs`` at ``jobs`` side by side, from their records' run_seconds (runs
    without a record are left out): the longer of the total over ``jobs`` and the chain of the longest run at each
    level (a run starts once the runs it waits for are done)."""
    seconds = {r["name"]: run_seconds(records[r["name"]]) for r in runs if r["name"] in records}
    chain = sum(max((seconds[r["name"]] for r in runs if r["name"] in seconds and level(r) == k), default=0)
                for k in range(3))
    return max(sum(seconds.values()) / jobs, chain)


def run_seconds(record):
    """How long a run took: its record's ``run_seconds``, at least its training's time (records written before
    ``run_seconds`` counted every attempt hold the last attempt's only)."""
    return max(record.get("run_seconds", 0), record.get("train_seconds", 0))


def canonical_task(name):
    """A task's canonical name (sst2 for SST-2), or ``name`` unchanged if it names no task."""
    try:
        return get_task(name).name
    except ValueError:
        return name


def select(runs, only, tasks, seeds):
    """The runs of ``runs`` that --only (groups or run names), --tasks and --seeds select; ValueError (one line)
    for a name no run has, or a selection with no run in it."""
    groups, names, known_tasks = ({r[key] for r in runs} for key in ("group", "name", "task"))
    tasks = tasks and [canonical_task(t) for t in tasks]                      # SST-2, sst_2: as the CLI's --task
    for flag, asked, known, noun, choices in (("--only", only, groups | names, "group or run", groups),
                                              ("--tasks", tasks, known_tasks, "task", known_tasks)):
        unknown = sorted(set(asked or ()) - known)
        if unknown:
            raise ValueError(f"{flag} {unknown[0]!r}: no such {noun} (choose from {', '.join(sorted(choices))})")
    selected = [r for r in runs if (not only or r["group"] in only or r["name"] in only)
                and (not tasks or r["task"] in tasks) and (seeds is None or r["seed"] in seeds)]
    if not selected:
        raise ValueError("no declared run matches " + " ".join(
            f"{flag} {' '.join(map(str, value))}" for flag, value in (("--only", only), ("--tasks", tasks),
                                                                     ("--seeds", seeds)) if value is not None))
    return selected


def main(argv=None):
    """Run the selected runs; a mistake in the command, runs.json or a record is one ``error:`` line and status 1,
    Ctrl-C or SIGTERM stops every run (each saves its ``last``), status 128 + the signal (``beexnp.cli.guarded``)."""
    return guarded(lambda: campaign(argv))


def campaign(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="*", help="groups or run names to run (default: all)")
    p.add_argument("--tasks", nargs="*", help="these tasks only (default: every task of the groups)")
    p.add_argument("--seeds", nargs="*", type=int, help="these seeds only (a grid point is chosen on seed "
                   f"{SELECTION_SEED}'s runs; other seeds run at the chosen point only)")
    p.add_argument("--fast", action="store_true", help="tiny slices and models: checks the pipeline end to end")
    p.add_argument("--jobs", type=positive_int, default=1, help="runs side by side, each a subprocess (default 1: "
                   "one after the other, in this process); every run has one BLAS thread, so its scores do not "
                   "depend on N")
    p.add_argument("--estimate", nargs="*", type=positive_int, help="print how long the selected runs take at "
                   "these --jobs (from their records' run_seconds) and run nothing")
    p.add_argument("--results", default=None, help="records folder (default: results/experiments, or "
                                                   "results/experiments-fast with --fast)")
    p.add_argument("--glue-dir", help="GLUE folder (default: $GLUE_DIR, then data/glue)")
    p.add_argument("--runs", default=str(HERE / "runs.json"), help="the experiment list")
    args = p.parse_args(argv)
    runs = load_runs(args.runs)                                                         # what choices read
    try:
        selected = select(runs, args.only, args.tasks, args.seeds)
    except ValueError as err:
        p.error(str(err))
    if args.estimate is None:
        find_glue_dir(args.glue_dir)                # no GLUE folder at all: an error, not every run skipped
    out_root = results_folder(args.results or ("results/experiments-fast" if args.fast else "results/experiments"),
                              create=args.estimate is None)
    if args.estimate is not None:
        records = read_records(out_root, args.fast)
        if not any(r["name"] in records for r in selected):
            print(f"no estimate: none of the {len(selected)} selected runs has a record in {out_root} yet (the "
                  "estimate reads their run times)")
            return 0
        for jobs in args.estimate or [1, 2, 16]:
            print(f"--jobs {jobs}: about {campaign_seconds(selected, records, jobs) / 3600:.1f} hours for the "
                  f"{sum(r['name'] in records for r in selected)} runs of {len(selected)} with a record")
        return 0
    skipped, status = (run_in_parallel if args.jobs > 1 else run_serially)(selected, runs, out_root, args)
    write_skipped(out_root, {r["name"] for r in selected}, skipped)
    return status


def results_folder(path, create):
    """``path`` as the records folder: a folder (made if ``create``; an estimate reads and writes nothing), or
    one error line."""
    path, fix = Path(path), "give --results a folder for the run records"
    if path.exists() and not path.is_dir():
        raise problem("not a folder", f"--results {path}", fix)
    if not path.exists() and not create:
        raise problem("no such folder: no records to estimate from", f"--results {path}", fix)
    if create:
        guard_folder(path, "--results", create=True)  # not inside a checkpoint or a run's files, writable: made
    return path


if __name__ == "__main__":
    sys.exit(main())
