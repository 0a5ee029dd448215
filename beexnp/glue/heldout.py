r"""A fixed held-out slice of a task's training split, on which every choice is made (DESIGN §9.1).

GLUE's test labels are not public, so dev is the only split results can be
reported on, and a choice made on dev (the epoch, a learning rate, delta)
makes the dev number optimistic.  Honest selection holds out a slice of the
training split instead:

    k    = round(fraction * n), at least 1 and at most n - 1        n training rows (after train_subset)
    rows = k row ids drawn without replacement by np.random.default_rng([seed, crc32(task)]), sorted

The rows depend on (task, seed, n) only.  They leave the training split, its
vocabulary included, and every choice is made on them; dev is scored once,
at the end.

SST-2 is different (``Task.phrases``): its training split holds every phrase
of each sentence's parse tree, so a row drawn at random is, nine times in ten,
a phrase found word for word inside a row that stays in training (88.7 % of
400 rows drawn by the rule above; 0 % of dev sentences), and held-out
accuracy rewards memorising phrases (92 % held-out against 80 % dev).  Its
held-out slice is made of sentences instead (``phrase_heldout``):

    sentences = rows that are no contiguous word span of another row       (SST-2: 6,885 of 67,349)
    held      = k = round(fraction * #sentences) of them, drawn as above
    train     = rows minus held minus every row that is a word span of a held sentence

Every other task holds out whole groups of rows (``unit="groups"``, the default since issue 25;
``unit="rows"`` draws single rows, the rule above, as every record before it did):

    near(s)   = the token sequence of s and each one with one token deleted        (tokenize, §2.1)
    linked    = two rows whose sentences (either side of a pair) share a key of near(.)
                (the same sentence, or one word substituted, inserted or deleted)
    groups    = connected components of linked rows                                 (CoLA: 6,628 of 8,551 rows)
    held      = whole groups in the order of a permutation drawn as above, until >= k rows are held

CoLA's rows are minimal pairs from linguistics papers ("... and I'm giving up." / "... or I'm giving up."),
and a pair task repeats its sentences across rows (WNLI and RTE premises, STS-B captions): a single row
drawn at random has its twin in training.  With groups, no held-out sentence, nor one a word away, is in
training.

``ensure_heldout_file`` stores the held-out rows as a JSON file beside the
experiments (``experiments/heldout/<task>.json``) with the sha256 of the
training file: a changed file, other settings, or a NumPy whose generator
draws other rows are detected, never silently mixed.
"""
import dataclasses
import hashlib
import json
import zlib
from pathlib import Path

import numpy as np

from beexnp.glue.batching import subset
from beexnp.glue.reader import load_split, nonempty
from beexnp.glue.tasks import get_task
from beexnp.glue.tokenizer import tokenize
from beexnp.outputs import problem, write_text

FORMAT = "beexnp.heldout/1"
SPLIT = "heldout"
UNITS = ("groups", "rows")              # what is held out whole: groups of linked rows (default), or single rows


class HeldoutMismatch(ValueError):
    """A stored held-out file does not describe the rows this data and these settings give."""


def heldout_rows(task, n_rows, fraction=0.1, seed=0):
    """The held-out row ids (sorted int64) of a training split of ``n_rows`` rows."""
    name = get_task(task).name
    if n_rows < 2:
        raise problem(f"holding rows out needs at least 2 training rows, got {n_rows}", "--select-on heldout",
                      "give more training rows (--train-subset), or select on dev")
    if not 0 < fraction < 1:
        raise ValueError(f"the held-out fraction must be in (0, 1), got {fraction}")
    k = min(max(int(round(fraction * n_rows)), 1), n_rows - 1)
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    return np.sort(rng.choice(n_rows, size=k, replace=False)).astype(np.int64)


def word_spans(words, whole=True):
    """Every contiguous span of a list of words, joined by single spaces (the whole list last, if ``whole``)."""
    n = len(words)
    return [" ".join(words[i:j]) for i in range(n) for j in range(i + 1, n + 1) if whole or j - i < n]


def phrase_heldout(texts, task, fraction=0.1, seed=0):
    """(held sentence ids, ids of the rows inside them), both sorted int64, for a split of parse-tree phrases.

    A sentence is a row that is no contiguous word span of another row; k = round(fraction * #sentences) of
    them are drawn as ``heldout_rows`` draws rows, and every row that is a word span of a held sentence (the
    sentence's own phrases) is returned to leave training with it."""
    words = [t.split() for t in texts]
    joined = [" ".join(w) for w in words]                                  # each row, single spaces
    rows_of = {}                                                           # text -> row ids
    for i, text in enumerate(joined):
        rows_of.setdefault(text, []).append(i)
    # Longest rows first: a row's containers are longer, so they came before it, and a span of a span is a
    # span of the outer row; only sentences need their spans listed (SST-2: 6,885 rows, not 67,349).
    spans, sentences = set(), []
    for i in sorted(range(len(words)), key=lambda i: -len(words[i])):
        if joined[i] not in spans:
            sentences.append(i)
            spans.update(word_spans(words[i], whole=False))
    sentences = np.sort(np.array(sentences, dtype=np.int64))
    if len(sentences) < 2:
        raise problem(f"holding sentences out needs at least 2 rows that no other row contains, got "
                      f"{len(sentences)}", "--select-on heldout",
                      "give more training rows (--train-subset), or select on dev")
    held = sentences[heldout_rows(task, len(sentences), fraction, seed)]
    phrases = {i for h in held for span in word_spans(words[h]) for i in rows_of.get(span, [])}
    return held, np.array(sorted(phrases.difference(held.tolist())), dtype=np.int64)


def near_keys(tokens):
    """The token tuple and each tuple with one token deleted: two sentences share a key when they are equal or
    one token is substituted, inserted or deleted (or, rarely, two adjacent tokens swapped)."""
    tokens = tuple(tokens)
    return {tokens, *(tokens[:i] + tokens[i + 1:] for i in range(len(tokens)))}


def near_duplicate_groups(sentences):
    """Group id (int64, the smallest row of its group) of each row; ``sentences[i]`` is the list of row i's
    texts (one, or the two of a pair).  Rows sharing a ``near_keys`` key of any of their texts are linked, and
    a group is a connected component of links."""
    parent = list(range(len(sentences)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first = {}                                                            # key -> the first row that had it
    for i, texts in enumerate(sentences):
        for key in set().union(*(near_keys(tokenize(t)) for t in texts)):
            j = first.setdefault(key, i)
            a, b = root(i), root(j)
            parent[max(a, b)] = min(a, b)
    return np.array([root(i) for i in range(len(sentences))], dtype=np.int64)


def grouped_heldout(groups, task, fraction=0.1, seed=0):
    """Held-out row ids (sorted int64): whole groups (``groups[i]`` is row i's group id) taken in the order of
    a permutation drawn by default_rng([seed, crc32(task)]) until at least round(fraction * n) rows are held;
    at least one group stays in training."""
    groups = np.asarray(groups)
    if not 0 < fraction < 1:
        raise ValueError(f"the held-out fraction must be in (0, 1), got {fraction}")
    ids, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    if len(ids) < 2:
        raise ValueError(f"holding groups out needs at least 2 groups of rows, got {len(ids)}")
    k = max(int(round(fraction * len(groups))), 1)
    order = np.random.default_rng([seed, zlib.crc32(get_task(task).name.encode())]).permutation(len(ids))
    taken = min(int(np.searchsorted(np.cumsum(sizes[order]), k)) + 1, len(ids) - 1)
    return np.flatnonzero(np.isin(inverse, order[:taken])).astype(np.int64)


def row_texts(examples):
    """Each row's texts: [a] or [a, b]."""
    return [[a] if examples.text_b is None else [a, b] for a, b in
            zip(examples.text_a, examples.text_b or examples.text_a)]


def unit_name(task, unit="groups"):
    """What the held-out slice of ``task`` is made of, as its stored file says (``"unit"``)."""
    if unit not in UNITS:
        raise ValueError(f"the held-out unit must be one of {', '.join(UNITS)}, got {unit!r}")
    return "sentences" if get_task(task).phrases else {"groups": "near-duplicate groups", "rows": "rows"}[unit]


def held_and_dropped(examples, fraction=0.1, seed=0, unit="groups"):
    """(held-out row ids, ids of the other rows that leave training with them) of a training split's ``Examples``."""
    name = unit_name(examples.task, unit)
    if name == "sentences":
        return phrase_heldout(examples.text_a, examples.task, fraction, seed)
    if name == "rows":
        return heldout_rows(examples.task, len(examples), fraction, seed), np.zeros(0, np.int64)
    groups = near_duplicate_groups(row_texts(examples))
    return grouped_heldout(groups, examples.task, fraction, seed), np.zeros(0, np.int64)


def split_heldout(examples, fraction=0.1, seed=0, unit="groups"):
    """(training rows, held-out rows) of the ``Examples`` of a training split; the second is split "heldout"."""
    held, dropped = held_and_dropped(examples, fraction, seed, unit)
    kept = np.setdiff1d(np.arange(len(examples)), np.concatenate([held, dropped]))
    return examples.take(kept), dataclasses.replace(examples.take(held), split=SPLIT)


def training_rows(task, glue_dir=None, train_subset=None):
    """The ``Examples`` of the training split, cut to its first ``train_subset`` rows as a run does."""
    train = nonempty(load_split(task, "train", glue_dir))
    return subset(train, train_subset) if train_subset else train


def load_heldout(task, glue_dir=None, fraction=0.1, seed=0, train_subset=None, unit="groups"):
    """The held-out rows of a task, as ``Examples`` of split "heldout"."""
    return split_heldout(training_rows(task, glue_dir, train_subset), fraction, seed, unit)[1]


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def heldout_record(examples, fraction=0.1, seed=0, unit="groups"):
    """The JSON-able description of the held-out rows of a training split (``Examples`` read from a file)."""
    task = get_task(examples.task)
    held, dropped = held_and_dropped(examples, fraction, seed, unit)
    return dict(format=FORMAT, task=task.name, train_file=f"{task.dir}/{task.splits['train']}",
                train_sha256=sha256(examples.path), n_rows=len(examples), fraction=fraction, seed=seed,
                unit=unit_name(task.name, unit), n_dropped=len(dropped), rows=held.tolist())


def heldout_file(folder, task, unit="groups"):
    """Where the held-out rows of ``task`` drawn by ``unit`` are stored: ``<task>.json`` (groups, the default), or
    ``<task>-rows.json`` for the single rows of the records before issue 25."""
    name = get_task(task).name
    return Path(folder) / (f"{name}.json" if unit_name(name, unit) == unit_name(name) else f"{name}-{unit}.json")


def ensure_heldout_file(folder, task, glue_dir=None, fraction=0.1, seed=0, train_subset=None, unit="groups"):
    """``heldout_file(folder, task, unit)``: written if missing, else checked against the data and settings;
    returns its path.

    A ``HeldoutMismatch`` names what differs (training file, row count, fraction,
    seed, or the rows this NumPy draws); delete the file to draw the rows again."""
    record = heldout_record(training_rows(task, glue_dir, train_subset), fraction, seed, unit)
    path = heldout_file(folder, task, unit)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        head = "".join(f" {json.dumps(k)}: {json.dumps(v)},\n" for k, v in record.items() if k != "rows")
        write_text(path, "{\n" + head + f' "rows": {json.dumps(record["rows"])}\n}}\n')   # the ids on one line
        return path
    stored = json.loads(path.read_text())
    why = {"train_sha256": "the training file changed since the rows were drawn",
           "n_rows": "another number of training rows (train_subset?)",
           "fraction": "another held-out fraction", "seed": "another held-out seed",
           "unit": "rows drawn by another rule (SST-2 holds out whole sentences, the others near-duplicate "
                   "groups, DESIGN §9.1)",
           "rows": "this NumPy draws other rows from the same seed"}
    for key, reason in why.items():
        if stored.get(key, "rows" if key == "unit" else None) != record[key]:      # files before "unit": rows
            shown = "" if key == "rows" else f" (stored {stored.get(key)!r}, now {record[key]!r})"
            raise HeldoutMismatch(f"{path}: {reason}{shown}; delete the file to draw the held-out rows "
                                  "again, and rerun every run selected on them")
    return path
