"""Evaluating a checkpoint on GLUE: every exit, early exit, FLOPs, wall-clock, and single predictions.

What the ``evaluate`` and ``predict`` commands print (``beexnp.cli``).
"""
import time

import numpy as np

from beexnp.calibration import calibrated
from beexnp.checkpoint import Saved
from beexnp.config import SoftRouting, as_trained
from beexnp.criteria import NeverExit, threshold_for
from beexnp.flops import input_lengths, model_flops
from beexnp.glue import compute_metrics, encode_examples, load_split, subset
from beexnp.glue.heldout import SPLIT as HELDOUT
from beexnp.glue.heldout import load_heldout
from beexnp.glue.reader import nonempty
from beexnp.glue.tokenizer import UNK_ID
from beexnp.inference import early_exit_forward, early_exit_split, exit_outputs, predictions
from beexnp.packed import open_saved
from beexnp.outputs import problem


def open_for_inference(source):
    """``source`` (a checkpoint folder, a packed .npz, or either already opened) as a ``Saved`` whose card has the
    task and the tokenizer: read and checked once (``beexnp.card``); its ``model()`` carries the card's
    calibration in its exit biases (DESIGN §9.3), for evaluate, predict, the sweep and early exit alike."""
    saved = source if isinstance(source, Saved) else open_saved(source)
    return calibrated(saved.require("task", "tokenizer"))         # its model(): the calibration in (DESIGN §9.3)


def load_for_inference(source):
    """(model, tokenizer, task, card) from a checkpoint folder or a packed .npz (or either opened)."""
    saved = open_for_inference(source)
    return saved.model(), saved.card.tokenizer, saved.card.task, saved.raw


def default_delta(card):
    """The delta the model was trained with (soft routing), else soft routing's default."""
    return card.get("train_config", {}).get("delta", SoftRouting.delta)


def exit_rule(card, task, criterion="fractional", delta=None):
    """(criterion, threshold, where the threshold came from) for a checkpoint's task: ``delta`` if given, else the
    criterion's own default (the fractional rule's: the delta the model was trained with).  Checked at once."""
    return threshold_for(criterion, delta, default_delta(card), task.regression)


def max_len_of(model, card):
    """The input length the model was trained with: longer inputs are cut to it."""
    return card.get("train_config", {}).get("max_len", model.config.max_len)


def load_labelled_split(folder, split=None, glue_dir=None, limit=None):
    """(model, task, card, encoded split) for evaluating a checkpoint on a labelled split.

    ``split="heldout"``: the held-out training rows the checkpoint was selected on (DESIGN §9.1)."""
    model, tokenizer, task, card = load_for_inference(folder)
    return model, task, card, labelled_split(model, tokenizer, task, card, split, glue_dir, limit)


def labelled_split(model, tokenizer, task, card, split=None, glue_dir=None, limit=None):
    """A labelled split (default: the task's first dev split; or "heldout") encoded as the checkpoint's run did."""
    split = split or task.dev_splits[0]
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    examples = nonempty(heldout_of(card, glue_dir) if split == HELDOUT else load_split(task, split, glue_dir))
    if examples.labels is None:
        raise problem(f"{task.name} {split} has no labels (test labels are not public)", f"--split {split}",
                      f"use a dev split ({', '.join(task.dev_splits)})")
    if limit:
        examples = subset(examples, limit)
    return encode_examples(tokenizer, examples, max_len_of(model, card))


def heldout_of(card, glue_dir=None):
    """The held-out rows (``Examples``) of the run a checkpoint card describes; an error if it trained on them."""
    cfg = as_trained(card.get("train_config", {}))
    if cfg.get("select_on", "dev") != HELDOUT:
        raise problem("this checkpoint was selected on dev and trained on every training row: it has no "
                      "held-out slice", "--split heldout", "evaluate it on dev, or train with --select-on heldout")
    return load_heldout(card["task"], glue_dir, cfg["heldout_fraction"], cfg["heldout_seed"], cfg.get("train_subset"),
                        cfg["heldout_unit"])


def seconds(run, repeats=3):
    """Best wall-clock time of ``run()`` over a few repeats (the least disturbed one)."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def timings(model, encoded, rule, batch_size, single_limit=None):
    """Wall-clock of full depth vs early exit, batched and one input at a time."""
    singles = encoded.take(np.arange(min(len(encoded), single_limit or len(encoded))))
    out = {}
    for name, data, bs, repeats in (("batched", encoded, batch_size, 3), ("batch_size_1", singles, 1, 1)):
        full = seconds(lambda: early_exit_split(model, data, NeverExit(), bs), repeats)
        early = seconds(lambda: early_exit_split(model, data, rule, bs), repeats)
        out[name] = dict(examples=len(data), batch_size=bs, full_seconds=full, early_exit_seconds=early,
                         time_cut=1 - early / full)
    return out


def evaluate_checkpoint(folder, split=None, glue_dir=None, criterion="fractional", delta=None,
                        batch_size=256, limit=None, timing=True, single_limit=None):
    """Metrics at every exit and under early exit on a labelled split, FLOPs and wall-clock; a JSON-able dict."""
    model, tokenizer, task, card = load_for_inference(folder)
    rule, delta, source = exit_rule(card, task, criterion, delta)             # a bad threshold: before the work
    encoded = labelled_split(model, tokenizer, task, card, split, glue_dir, limit)
    split = encoded.split

    outputs = exit_outputs(model, encoded, batch_size)                        # (N, n, C)
    per_exit_preds = predictions(outputs, task.regression)                     # (N, n)
    per_exit = [compute_metrics(task, p, encoded.labels) for p in per_exit_preds]
    result = early_exit_split(model, encoded, rule, batch_size)
    early = compute_metrics(task, result.predictions(task.regression), encoded.labels)
    N = model.config.blocks
    report = dict(checkpoint=str(folder.path if isinstance(folder, Saved) else folder), task=task.name, split=split,
                  examples=len(encoded), criterion=rule.name, delta=delta, threshold_source=source,
                  main_metric=task.main_metric,
                  per_exit=per_exit, early_exit=early,
                  mean_exit_block=float(result.exit_block.mean()),
                  exit_histogram=np.bincount(result.exit_block, minlength=N + 1)[1:].tolist())
    if not task.regression:
        correct = per_exit_preds == encoded.labels[None, :]                  # (N, n)
        report["overthinking"] = int(np.sum(correct[:-1].any(axis=0) & ~correct[-1]))
    lengths = input_lengths(model.config, encoded)                           # siamese: (n, 2)
    full = model_flops(model.config, lengths)                                # per input, every block
    early = model_flops(model.config, lengths, result.exit_block)            # per input, up to its exit
    report["flops"] = dict(full=float(full.flops.mean()), early_exit=float(early.flops.mean()),
                           cut=1 - float(early.flops.mean() / full.flops.mean()), w1a1=full.w1a1,
                           real_macs_full=float(full.real_macs.mean()),
                           real_macs_early_exit=float(early.real_macs.mean()),
                           binary_macs_full=float(full.binary_macs.mean()),
                           binary_macs_early_exit=float(early.binary_macs.mean()))
    if timing:
        report["wall_clock"] = timings(model, encoded, rule, batch_size, single_limit)
    return report


def format_report(report):
    metric = report["main_metric"]
    N = len(report["per_exit"])
    lines = [f"{report['task']} {report['split']} ({report['examples']} examples), {report['checkpoint']}",
             "", f"{'exit':>6}  " + "  ".join(f"{k:>9}" for k in report["per_exit"][0])]
    for i, m in enumerate(report["per_exit"], 1):
        lines.append(f"{i:>6}  " + "  ".join(f"{v:9.4f}" for v in m.values()))
    lines.append(f"{'early':>6}  " + "  ".join(f"{v:9.4f}" for v in report["early_exit"].values())
                 + f"   ({report['criterion']}, threshold {report['delta']}: "
                 + f"{report.get('threshold_source', 'given')})")
    lines += ["", f"mean exit block {report['mean_exit_block']:.2f} of {N}",
              "exit histogram  " + "  ".join(f"{i}:{c}" for i, c in enumerate(report["exit_histogram"], 1))]
    if "overthinking" in report:
        lines.append(f"overthinking: {report['overthinking']} inputs right at an earlier exit, wrong at the last")
    f = report["flops"]
    lines.append(f"FLOPs per input: full {f['full'] / 1e6:.2f} M, early exit {f['early_exit'] / 1e6:.2f} M "
                 f"({100 * f['cut']:.1f}% cut)")
    weight = "1/64 each (W1A1)" if f["w1a1"] else "1 each (real activations)"
    lines.append(f"  of which, full / early exit: real MACs {f['real_macs_full'] / 1e6:.2f} M / "
                 f"{f['real_macs_early_exit'] / 1e6:.2f} M, binary MACs {f['binary_macs_full'] / 1e6:.2f} M / "
                 f"{f['binary_macs_early_exit'] / 1e6:.2f} M, counted at {weight}")
    for name, t in report.get("wall_clock", {}).items():
        lines.append(f"wall-clock, batches of {t['batch_size']} ({t['examples']} inputs): "
                     f"full {t['full_seconds']:.3f}s, early exit {t['early_exit_seconds']:.3f}s "
                     f"({100 * t['time_cut']:.1f}% cut)")
    best = max(range(N), key=lambda i: report["per_exit"][i][metric])
    lines.append(f"best exit {best + 1}: {metric} {report['per_exit'][best][metric]:.4f}; "
                 f"early exit {report['early_exit'][metric]:.4f}")
    return "\n".join(lines)


def predict_texts(folder, text_a, text_b=None, criterion="fractional", delta=None):
    """Label (by name), probabilities (or value) and exit block for one input, and ``warnings``: what
    makes the answer doubtful (an empty text, no known word, a text cut to the model's length)."""
    model, tokenizer, task, card = load_for_inference(folder)
    if task.pair and text_b is None:
        raise problem(f"{task.name} is a sentence-pair task", "text", "give two texts: the sentence pair")
    if not task.pair and text_b is not None:
        raise problem(f"{task.name} is a single-sentence task", "text_b", "give one text, not two (quote a text "
                      "with spaces: \"a good film\")")
    rule, delta, source = exit_rule(card, task, criterion, delta)
    max_len = max_len_of(model, card)
    ids = np.array([tokenizer.encode(text_a, text_b, max_len=max_len)], dtype=np.int64)
    result = early_exit_forward(model, ids, np.ones(ids.shape, np.float32), rule)
    out = dict(task=task.name, criterion=rule.name, threshold=delta, threshold_source=source,
               exit_block=int(result.exit_block[0]), blocks=model.config.blocks,
               tokens=tokenizer.tokens(ids[0]), warnings=input_warnings(tokenizer, text_a, text_b, max_len))
    if task.regression:
        out["score"] = float(result.logits[0, 0])
    else:
        p = result.probabilities()[0]
        names = task.label_names
        out["label"] = names[int(p.argmax())]
        out["label_id"] = int(p.argmax())
        out["probabilities"] = {name: float(v) for name, v in zip(names, p)}
        out["entropy_per_block"] = [float(h) for h in result.entropy[0] if np.isfinite(h)]
    return out


def input_warnings(tokenizer, text_a, text_b, max_len):
    """What makes a prediction on this input doubtful, one sentence each ([] if nothing)."""
    texts = [("the text", text_a)] if text_b is None else [("the first text", text_a), ("the second text", text_b)]
    warnings, ids = [], []
    for name, text in texts:
        own = tokenizer.token_ids(text)
        ids += own
        if not own:
            warnings.append(f"{name} is empty (no word or punctuation): the model sees only [CLS]")
    if ids and all(i == UNK_ID for i in ids):
        warnings.append(f"none of the {len(ids)} tokens is in the vocabulary (all [UNK]): the answer is a guess")
    kept = len(tokenizer.encode(text_a, text_b, max_len=max_len)) - (1 if text_b is None else 2)
    if kept < len(ids):
        warnings.append(f"the input has {len(ids)} tokens; the model reads {kept} of them (max_len {max_len}), "
                        "the rest is cut")
    return warnings
