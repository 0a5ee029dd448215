"""What a task's files hold: split sizes, label counts, sequence lengths.

``describe_task`` reads every split present, fits a ``Tokenizer`` on the
training split, encodes every split with it *without* truncation, and reports
per split: the row count, the label distribution (class counts, or score
statistics for STS-B), length percentiles in tokens (``[CLS]`` and ``[SEP]``
included, so a length is what ``encode`` would produce with no ``max_len``;
a percentile is an actual length: ``numpy.percentile(..., method="higher")``)
and, outside train, the fraction of word tokens unknown to the vocabulary.
The result is a JSON-serializable dict; ``format_summary`` prints it.
"""
import numpy as np

from beexnp.glue.batching import encode_examples
from beexnp.glue.location import find_glue_dir
from beexnp.glue.reader import load_split
from beexnp.glue.tasks import get_task
from beexnp.glue.tokenizer import CLS_ID, SEP_ID, SPECIALS, UNK_ID, Tokenizer

PERCENTILES = (50, 90, 95, 99)


def _label_summary(task, labels):
    """Class counts (in label order) or score statistics; None without labels."""
    if labels is None:
        return None
    if task.regression:
        labels = labels.astype(np.float64)
        return {"mean": float(labels.mean()), "std": float(labels.std()),
                "min": float(labels.min()), "max": float(labels.max())}
    counts = np.bincount(labels, minlength=len(task.labels))
    return {name: int(n) for name, n in zip(task.labels, counts)}


def describe_task(task, glue_dir=None):
    """A dict describing every split of ``task`` found (see the module docstring)."""
    task = get_task(task)
    root = find_glue_dir(glue_dir, task)
    examples, missing = {}, {}
    for split in task.splits:
        try:
            examples[split] = load_split(task, split, root)
        except FileNotFoundError as err:
            missing[split] = str(err)
    train = examples.get("train")
    if train is not None:
        tokenizer = Tokenizer.fit(train.text_a, train.text_b)
    else:  # lengths do not depend on the vocabulary: an empty one still counts tokens
        tokenizer = Tokenizer(SPECIALS)
    splits = {}
    for split, rows in examples.items():
        encoded = encode_examples(tokenizer, rows, max_len=None)
        lengths = encoded.lengths
        words = encoded.tokens[(encoded.tokens != CLS_ID) & (encoded.tokens != SEP_ID)]
        percentiles = np.percentile(lengths, PERCENTILES, method="higher") if len(lengths) else [0] * 4
        splits[split] = {
            "rows": len(rows),
            "labels": _label_summary(task, rows.labels),
            "tokens": {**{f"p{q}": int(v) for q, v in zip(PERCENTILES, percentiles)},
                       "max": int(lengths.max(initial=0))},
            "unknown": None if train is None or split == "train" or not words.size
            else float(np.mean(words == UNK_ID)),
            "empty_texts": len(rows.empty_lines),
        }
    return {"task": task.name, "dir": str(root / task.dir), "pair": task.pair,
            "labels": list(task.labels), "regression": task.regression,
            "metrics": list(task.metrics), "main_metric": task.main_metric,
            "vocab_size": len(tokenizer) if train is not None else None,
            "splits": splits, "missing": missing}


def format_summary(summary):
    """``describe_task``'s dict as a few lines of text."""
    kind = "sentence pairs" if summary["pair"] else "single sentences"
    target = "score regression" if summary["regression"] else "labels " + ", ".join(summary["labels"])
    out = [f"{summary['task']}  ({summary['dir']})",
           f"  {kind}, {target}; metrics {', '.join(summary['metrics'])} (main: {summary['main_metric']})"]
    if summary["vocab_size"] is not None:
        out.append(f"  vocabulary fitted on train: {summary['vocab_size']:,} tokens (specials included)")
    columns = [f"p{q}" for q in PERCENTILES] + ["max"]
    out.append(f"  {'split':<15}{'rows':>9}  tokens:" + "".join(f"{c:>6}" for c in columns)
               + f"{'unk':>8}   labels")
    for split, s in summary["splits"].items():
        lengths = "".join(f"{s['tokens'][c]:>6}" for c in columns)
        unknown = "" if s["unknown"] is None else f"{100 * s['unknown']:.1f}%"
        labels = s["labels"]
        if labels is None:
            labels = "(no labels)"
        elif summary["regression"]:
            labels = f"mean {labels['mean']:.3f}  std {labels['std']:.3f}  range [{labels['min']:g}, {labels['max']:g}]"
        else:
            labels = "  ".join(f"{k}: {n:,} ({100 * n / max(s['rows'], 1):.1f}%)" for k, n in labels.items())
        empty = f"  [{s['empty_texts']} empty texts]" if s["empty_texts"] else ""
        out.append(f"  {split:<15}{s['rows']:>9,}  {'':7}{lengths}{unknown:>8}   {labels}{empty}")
    for split, reason in summary["missing"].items():
        out.append(f"  {split:<16}  missing: {reason.splitlines()[0]}")
    return "\n".join(out)
