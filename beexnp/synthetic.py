r"""A synthetic sentiment task whose inputs come in known difficulty levels (DESIGN §10).

Every sentence is neutral filler words with sentiment keywords mixed in; its
label is 1 (positive) or 0 (negative), and how it must be read is known by
construction:

    easy      one keyword:                                "the film was good with a cast"       -> 1
    count     three keywords, two of one polarity: the label is the majority
                                                          "dull plot but good and great music"  -> 1
    negation  one keyword and one "not".  "not" directly before the keyword flips
              it; before any other word it changes nothing:
                                                          "the plot was not good"               -> 0
                                                          "the plot was not long but good"      -> 1

An easy sentence is settled by one word, wherever it stands.  A count needs the
polarities of three words added up.  A negation needs word *order*: both
negation sentences above hold the same bag of words, so a model must look at
which word follows "not" -- attention over positions, not a mean of words.

The splits are ``beexnp.glue.Examples`` with SST-2's columns (one sentence, a
0/1 label), so ``write_glue_dir`` can put them where the GLUE reader and the
``Trainer`` look for SST-2 and the real training pipeline runs on them
unchanged.  Everything random comes from the ``np.random.Generator`` passed in.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beexnp.glue.reader import Examples
from beexnp.glue.tasks import get_task

LEVELS = ("easy", "count", "negation")
POSITIVE = ("good", "great", "superb", "lovely", "brilliant", "charming", "moving", "fresh")
NEGATIVE = ("bad", "awful", "dull", "boring", "weak", "clumsy", "tedious", "bland")
FILLER = ("the", "a", "film", "movie", "plot", "story", "cast", "script", "music", "ending", "was", "is",
          "and", "but", "with", "its", "this", "very", "quite", "long", "short", "new", "old", "french")
NEGATOR = "not"
TASK = get_task("sst2")          # the file layout the splits borrow: one sentence, labels 0 / 1


@dataclass
class SyntheticSplit:
    """``examples``: the sentences and labels as the GLUE reader returns them;
    ``levels``: int64 (n,), each sentence's difficulty, an index into ``LEVELS``."""

    examples: Examples
    levels: np.ndarray

    def __len__(self):
        return len(self.levels)


def keywords(rng, polarities):
    """One random keyword per polarity (1 positive, 0 negative)."""
    return [POSITIVE[rng.integers(len(POSITIVE))] if p else NEGATIVE[rng.integers(len(NEGATIVE))]
            for p in polarities]


def sentence(level, length, rng):
    """(words, label) of one sentence of ``length`` words at difficulty ``level`` (a name in LEVELS)."""
    if level == "easy":
        polarities = [int(rng.integers(2))]
    elif level == "count":
        majority = int(rng.integers(2))
        polarities = list(rng.permutation([majority, majority, 1 - majority]))
    elif level == "negation":
        polarities = [int(rng.integers(2))]
        length -= 1                                                    # "not" is inserted below
    else:
        raise ValueError(f"unknown level {level!r}; choose one of {LEVELS}")
    words = [FILLER[i] for i in rng.integers(len(FILLER), size=length)]
    spots = rng.choice(length, size=len(polarities), replace=False)    # where the keywords go
    for spot, word in zip(spots, keywords(rng, polarities)):
        words[spot] = word
    label = int(sum(polarities) * 2 > len(polarities))                 # the majority (the only one, if one)
    if level == "negation":
        flips = bool(rng.integers(2))
        fillers = [i for i in range(length) if i != spots[0]]
        before = spots[0] if flips else fillers[rng.integers(len(fillers))]
        words.insert(before, NEGATOR)                                  # "not" directly before that word
        label = 1 - label if flips else label
    return words, label


def generate(n, rng, split="train", levels=LEVELS, length=(6, 12)):
    """``n`` sentences, the levels in equal shares (shuffled), ``length`` = (fewest, most) words.

    Returns a ``SyntheticSplit``; its examples are labelled like SST-2 (task "sst2")."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if min(length) < 4 or length[0] > length[1]:
        raise ValueError(f"length must be (fewest, most) words with 4 <= fewest <= most, got {length}")
    level_ids = rng.permutation(np.arange(n) % len(levels))
    rows = [sentence(levels[k], int(rng.integers(length[0], length[1] + 1)), rng) for k in level_ids]
    examples = Examples(task=TASK.name, split=split, text_a=[" ".join(words) for words, _ in rows], text_b=None,
                        labels=np.array([label for _, label in rows], np.int64),
                        lines=np.arange(2, n + 2, dtype=np.int64))            # line 1 is the header
    return SyntheticSplit(examples, np.array([LEVELS.index(levels[k]) for k in level_ids], np.int64))


def write_glue_dir(root, splits):
    """Write ``{split name: SyntheticSplit}`` as ``root/SST-2/<split>.tsv`` in SST-2's format; returns ``root``.

    ``Trainer(..., glue_dir=root)`` and ``load_split("sst2", split, root)`` then read them."""
    folder = Path(root) / TASK.dir
    folder.mkdir(parents=True, exist_ok=True)
    for name, split in splits.items():
        rows = [f"{text}\t{label}" for text, label in zip(split.examples.text_a, split.examples.labels)]
        (folder / TASK.splits[name]).write_text("sentence\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return Path(root)
