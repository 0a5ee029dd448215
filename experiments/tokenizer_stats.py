"""Word vs. subword tokens on dev (DESIGN §2.6): how many tokens are [UNK], how many sentences hold one, and
how many tokens a sentence takes.

    python experiments/tokenizer_stats.py [--tasks cola sst2 mrpc] [--glue-dir DIR]

Each tokenizer is fitted as a run selected on the held-out slice fits it (DESIGN §9.1): on the training rows
minus the held-out ones, ``min_freq`` 2; the word vocabulary at most 20,000 tokens, BPE at the word
vocabulary's size and at 2,000 and 8,000.
"""
import argparse
import json
import sys

import numpy as np

from beexnp.glue import load_split
from beexnp.glue.heldout import split_heldout, training_rows
from beexnp.glue.tasks import get_task
from beexnp.glue.tokenizer import UNK_ID, fit_tokenizer

TASKS = ("cola", "sst2", "mrpc")


def stats(tokenizer, texts):
    """[UNK] share of the tokens, share of texts with an [UNK], mean tokens per text (specials left out)."""
    ids = [tokenizer.token_ids(t) for t in texts]
    unk = np.array([sum(i == UNK_ID for i in row) for row in ids])
    lengths = np.array([len(row) for row in ids])
    return dict(vocab=len(tokenizer), unk_tokens=float(unk.sum() / lengths.sum()),
                texts_with_unk=float(np.mean(unk > 0)), tokens_per_text=float(lengths.mean()))


def measure(task, glue_dir=None, sizes=(None, 2000, 8000)):
    """{tokenizer: stats} on dev; a BPE size None is the word vocabulary's."""
    train, _ = split_heldout(training_rows(task, glue_dir))
    t = get_task(task)
    dev = load_split(t, t.dev_splits[0], glue_dir)
    texts = list(dev.text_a) + list(dev.text_b or [])
    word = fit_tokenizer("word", train.text_a, train.text_b, 2, 20000)
    out = {"word": stats(word, texts)}
    for size in (size or len(word) for size in sizes):
        out[f"bpe{size}"] = stats(fit_tokenizer("bpe", train.text_a, train.text_b, 2, size), texts)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="*", default=list(TASKS))
    p.add_argument("--glue-dir", help="GLUE folder (default: $GLUE_DIR, then data/glue)")
    args = p.parse_args(argv)
    result = {task: measure(task, args.glue_dir) for task in args.tasks}
    for task, rows in result.items():
        for name, r in rows.items():
            print(f"{task:5} {name:8} vocab {r['vocab']:6d}  [UNK] {100 * r['unk_tokens']:5.2f}% of tokens, "
                  f"{100 * r['texts_with_unk']:5.1f}% of texts; {r['tokens_per_text']:5.1f} tokens per text")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
