"""The command line, all of it: ``python -m beexnp <command> ...``.

Each command is a sub-parser and a ``run_<command>(args)`` function that reads
the parsed flags and calls the library (which takes plain arguments, never an
``argparse`` namespace); its return value is the exit status.  A user's mistake
(bad value, missing file, unreadable checkpoint, diverged training) ends with
one ``error: <message>`` line and status 1 instead of a traceback -- usage
errors caught by the parser too -- and every option is checked (type, range,
output paths) before any long work starts.

    gradcheck   every layer's backward against central differences
    train       train a BEExformer (or its full-precision twin) on a GLUE task
    pretrain    masked-LM pretraining on a task's own training sentences (then train --init)
    evaluate    every exit and early exit on a labelled split: metrics, FLOPs, wall-clock
    predict     one text (or pair) with early exit
    sweep       every exit criterion over a threshold grid: table and accuracy-FLOPs plot
    data        split sizes, labels and token lengths of a GLUE task
    download    GLUE tasks from the official addresses
    export      a checkpoint bit-packed (1 bit per binarized weight)
    size        bytes per component of the packed model against its float32 twin
"""
import argparse
import dataclasses
import json
import math
import re
import shutil
import sys
import time
import typing
from pathlib import Path

import numpy as np

from beexnp.checkpoint import aside, has_checkpoint, output_lock
from beexnp.config import DATA_DERIVED, ModelConfig, TrainConfig, build_settings, head_choices
from beexnp.criteria import CRITERIA
from beexnp.evaluate import evaluate_checkpoint, exit_rule, format_report, open_for_inference, predict_texts
from beexnp.glue import get_task
from beexnp.glue.download import (BASE_URL_ENV, DEADLINE, NO_DOWNLOAD_ENV, DownloadError, base_url,
                                  download_task, ensure_task, parse_task_list)
from beexnp.glue.location import DEFAULT_DIR
from beexnp.glue.reader import GlueFormatError
from beexnp.glue.summary import describe_task, format_summary
from beexnp.gradcheck import format_table
from beexnp.layer_checks import check_all
from beexnp.limits import check_sizes
from beexnp.outputs import (RUN_FILES, UserError, STOP_SIGNALS, ReaderGone, atomic_write, guard_file, guard_folder,
                            guard_input_file, diagnostics_never_fail, one_line, problem, resolved, results_stream,
                            signal_name, terminations_raise)
from beexnp.packed import export_checkpoint, open_saved
from beexnp.size import checkpoint_size_report, format_size_report
from beexnp.sweep import default_out as default_sweep_dir
from beexnp.sweep import run_sweep as sweep
from beexnp.mlm import LEVELS, MASK_RATE
from beexnp.pretrain import Pretrainer, check_settings, load_encoder, open_init
from beexnp.train import Trainer, TrainingDiverged

GLUE_DIR_HELP = "GLUE folder (default: $GLUE_DIR, then data/glue)"


def add_glue_flags(p):
    """--glue-dir and --no-download: the flags of every command that reads a GLUE task."""
    p.add_argument("--glue-dir", help=GLUE_DIR_HELP)
    p.add_argument("--no-download", action="store_true",
                   help=f"never download a missing task (also {NO_DOWNLOAD_ENV}=1); by default it is fetched "
                        f"into the GLUE folder on first use (from ${BASE_URL_ENV} if set)")


def glue_for(args, task):
    """The GLUE folder that holds ``task``, fetched on first use unless --no-download (``ensure_task``)."""
    return ensure_task(task, args.glue_dir, download=not args.no_download,
                       progress=not getattr(args, "no_progress", False))


class UsageError(UserError):
    """A command line the parser refuses; ``main`` prints it as one line, status 1."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``error:`` line and status 1 (``main``), like every other user error."""

    def error(self, message):
        flag = re.match(r"argument ([^:]+): ", message)             # argparse names the flag it refuses
        raise problem(f"{self.prog}: {message}", flag.group(1) if flag else self.prog, f"see {self.prog} --help",
                      UsageError)


def finite_float(text):
    """A float flag's value; NaN and infinities are refused."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def int_at_least(minimum, what):
    """An argparse type: an integer >= ``minimum`` (``what`` it is, for the docstring)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
        return value
    parse.__doc__ = f"{what}: an integer >= {minimum}."
    return parse


positive_int = int_at_least(1, "An int flag that counts something")
seed_int = int_at_least(0, "A seed (numpy's Generators take no negative seed)")


# ---- gradcheck -------------------------------------------------------------------------
def add_gradcheck(sub):
    p = sub.add_parser("gradcheck", help="check every layer's backward against central differences",
                       description="Gradient-check every layer (float64, relaxed mode, random upstream "
                                   "gradient) and print the table.")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the random inputs and parameters (default: 0)")
    p.add_argument("--batch", type=positive_int, default=3, help="batch size of the layer checks (default: 3)")
    p.add_argument("--tokens", type=positive_int, default=5, help="tokens per input, some padded (default: 5)")
    p.add_argument("--dim", type=positive_int, default=8, help="layer width d (default: 8)")
    p.add_argument("--heads", type=positive_int, default=2, help="attention heads, dividing --dim (default: 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (on stderr)")
    p.set_defaults(func=run_gradcheck)


GRADCHECK_MAX = dict(batch=64, tokens=64, dim=256)   # float64 central differences: each entry costs two forwards


def run_gradcheck(args):
    if args.dim % args.heads:
        raise problem("the heads must divide the width", f"--heads {args.heads}, --dim {args.dim}",
                      f"choose --heads among {', '.join(map(str, head_choices(args.dim)))}")
    for name, most in GRADCHECK_MAX.items():
        if getattr(args, name) > most:
            raise problem(f"--{name} {getattr(args, name)} is more than a gradient check needs "
                                     f"(at most {most}; every entry costs two forward passes)",
                                     f"--{name}", f"use at most {most}")
    reports = check_all(np.random.default_rng(args.seed), batch=args.batch, tokens=args.tokens,
                        dim=args.dim, heads=args.heads, progress=not args.no_progress)
    print(format_table(reports))
    bad = [r.title for r in reports if not r.ok]
    worst = max(r.max_error for r in reports)
    print(f"\n{len(reports)} layers, largest relative error {worst:.2e}: "
          + ("all ok" if not bad else "FAILED: " + ", ".join(bad)))
    return 1 if bad else 0


# ---- train -------------------------------------------------------------------------------
DERIVED = DATA_DERIVED + ("binarize",)          # no flags: set from the data, or by --full-precision


def add_config_options(parser, cls, skip=()):
    """A flag per field of the config dataclass ``cls`` (``--field-name``), its help, choices and default
    taken from the field; the flags default to None so that only what is typed overrides --config."""
    hints = typing.get_type_hints(cls)
    names = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind = next(t for t in typing.get_args(hints[f.name]) or (hints[f.name],) if t is not type(None))
        choices = f.metadata.get("choices")
        if kind is bool:
            extra = dict(action=argparse.BooleanOptionalAction)
        else:
            parse = seed_int if f.name.endswith("seed") else finite_float if kind is float else kind  # no negative seed
            extra = dict(type=parse, choices=choices, metavar=None if choices else kind.__name__.upper())
        default = "" if f.default is None else f" (default: {f.default})"
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=None,
                            help=f.metadata["help"] + default, **extra)
        names.append(f.name)
    return names


def add_train(sub):
    p = sub.add_parser(
        "train", help="train a BEExformer on a GLUE task",
        description="Train a BEExformer (or its full-precision twin) on a GLUE task. Settings come from the "
                    "defaults, then --config (JSON {\"model\": {...}, \"train\": {...}}, the same keys as the "
                    "flags below with '_' for '-'), then the flags. Writes OUT/best, OUT/last (checkpoints) and "
                    "OUT/history.json; a folder that holds a run already is refused unless --resume or --overwrite "
                    "is given, and one in use by another run always. Ctrl-C, SIGTERM and SIGHUP stop at the end of the "
                    "step and save OUT/last.")
    add_run_flags(p)
    p.add_argument("--init", metavar="CHECKPOINT",
                   help="start from this checkpoint's encoder (embeddings and blocks; the exit heads start fresh), "
                        "e.g. a pretrain run's OUT/last; its vocabulary must be this run's (DESIGN §11)")
    p.set_defaults(func=run_train, trainer=Trainer)


def add_pretrain(sub):
    p = sub.add_parser(
        "pretrain", help="masked-LM pretraining on a task's own training sentences (DESIGN §11)",
        description="Pretrain a BEExformer's embeddings and blocks as a masked language model on the training "
                    "split's sentences (no labels, no outside text), then fine-tune with train --init OUT/last. "
                    "The same settings, data, checkpoints, resume and Ctrl-C, SIGTERM and SIGHUP handling as train; "
                    "the exit heads are not trained, and there is no 'best' checkpoint.")
    add_run_flags(p)
    p.add_argument("--mask-rate", type=finite_float, default=None,
                   help=f"share of each sentence's words to predict (default: {MASK_RATE})")
    p.add_argument("--mlm-blocks", choices=LEVELS, default=None,
                   help="the head reads the last block's states, or every block's (default: last)")
    p.set_defaults(func=run_train, trainer=Pretrainer)


def pretrain_options(args, run, resume=None):
    """The masking settings typed for ``pretrain`` ({} for ``train``), checked with the ``run``'s settings; a
    resumed run (``resume``, its ``Saved``) keeps its own."""
    typed = {k: v for k, v in (("levels", getattr(args, "mlm_blocks", None)),
                               ("rate", getattr(args, "mask_rate", None))) if v is not None}
    if args.trainer is not Pretrainer:
        return {}
    options = dict(dict(levels="last", rate=MASK_RATE), **typed)
    check_settings(**options, teacher=run.train.teacher)
    if resume is None and run.train.calibrate:     # typed, or in --config: a pretraining has no decision
        raise ValueError("pretraining makes no decision to calibrate (calibrate, from --calibrate or --config): "
                         "leave it out, and give it to the train --init run that fine-tunes")
    if resume is not None:
        stored = resume.raw.get("pretrain") or {}
        differ = [f"{k}: {v} (checkpoint: {stored.get(k)})" for k, v in typed.items() if stored.get(k) != v]
        if differ:
            raise ValueError(f"the masking settings differ from the checkpoint's ({'; '.join(differ)}) "
                             f"(--resume {args.resume}): leave --mask-rate and --mlm-blocks out to continue")
        return {}
    return options


def add_run_flags(p):
    """The flags train and pretrain share: settings, output folder, GLUE folder, resume."""
    p.add_argument("--config", help="JSON file with 'model' and/or 'train' sections")
    p.add_argument("--out", default=None, help="output folder (default: runs/<task>)")
    add_glue_flags(p)
    p.add_argument("--resume", metavar="CHECKPOINT",
                   help="continue the run saved in this checkpoint folder; only --epochs, --max-steps, --patience "
                        "and --save-every may differ from its settings (others must match or be left out)")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in an --out that holds a run: its checkpoints and history are deleted")
    p.add_argument("--full-precision", action="store_true", help="train the full-precision twin (binarize off)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    model_flags = add_config_options(p.add_argument_group("model (ModelConfig)"), ModelConfig, skip=DERIVED)
    train_flags = add_config_options(p.add_argument_group("training (TrainConfig)"), TrainConfig)
    p.set_defaults(model_flags=model_flags, train_flags=train_flags)


def given(args, names):
    """The options among ``names`` typed on the command line."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def settings(args, resume=None):
    """The run's checked settings (``beexnp.config.build_settings``): --config's sections, then the flags typed."""
    if args.config is not None:
        guard_input_file(args.config, "--config")              # a FIFO or a device would block or never end
    model = given(args, args.model_flags)
    if args.full_precision:
        model["binarize"] = False
    return build_settings(args.config, model, given(args, args.train_flags), resume)


def check_output_folder(out, resume=None, overwrite=False, teacher=None):
    """Refuse (one line) an --out that is not a folder or lies inside a checkpoint (``guard_folder``), that
    holds a run when neither --resume of that run nor --overwrite was asked for, and a --teacher (or, with
    --overwrite, a --resume) inside the run files it would replace or delete."""
    guard_folder(out, "--out")
    for flag, source in (("--teacher", teacher), ("--resume", resume if overwrite else None)):
        if source is not None and inside_run_files(source, out):
            doing = "--overwrite deletes" if overwrite else "the run replaces"
            raise problem(f"{flag} lies inside the run files of {out}, which {doing}", f"{flag} {source}",
                          "copy it elsewhere first, or choose another --out")
    existing = [name for name in RUN_FILES if has_checkpoint(out / name) or (out / name).exists()]
    same = resume is not None and out.resolve() == Path(resume).parent.resolve()
    if same and overwrite:
        raise problem("--overwrite would delete the checkpoint --resume continues from", f"--resume {resume}",
                      "leave out --overwrite to continue the run, or copy the checkpoint elsewhere first")
    if existing and not (same or overwrite):
        hint = f"continue it with --resume {out / 'last'}, " if has_checkpoint(out / "last") else ""
        raise problem(f"the folder already holds a run ({', '.join(existing)})", f"--out {out}",
                      f"{hint}start again with --overwrite, or choose another --out")


def inside_run_files(path, out):
    """True when ``path`` (symlinks followed) is, or lies inside, one of the files a run writes in ``out``."""
    path = resolved(path)
    owned = [resolved(p) for name in RUN_FILES for p in (Path(out) / name, aside(Path(out) / name))]
    return any(path == p or p in path.parents for p in owned)


SIZE_FLAGS = dict(token_dim="--token-dim", position_dim="--position-dim", heads="--heads", blocks="--blocks",
                  vocab="--max-vocab", max_len="--max-len", batch_size="--batch-size")


def training_sizes(cfg, config):
    """``memory_estimate``'s sizes of a run (the vocabulary at its cap ``max_vocab``)."""
    return dict(token_dim=config.token_dim, position_dim=config.position_dim, heads=config.heads,
                blocks=config.blocks, vocab=cfg.max_vocab, max_len=cfg.max_len, batch_size=cfg.batch_size,
                classes=config.num_classes, position_mode=config.position_mode, exit_width=config.exit_width)


def check_training_sizes(cfg, config, mlm=None):
    """A run whose estimated memory exceeds the machine's: refused before the data is read.  ``mlm``: a pretrain
    run's masking options ({"levels", "rate"}), its head's logits counted too."""
    # "all" stays a word, so that it follows --blocks when check_sizes tries --blocks at its default
    extra = dict(mlm_levels="all" if mlm["levels"] == "all" else 1, mask_rate=mlm["rate"]) if mlm else {}
    defaults = dict(training_sizes(TrainConfig(), ModelConfig(vocab_size=5)), classes=config.num_classes,
                    exit_width=config.exit_width, **extra)
    check_sizes(dict(training_sizes(cfg, config), **extra), defaults, SIZE_FLAGS)


def run_train(args):
    if args.out is not None:
        guard_folder(args.out, "--out")                        # '' is not the current folder
    init = getattr(args, "init", None)
    if init and args.resume:
        raise ValueError(problem("--init and --resume together: a resumed run has its weights",
                                 f"--init {init}, --resume {args.resume}", "give one of them"))
    resume = open_saved(args.resume, resume=True) if args.resume else None        # read and checked once
    if resume is not None:
        args.trainer.check_kind(resume)                        # a pretrain run resumes with pretrain, and back
    init = init and open_init(init)                            # a checkpoint folder, checked before any write
    run = settings(args, resume)                               # every setting checked before anything is written
    options = pretrain_options(args, run, resume)
    if resume is None:
        check_training_sizes(run.train, run.model, options)    # before the data is read
    out = Path(args.out if args.out is not None else (Path(args.resume).parent if resume
                                                      else f"runs/{get_task(run.train.task).name}"))
    task = run.train.task
    check_output_folder(out, args.resume, args.overwrite, run.train.teacher)
    glue = glue_for(args, task)                                # fetched on first use
    with output_lock(out):                                     # refused if another run writes there
        if resume:
            trainer = args.trainer.resume(resume, out_dir=out, glue_dir=glue, progress=not args.no_progress,
                                          settings=run)
        else:
            trainer = args.trainer(run.train, run.model, out, glue, progress=not args.no_progress, **options)
        if init:
            load_encoder(trainer, init)                        # its vocabulary is known once the data is read
        if args.overwrite:                                     # only now: every input has been checked
            remove_run(out)
        print(f"{trainer.task.name}: {len(trainer.train_data)} training rows, vocabulary {len(trainer.tokenizer)}, "
              f"{trainer.model.num_parameters():,} parameters, {trainer.total_steps} steps; writing to {trainer.out}")
        start = time.perf_counter()
        trainer.fit()
    print(f"done in {time.perf_counter() - start:.0f}s; {trainer.final_note()}")
    if trainer.cfg.select_on == "heldout" and has_checkpoint(trainer.out / "best"):
        # every choice was made on the held-out rows: dev is scored once, now
        report = evaluate_checkpoint(trainer.out / "best", glue_dir=glue, limit=trainer.cfg.dev_subset, timing=False)
        metric = report["main_metric"]
        print(f"dev {metric} per exit of the best checkpoint (chosen on the held-out rows): "
              + " ".join(f"{m[metric]:.4f}" for m in report["per_exit"]))
    return 0


def remove_run(out):
    """--overwrite: delete a previous run's checkpoints and history from ``out``."""
    for name in RUN_FILES:
        for path in (out / name, aside(out / name)):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()


# ---- evaluate, predict, sweep ----------------------------------------------------------
def add_criterion_flags(p):
    p.add_argument("--criterion", default="fractional", choices=sorted(CRITERIA),
                   help="exit rule (default: fractional entropy reduction; relative change for STS-B)")
    defaults = ", ".join(f"{name} {c.default}" for name, c in CRITERIA.items() if c.default and name != "never")
    p.add_argument("--delta", type=finite_float, default=None,
                   help="the criterion's threshold: fractional in [0, 1) (relative change >= 0 for STS-B), entropy "
                        "(H / log C) and maxprob in [0, 1], patience an integer >= 1 (default: each criterion's "
                        f"own: the delta the model was trained with for fractional, {defaults})")


def add_evaluate(sub):
    p = sub.add_parser("evaluate", help="metrics of a checkpoint at every exit and with early exit",
                       description="Evaluate a checkpoint on a labelled split: the task's metric at "
                                   "every exit and under early exit, exit histogram, overthinking.")
    p.add_argument("checkpoint", help="checkpoint folder (e.g. runs/sst2/best) or packed .npz (made by export)")
    p.add_argument("--split", help="split to evaluate (default: the task's first dev split; 'heldout': the "
                                   "held-out training rows a --select-on heldout run was selected on)")
    add_glue_flags(p)
    p.add_argument("--limit", type=positive_int, help="evaluate the first N examples only")
    p.add_argument("--batch-size", type=positive_int, default=256,
                   help="inputs per batch for the metrics and the batched timing (default: 256)")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.add_argument("--no-timing", action="store_true", help="skip the wall-clock measurements")
    p.add_argument("--single-limit", type=positive_int, default=None,
                   help="time batch size 1 on the first N inputs only (default: all)")
    add_criterion_flags(p)
    p.set_defaults(func=run_evaluate)


def check_inference(args, saved, batch_size=1):
    """Every option of an inference command that the opened checkpoint ``saved`` makes checkable, before the data
    is read or fetched: the criterion's threshold (its own default), the split, the batch's memory."""
    task, config = saved.card.task, saved.card.config
    if hasattr(args, "criterion"):
        exit_rule(saved.raw, task, args.criterion, args.delta)
    split = getattr(args, "split", None)
    if split is not None and split != "heldout" and split not in task.splits:
        raise problem(f"{task.name} has no split {split!r}", f"--split {split}",
                                 f"choose one of {', '.join(list(task.splits) + ['heldout'])}")
    sizes = dict(training_sizes(TrainConfig(batch_size=batch_size, max_len=max(config.max_len, 3)), config),
                 vocab=config.vocab_size)
    check_sizes(sizes, dict(sizes, batch_size=1), {"batch_size": "--batch-size"}, training=False, what="inference")
    return task


def run_evaluate(args):
    if args.json is not None:
        guard_file(args.json, "--json")                    # before the evaluation, not after
    saved = open_for_inference(args.checkpoint)                 # read and checked once
    check_inference(args, saved, min(args.batch_size, args.limit or args.batch_size))
    glue = glue_for(args, saved.card.task)
    report = evaluate_checkpoint(saved, args.split, glue, args.criterion, args.delta,
                                 args.batch_size, args.limit, not args.no_timing, args.single_limit)
    if args.json is not None:                                  # the file first: a reader gone keeps it
        text = json.dumps(report, indent=2).encode()
        atomic_write(args.json, lambda f: f.write(text), "--json")
    print(format_report(report))
    return 0


def add_predict(sub):
    p = sub.add_parser("predict", help="classify one text (or pair) with early exit",
                       description="Print the label (by name), the probabilities and the block the input exited "
                                   "at; warn (stderr) when the text is empty, holds no known word, or is cut to "
                                   "the model's length.")
    p.add_argument("checkpoint", help="checkpoint folder or packed .npz (made by export)")
    p.add_argument("text", help="the text (the first sentence of a pair)")
    p.add_argument("text_b", nargs="?", help="the second sentence, for pair tasks")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_criterion_flags(p)
    p.set_defaults(func=run_predict)


def run_predict(args):
    saved = open_for_inference(args.checkpoint)                 # read and checked once
    check_inference(args, saved)
    out = predict_texts(saved, args.text, args.text_b, args.criterion, args.delta)
    for warning in out["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    if "label" in out:
        probs = ", ".join(f"{k}: {v:.3f}" for k, v in out["probabilities"].items())
        print(f"label: {out['label']}   ({probs})")
    else:
        print(f"score: {out['score']:.3f}")
    print(f"exited at block {out['exit_block']} of {out['blocks']} ({out['criterion']}, threshold {out['threshold']}: "
          f"{out['threshold_source']})")
    return 0


def add_sweep(sub):
    p = sub.add_parser("sweep", help="every exit criterion over a threshold grid: table and Pareto plot",
                       description="Sweep every early-exit criterion over a grid of its threshold on a "
                                   "labelled split; write sweep.json, sweep.md and sweep.png (metric vs "
                                   "mean FLOPs per input), and choose delta on that split.")
    p.add_argument("checkpoint", help="checkpoint folder or packed .npz (made by export)")
    p.add_argument("--out", help="output folder (default: CHECKPOINT-sweep beside the checkpoint, or NAME-sweep "
                                 "beside a packed NAME.npz; never inside a checkpoint, whose next save would delete it)")
    p.add_argument("--split", help="labelled split (default: the task's first dev split)")
    p.add_argument("--select-on", choices=("dev", "heldout"), default=None,
                   help="choose delta on the reported split ('dev') or on the held-out training rows ('heldout'); "
                        "default: the split the checkpoint was selected on")
    add_glue_flags(p)
    p.add_argument("--limit", type=positive_int, help="first N examples only (of each split)")
    p.set_defaults(func=run_sweep)


def run_sweep(args):
    saved = open_for_inference(args.checkpoint)                 # read and checked once
    check_inference(args, saved)
    out = guard_folder(default_sweep_dir(args.checkpoint) if args.out is None else args.out, "--out")
    glue = glue_for(args, saved.card.task)
    result, table, out = sweep(saved, out, args.split, glue, args.limit, args.select_on)
    print(table)
    c = result["chosen"]
    print(f"\nchosen on {result['selected_on']}: {c['criterion']} delta={c['threshold']:g}; on {result['split']}: "
          f"{result['metric']} {c['metric']:.4f} vs full depth {result['rows'][0]['metric']:.4f}, "
          f"{100 * c['flops_cut']:.1f}% FLOPs cut")
    print(f"wrote {out / 'sweep.json'}, {out / 'sweep.md'}, {out / 'sweep.png'}")
    return 0


# ---- data, download ----------------------------------------------------------------------
def add_data(sub):
    p = sub.add_parser("data", help="split sizes, label distribution and token lengths of a GLUE task",
                       description="Read every split of a GLUE task and print its size, label distribution "
                                   "and token-length percentiles (the package's tokenizer).")
    p.add_argument("--task", required=True, help="task name: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli")
    add_glue_flags(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run_data)


def run_data(args):
    summary = describe_task(args.task, glue_for(args, args.task))   # missing or malformed: main() says why
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def add_download(sub):
    p = sub.add_parser("download", help="download GLUE tasks (MRPC assembled as the official script does)",
                       description="Download GLUE tasks from the official addresses into --dir: each file "
                                   "is written to a temporary name and renamed when whole, each archive is "
                                   "checked before it is unpacked, MRPC is assembled from the MSR files.")
    p.add_argument("--tasks", required=True, help="comma-separated task names, or 'all'")
    p.add_argument("--dir", default=str(DEFAULT_DIR), help="GLUE directory to fill (default: %(default)s)")
    p.add_argument("--base-url", default=None,
                   help=f"address to download from instead of the official one (also ${BASE_URL_ENV})")
    p.add_argument("--no-checksum", action="store_true",
                   help="skip the sha256 check (zips are still tested before extraction)")
    p.add_argument("--force", action="store_true",
                   help="replace tasks already present (the old folder stays until the new one is complete)")
    p.add_argument("--deadline", type=finite_float, default=DEADLINE,
                   help="seconds each file may take in all before the download is given up (default: %(default)g)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_download)


def run_download(args):
    tasks = parse_task_list(args.tasks)
    if args.deadline <= 0:
        raise problem(f"the deadline must be > 0 seconds, got {args.deadline:g}",
                                 f"--deadline {args.deadline:g}", "give a positive number of seconds")
    glue = guard_folder(args.dir, "--dir")
    url = base_url(args.base_url)
    status = 0
    for task in tasks:
        try:
            result = download_task(task, glue, url, checksums=False if args.no_checksum else None,
                                   force=args.force, progress=not args.quiet, deadline=args.deadline)
        except (DownloadError, GlueFormatError, ValueError, OSError) as err:
            reason = one_line(err)
            print("error: " + str(problem(f"{task.name} not downloaded: {reason}", f"--dir {args.dir}",
                                      "check the network and the address (--base-url), then run it again; "
                                      "nothing was changed there")), file=sys.stderr)
            status = 1
            continue
        note = " (use --force to replace it)" if result == "present" else ""
        print(f"{task.name}: {result} in {args.dir}/{task.dir}{note}")
    return status


# ---- export, size ------------------------------------------------------------------------
def add_export(sub):
    p = sub.add_parser("export", help="write a checkpoint bit-packed (1 bit per binarized weight)",
                       description="Write every binarized matrix as packed sign bits plus its "
                                   "alphas, the real parameters and alphas as float32 (or float16), and the "
                                   "config and tokenizer as JSON, into one .npz.  Load it with "
                                   "beexnp.packed.load_packed.")
    p.add_argument("checkpoint", help="checkpoint folder (e.g. runs/sst2/best)")
    p.add_argument("out", help="output file (.npz)")
    p.add_argument("--float16", action="store_true", help="store the real parameters and the alphas as float16")
    p.set_defaults(func=run_export)


def run_export(args):
    guard_file(args.out, "OUT")
    real_dtype = np.float16 if args.float16 else np.float32
    arrays = export_checkpoint(open_saved(args.checkpoint), args.out, real_dtype)
    n_binary = sum(k.endswith(".bits") for k in arrays)
    print(f"wrote {args.out}: {Path(args.out).stat().st_size:,} bytes on disk "
          f"({sum(a.nbytes for a in arrays.values()):,} bytes of arrays; {n_binary} bit-packed matrices, "
          f"real parameters {np.dtype(real_dtype).name})")
    print(f"size by component: python -m beexnp size {args.checkpoint}")
    return 0


def add_size(sub):
    p = sub.add_parser("size", help="bytes per component of the bit-packed model vs. its float32 twin",
                       description="Pack the checkpoint as `export` does and report bytes per component "
                                   "(embeddings, attention, SLFN/FFN, norms, exits, alphas), the total, "
                                   "the full-precision twin's bytes and the ratio, with real and with "
                                   "binarized embeddings, and the exported file's size on disk.")
    p.add_argument("checkpoint", help="checkpoint folder or packed .npz (made by export)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--float16", action="store_true", help="real parameters as float16 (as export --float16)")
    p.set_defaults(func=run_size)


def run_size(args):
    report = checkpoint_size_report(open_saved(args.checkpoint), np.float16 if args.float16 else np.float32)
    print(json.dumps(report, indent=2) if args.json else format_size_report(report))
    return 0


# ---- the parser and main -------------------------------------------------------------------
COMMANDS = [add_gradcheck, add_train, add_pretrain, add_evaluate, add_predict, add_sweep, add_data, add_download,
            add_export, add_size]


def build_parser():
    parser = Parser(
        prog="python -m beexnp",
        description="BEExformer in plain NumPy: binarized transformer with entropy-based early exits.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in COMMANDS:
        add(sub)
    parser.commands = sub.choices                   # {name: its parser}: a stray argument is named with its command
    return parser


def main(argv=None):
    """Run a command (``guarded``)."""
    def command():
        parser = build_parser()
        args, stray = parser.parse_known_args(argv)
        if stray:
            parser.commands[args.command].error(f"unrecognized arguments: {' '.join(stray)}")
        return args.func(args)
    return guarded(command)


def guarded(command):
    """``command()``'s status, run as every entry point runs (``main``, experiments/run.py, experiments/tables.py):
    a user's mistake ends with ``error: <message>`` and status 1, not a traceback.

    SIGTERM and SIGHUP end a command as Ctrl-C does (``Terminated``): every writer removes its temporary
    file, ``train`` saves ``last``; the status is 128 + the signal's number.  A stdout whose reader has gone
    (``| head -1``) stops the command the same way, quietly, with 128 + SIGPIPE (``Results``); one that cannot
    take the results (closed, a full device) is an error.  A stderr that cannot be written (closed, a full
    device) loses the progress bars and messages, never the command (``Diagnostics``)."""
    with terminations_raise(), diagnostics_never_fail(), results_stream():
        try:
            if sys.stdout is None:                # Python started with fd 1 closed: print would drop every line
                raise problem("stdout is closed", "1>&-", "the results have nowhere to go: send them to a file, "
                              "or to /dev/null to discard them")
            status = command() or 0
            sys.stdout.flush()                    # the last results are delivered, or their failure is seen here
            return status
        except ReaderGone as err:                 # nobody reads the results: nothing to say, as `yes | head -1`
            return 128 + err.signum
        except KeyboardInterrupt as err:
            signum = getattr(err, "signum", STOP_SIGNALS[0])
            print(f"\ninterrupted ({signal_name(signum)}); no partial file was left", file=sys.stderr)
            return 128 + signum
        except UserError as err:                  # the one form, on one line by construction (beexnp.outputs.problem)
            print(f"error: {err}", file=sys.stderr)
            return 1
        except (ValueError, OSError, TrainingDiverged) as err:  # not made by problem(): shown as it is, not reshaped
            print(f"error: {err}", file=sys.stderr)
            return 1
