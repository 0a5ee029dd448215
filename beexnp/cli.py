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
import shutil
import sys
import time
import typing
from pathlib import Path

import numpy as np

from beexnp.checkpoint import aside, atomic_write, check_writable, has_checkpoint, output_lock, read_card
from beexnp.config import DATA_DERIVED, ModelConfig, TrainConfig, value_problems
from beexnp.criteria import CRITERIA
from beexnp.evaluate import evaluate_checkpoint, format_report, predict_texts
from beexnp.glue import get_task
from beexnp.glue.download import (BASE_URL_ENV, NO_DOWNLOAD_ENV, DownloadError, base_url, download_task,
                                  ensure_task, parse_task_list)
from beexnp.glue.location import DEFAULT_DIR
from beexnp.glue.reader import GlueFormatError
from beexnp.glue.summary import describe_task, format_summary
from beexnp.gradcheck import format_table
from beexnp.layer_checks import check_all
from beexnp.packed import export_checkpoint
from beexnp.size import checkpoint_size_report, format_size_report
from beexnp.sweep import run_sweep as sweep
from beexnp.mlm import LEVELS, MASK_RATE
from beexnp.pretrain import Pretrainer, check_settings, load_encoder
from beexnp.train import RUN_FILES, Trainer, TrainingDiverged, model_config_for

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


class UsageError(ValueError):
    """A command line the parser refuses; ``main`` prints it as one line, status 1."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``error:`` line and status 1 (``main``), like every other user error."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def finite_float(text):
    """A float flag's value; NaN and infinities are refused."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_int(text):
    """An int flag that counts something: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


# ---- gradcheck -------------------------------------------------------------------------
def add_gradcheck(sub):
    p = sub.add_parser("gradcheck", help="check every layer's backward against central differences",
                       description="Gradient-check every layer (float64, relaxed mode, random upstream "
                                   "gradient) and print the table.")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs and parameters (default: 0)")
    p.add_argument("--batch", type=positive_int, default=3, help="batch size of the layer checks (default: 3)")
    p.add_argument("--tokens", type=positive_int, default=5, help="tokens per input, some padded (default: 5)")
    p.add_argument("--dim", type=positive_int, default=8, help="layer width d (default: 8)")
    p.add_argument("--heads", type=positive_int, default=2, help="attention heads, dividing --dim (default: 2)")
    p.set_defaults(func=run_gradcheck)


def run_gradcheck(args):
    if args.dim % args.heads:
        raise ValueError(f"--heads {args.heads} must divide --dim {args.dim}")
    reports = check_all(np.random.default_rng(args.seed), batch=args.batch, tokens=args.tokens,
                        dim=args.dim, heads=args.heads)
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
            extra = dict(type=finite_float if kind is float else kind, choices=choices,
                         metavar=None if choices else kind.__name__.upper())
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
                    "is given, and one in use by another run always. Ctrl-C stops at the end of the step and "
                    "saves OUT/last.")
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
                    "The same settings, data, checkpoints, resume and Ctrl-C handling as train; the exit heads "
                    "are not trained, and there is no 'best' checkpoint.")
    add_run_flags(p)
    p.add_argument("--mask-rate", type=finite_float, default=None,
                   help=f"share of each sentence's words to predict (default: {MASK_RATE})")
    p.add_argument("--mlm-blocks", choices=LEVELS, default=None,
                   help="the head reads the last block's states, or every block's (default: last)")
    p.set_defaults(func=run_train, trainer=Pretrainer)


def pretrain_options(args):
    """The masking settings typed for ``pretrain`` ({} for ``train``); a resumed run keeps its own."""
    typed = {k: v for k, v in (("levels", getattr(args, "mlm_blocks", None)),
                               ("rate", getattr(args, "mask_rate", None))) if v is not None}
    if args.trainer is not Pretrainer:
        return {}
    options = dict(dict(levels="last", rate=MASK_RATE), **typed)
    check_settings(**options)
    if args.resume:
        stored = read_card(args.resume).get("pretrain") or {}
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


def config_sections(args):
    """(model settings, training settings) asked for: --config's sections, then the flags typed.
    A problem in the file is one line naming the file and the field."""
    config = {}
    if args.config:
        try:
            config = json.loads(Path(args.config).read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{args.config}: not valid JSON ({err})") from None
        except UnicodeDecodeError as err:
            raise ValueError(f"{args.config}: not UTF-8 text ({err.reason})") from None
        if not isinstance(config, dict):
            raise ValueError(f"{args.config}: expected a JSON object with 'model' and/or 'train' sections")
        unknown = sorted(map(str, set(config) - {"model", "train"}))
        if unknown:
            raise ValueError(f"{args.config}: unknown sections {unknown}; expected 'model' and 'train'")
        for section, cls, derived in (("model", ModelConfig, DATA_DERIVED), ("train", TrainConfig, ())):
            values = config.get(section, {})
            if not isinstance(values, dict):
                raise ValueError(f"{args.config}: '{section}' must be a JSON object, got {type(values).__name__}")
            fields = {f.name for f in dataclasses.fields(cls)} - set(derived)
            extra = sorted(set(values) - fields)
            problems = [f"unknown {section} keys: {', '.join(extra)}"] if extra else []
            problems += [f"{k} is set from the data; remove it" for k in derived if k in values]
            problems += value_problems(cls, values)
            if problems:
                raise ValueError(f"{args.config}: {section}: " + "; ".join(problems))
    model = dict(config.get("model", {}), **given(args, args.model_flags))
    if args.full_precision:
        model["binarize"] = False
    return model, dict(config.get("train", {}), **given(args, args.train_flags))


def check_output_folder(out, resume=None, overwrite=False):
    """Refuse (one line) an --out that is a file, or that holds a run when neither --resume of that
    run nor --overwrite was asked for."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file, not a folder")
    existing = [name for name in RUN_FILES if has_checkpoint(out / name) or (out / name).exists()]
    same = resume is not None and out.resolve() == Path(resume).parent.resolve()
    if same and overwrite:
        raise ValueError(f"--overwrite would delete the checkpoint --resume {resume} continues from")
    if existing and not (same or overwrite):
        hint = f"continue it with --resume {out / 'last'}, " if has_checkpoint(out / "last") else ""
        raise FileExistsError(f"{out} already holds a run ({', '.join(existing)}): {hint}"
                              "start again with --overwrite, or choose another --out")


def run_train(args):
    model, train = config_sections(args)
    options = pretrain_options(args)
    init = getattr(args, "init", None)
    if init:
        if args.resume:
            raise ValueError(f"--init {init} and --resume {args.resume} together: a resumed run has its weights; "
                             "give one of them")
        try:
            read_card(init)                                    # a checkpoint, readable: before anything is written
        except ValueError as err:
            raise ValueError(f"{err} (--init {init}): give a checkpoint folder, such as a pretrain run's OUT/last") \
                from None
    if args.resume:
        args.trainer.resumable(args.resume, model, train)      # checked before anything is written
        out = Path(args.out) if args.out else Path(args.resume).parent
        task = read_card(args.resume)["train_config"]["task"]
    else:
        cfg = TrainConfig.from_dict(train)                     # every setting checked before the data is read
        model_config_for(cfg, model)
        out = Path(args.out or f"runs/{get_task(cfg.task).name}")
        task = cfg.task
    check_output_folder(out, args.resume, args.overwrite)
    glue = glue_for(args, task)                                # fetched on first use
    with output_lock(out):                                     # refused if another run writes there
        if args.overwrite:
            remove_run(out)
        if args.resume:
            trainer = args.trainer.resume(args.resume, out_dir=out, glue_dir=glue, progress=not args.no_progress,
                                          model_overrides=model, **train)
        else:
            trainer = args.trainer(cfg, model, out, glue, progress=not args.no_progress, **options)
        if init:
            load_encoder(trainer, init)
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
    p.add_argument("--delta", type=finite_float, default=None,
                   help="the criterion's threshold: fractional in [0, 1) (relative change >= 0 for STS-B), entropy "
                        "(H / log C) and maxprob in [0, 1], patience an integer >= 1 (default: the delta the "
                        "model was trained with)")


def add_evaluate(sub):
    p = sub.add_parser("evaluate", help="metrics of a checkpoint at every exit and with early exit",
                       description="Evaluate a checkpoint on a labelled split: the task's metric at "
                                   "every exit and under early exit, exit histogram, overthinking.")
    p.add_argument("checkpoint", help="checkpoint folder (e.g. runs/sst2/best)")
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


def run_evaluate(args):
    if args.json:
        check_writable(args.json)                          # before the evaluation, not after
    glue = glue_for(args, read_card(args.checkpoint)["task"])
    report = evaluate_checkpoint(args.checkpoint, args.split, glue, args.criterion, args.delta,
                                 args.batch_size, args.limit, not args.no_timing, args.single_limit)
    print(format_report(report))
    if args.json:
        text = json.dumps(report, indent=2).encode()
        atomic_write(args.json, lambda f: f.write(text))
    return 0


def add_predict(sub):
    p = sub.add_parser("predict", help="classify one text (or pair) with early exit",
                       description="Print the label (by name), the probabilities and the block the input exited "
                                   "at; warn (stderr) when the text is empty, holds no known word, or is cut to "
                                   "the model's length.")
    p.add_argument("checkpoint", help="checkpoint folder")
    p.add_argument("text", help="the text (the first sentence of a pair)")
    p.add_argument("text_b", nargs="?", help="the second sentence, for pair tasks")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_criterion_flags(p)
    p.set_defaults(func=run_predict)


def run_predict(args):
    out = predict_texts(args.checkpoint, args.text, args.text_b, args.criterion, args.delta)
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
    print(f"exited at block {out['exit_block']} of {out['blocks']}")
    return 0


def add_sweep(sub):
    p = sub.add_parser("sweep", help="every exit criterion over a threshold grid: table and Pareto plot",
                       description="Sweep every early-exit criterion over a grid of its threshold on a "
                                   "labelled split; write sweep.json, sweep.md and sweep.png (metric vs "
                                   "mean FLOPs per input), and choose delta on that split.")
    p.add_argument("checkpoint", help="checkpoint folder")
    p.add_argument("--out", help="output folder (default: CHECKPOINT/sweep)")
    p.add_argument("--split", help="labelled split (default: the task's first dev split)")
    p.add_argument("--select-on", choices=("dev", "heldout"), default=None,
                   help="choose delta on the reported split ('dev') or on the held-out training rows ('heldout'); "
                        "default: the split the checkpoint was selected on")
    add_glue_flags(p)
    p.add_argument("--limit", type=positive_int, help="first N examples only (of each split)")
    p.set_defaults(func=run_sweep)


def run_sweep(args):
    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        raise NotADirectoryError(f"--out {args.out} is a file, not a folder")
    glue = glue_for(args, read_card(args.checkpoint)["task"])
    result, table, out = sweep(args.checkpoint, args.out, args.split, glue, args.limit, args.select_on)
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
    p.add_argument("--force", action="store_true", help="replace tasks already present")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_download)


def run_download(args):
    try:
        tasks = parse_task_list(args.tasks)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    url = base_url(args.base_url)
    status = 0
    for task in tasks:
        try:
            result = download_task(task, args.dir, url, checksums=False if args.no_checksum else None,
                                   force=args.force, progress=not args.quiet)
        except (DownloadError, GlueFormatError, ValueError, OSError) as err:
            print(f"{task.name}: failed: {err}", file=sys.stderr)
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
    check_writable(args.out)
    real_dtype = np.float16 if args.float16 else np.float32
    arrays = export_checkpoint(args.checkpoint, args.out, real_dtype)
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
    p.add_argument("checkpoint", help="checkpoint folder")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--float16", action="store_true", help="real parameters as float16 (as export --float16)")
    p.set_defaults(func=run_size)


def run_size(args):
    report = checkpoint_size_report(args.checkpoint, np.float16 if args.float16 else np.float32)
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
    return parser


def main(argv=None):
    """Run a command; a user's mistake ends with ``error: <message>`` and status 1, not a traceback."""
    try:
        args = build_parser().parse_args(argv)
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, TrainingDiverged) as err:      # CheckpointError, GlueFormatError: ValueErrors
        print(f"error: {err}", file=sys.stderr)
        return 1
