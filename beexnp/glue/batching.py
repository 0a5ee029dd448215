"""From ``Examples`` to padded id batches.

``encode_examples`` turns every row into ids once (``Tokenizer.encode``) and
stores them *ragged*: one flat int64 array ``tokens`` plus ``offsets``, so row
``i`` is ``tokens[offsets[i]:offsets[i + 1]]``.  No memory is spent on padding.

``iterate_batches`` cuts a split into ``Batch``es:

* ``ids``    int64   (B, T)  padded with 0 (``[PAD]``);
* ``mask``   float32 (B, T)  1 on real tokens, 0 on padding;
* ``labels`` (B,)            int64 classes, float32 scores, or None (test);
* ``index``  int64   (B,)    the rows of the split in the batch,

where T is the longest real sequence *of that batch*, not of the split.  To
waste even less on padding, ``bucket=True`` sorts the rows by length inside
chunks of ``bucket_batches`` batches, so that each batch holds rows of similar
length, then (with ``shuffle``) shuffles the order of the batches.  All
randomness comes from the ``np.random.Generator`` passed in.

``subset`` keeps the first n or a random n rows of ``Examples`` or of an
``EncodedSplit`` (for quick runs in notebooks and CI).
"""
from dataclasses import dataclass

import numpy as np

from beexnp.glue.tokenizer import PAD_ID


@dataclass
class EncodedSplit:
    """Id sequences of one split (ragged) and their labels.

    ``tokens``: int64, every sequence one after the other.  ``offsets``:
    int64 (N + 1,), sequence i is ``tokens[offsets[i]:offsets[i + 1]]``.
    ``labels``: int64 classes, float32 scores, or None for a test split."""

    tokens: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray | None
    task: str = ""
    split: str = ""

    def __len__(self):
        return len(self.offsets) - 1

    @property
    def lengths(self):
        """int64 (N,): the length of every sequence."""
        return np.diff(self.offsets)

    def sequence(self, i):
        """The ids of row ``i``."""
        return self.tokens[self.offsets[i]:self.offsets[i + 1]]

    def padded(self, indices):
        """Rows ``indices`` as (ids int64 (B, T), mask float32 (B, T)), padded
        with ``[PAD]`` to T = their longest length."""
        indices = np.asarray(indices, dtype=np.int64)
        starts, lengths = self.offsets[indices], self.lengths[indices]
        steps = np.arange(lengths.max(initial=0))
        real = steps < lengths[:, None]                          # (B, T)
        positions = np.where(real, starts[:, None] + steps, 0)   # padding reads tokens[0]...
        ids = np.where(real, self.tokens[positions], PAD_ID)     # ...then becomes [PAD]
        return ids.astype(np.int64, copy=False), real.astype(np.float32)

    def take(self, indices):
        """A new ``EncodedSplit`` holding the rows ``indices`` (in that order)."""
        indices = np.asarray(indices, dtype=np.int64)
        ids, mask = self.padded(indices)
        lengths = self.lengths[indices]
        return EncodedSplit(
            tokens=ids[mask.astype(bool)],   # row-major: the sequences one after the other
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            labels=None if self.labels is None else self.labels[indices],
            task=self.task, split=self.split)


@dataclass(frozen=True)
class Batch:
    """One batch: ``ids`` int64 (B, T), ``mask`` float32 (B, T), ``labels``
    (B,) or None, ``index`` int64 (B,) rows of the split."""

    ids: np.ndarray
    mask: np.ndarray
    labels: np.ndarray | None
    index: np.ndarray

    def __len__(self):
        return len(self.index)


def encode_examples(tokenizer, examples, max_len=64):
    """Encode every row of ``examples`` with ``tokenizer.encode(a, b, max_len)``
    -> ``EncodedSplit`` (labels copied from the examples)."""
    text_b = examples.text_b if examples.text_b is not None else [None] * len(examples)
    sequences = [tokenizer.encode(a, b, max_len=max_len) for a, b in zip(examples.text_a, text_b)]
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    return EncodedSplit(
        tokens=np.fromiter((i for s in sequences for i in s), dtype=np.int64, count=int(lengths.sum())),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        labels=None if examples.labels is None else examples.labels.copy(),
        task=examples.task, split=examples.split)


def batch_order(lengths, batch_size, rng=None, shuffle=False, bucket=False, drop_last=False,
                bucket_batches=50):
    """The row indices of every batch, as a list of int64 arrays (see the
    module docstring).  ``lengths`` is only read when ``bucket`` is set."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if shuffle and not isinstance(rng, np.random.Generator):
        raise ValueError("shuffle=True needs rng=np.random.default_rng(seed)")
    n = len(lengths)
    order = rng.permutation(n) if shuffle else np.arange(n)
    if bucket:
        chunk = batch_size * bucket_batches
        pieces = [order[start:start + chunk] for start in range(0, n, chunk)]
        order = np.concatenate([p[np.argsort(lengths[p], kind="stable")] for p in pieces] or [order])
    batches = [order[start:start + batch_size] for start in range(0, n, batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    if bucket and shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def iterate_batches(encoded, batch_size, rng=None, shuffle=False, bucket=False, drop_last=False,
                    bucket_batches=50):
    """Yield the ``Batch``es of ``encoded`` (an ``EncodedSplit``).

    ``shuffle`` permutes the rows with ``rng`` (required then); ``bucket``
    groups rows of similar length (sorting within chunks of
    ``bucket_batches`` batches, then shuffling the batch order when
    ``shuffle``); ``drop_last`` leaves out a final incomplete batch."""
    for index in batch_order(encoded.lengths, batch_size, rng, shuffle, bucket, drop_last, bucket_batches):
        ids, mask = encoded.padded(index)
        labels = None if encoded.labels is None else encoded.labels[index]
        yield Batch(ids=ids, mask=mask, labels=labels, index=index.astype(np.int64))


def subset(data, n, rng=None):
    """The first ``n`` rows of ``data`` (``Examples`` or ``EncodedSplit``), or
    with ``rng`` a random ``n`` of them (kept in file order).  ``n`` larger
    than the split means the whole split."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    total = len(data)
    n = min(n, total)
    if rng is None:
        return data.take(np.arange(n))
    return data.take(np.sort(rng.choice(total, size=n, replace=False)))
