"""How much of each task's held-out slice is also in its training rows, drawn by single rows and by groups
(DESIGN §9.1).

    python experiments/heldout_leaks.py [--glue-dir DIR]

For every task with a training split: the share of held-out rows one of whose sentences is, token for token
(``tokenize``, DESIGN §2.1), in a training row ("same"), and the share with a sentence a word away from one
in training ("near": a shared ``near_keys`` key); for CoLA, its minimal pairs (``twins``).  DESIGN §9.1
quotes these numbers, and tests/test_heldout.py checks them.
"""
import argparse
import json
import sys

import numpy as np

from beexnp.glue.heldout import (UNITS, held_and_dropped, near_duplicate_groups, near_keys, row_texts,
                                 training_rows, unit_name)
from beexnp.glue.tokenizer import tokenize

TASKS = ("cola", "sst2", "mrpc", "stsb", "rte", "wnli")


def leaks(examples, held, dropped):
    """(share of held rows with a sentence in training, share with a sentence a word away from one)."""
    texts = [[tuple(tokenize(t)) for t in row] for row in row_texts(examples)]
    train = np.setdiff1d(np.arange(len(texts)), np.concatenate([held, dropped]))
    same = {s for i in train for s in texts[i]}
    near = set().union(*(near_keys(s) for i in train for s in texts[i]))
    return (float(np.mean([any(s in same for s in texts[i]) for i in held])),
            float(np.mean([any(near_keys(s) & near for s in texts[i]) for i in held])))


def twins(examples, block=40):
    """A single-sentence split's minimal pairs: the share of adjacent rows a word apart; of rows with a twin (a
    row a word away); of those, the share whose nearest twin is the next or previous row, or within 50 rows;
    the share of rows with a twin in another block of ``block`` adjacent rows; the groups and the largest."""
    keys = [near_keys(tokenize(t)) for t in examples.text_a]
    rows_of = {}
    for i, ks in enumerate(keys):
        for key in ks:
            rows_of.setdefault(key, set()).add(i)
    mates = [set().union(*(rows_of[k] for k in ks)) - {i} for i, ks in enumerate(keys)]
    gap = np.array([min(abs(i - j) for j in m) for i, m in enumerate(mates) if m])
    groups = near_duplicate_groups(row_texts(examples))
    return dict(adjacent=float(np.mean([bool(a & b) for a, b in zip(keys, keys[1:])])),
                with_twin=float(np.mean([bool(m) for m in mates])), twin_adjacent=float(np.mean(gap == 1)),
                twin_within_50=float(np.mean(gap <= 50)),
                other_block=float(np.mean([any(j // block != i // block for j in m) for i, m in enumerate(mates)])),
                groups=int(len(np.unique(groups))), largest=int(np.bincount(groups).max()))


def measure(glue_dir=None, tasks=TASKS):
    out = {}
    for task in tasks:
        examples = training_rows(task, glue_dir)
        out[task] = {}
        for unit in UNITS:
            held, dropped = held_and_dropped(examples, unit=unit)
            same, near = leaks(examples, held, dropped)
            out[task][unit] = dict(unit=unit_name(task, unit), held=len(held), same=same, near=near)
        if task == "cola":
            out[task]["twins"] = twins(examples)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--glue-dir", help="GLUE folder (default: $GLUE_DIR, then data/glue)")
    p.add_argument("--tasks", nargs="*", default=list(TASKS))
    args = p.parse_args(argv)
    result = measure(args.glue_dir, args.tasks)
    for task, r in result.items():
        print(task, "  ".join(f"{u}: {r[u]['held']} held, same {100 * r[u]['same']:.1f}%, near "
                                f"{100 * r[u]['near']:.1f}%" for u in UNITS))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
