"""Encoding a split, padded batches with masks, bucketing, shuffling, subsets."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beexnp.glue import Batch, Examples, Tokenizer, encode_examples, iterate_batches, subset
from beexnp.glue.batching import EncodedSplit, batch_order
from beexnp.glue.tokenizer import PAD_ID


def make_examples(n, pair=False, labels="class", seed=0):
    """n rows of 1..12 words; labels int64 classes, float32 scores or None."""
    rng = np.random.default_rng(seed)
    words = np.array(["w%d" % i for i in range(20)])
    text = [" ".join(rng.choice(words, size=rng.integers(1, 13))) for _ in range(n)]
    other = [" ".join(rng.choice(words, size=rng.integers(1, 13))) for _ in range(n)] if pair else None
    values = {"class": rng.integers(0, 2, n).astype(np.int64),
              "score": rng.uniform(0, 5, n).astype(np.float32), None: None}[labels]
    return Examples(task="rte" if pair else "sst2", split="train", text_a=text, text_b=other,
                    labels=values, lines=np.arange(2, n + 2))


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer.fit(["w%d" % i for i in range(15)])   # w15..w19 are unknown


def test_encode_examples_matches_the_tokenizer(tokenizer):
    examples = make_examples(30, pair=True)
    encoded = encode_examples(tokenizer, examples, max_len=10)
    assert len(encoded) == 30 and (encoded.task, encoded.split) == ("rte", "train")
    assert encoded.tokens.dtype == np.int64 and encoded.offsets.dtype == np.int64
    for i in range(30):
        assert encoded.sequence(i).tolist() == tokenizer.encode(examples.text_a[i], examples.text_b[i], max_len=10)
    assert encoded.lengths.max() <= 10
    np.testing.assert_array_equal(encoded.labels, examples.labels)
    assert encoded.labels is not examples.labels


def test_label_dtypes(tokenizer):
    assert encode_examples(tokenizer, make_examples(5, labels="score"), 8).labels.dtype == np.float32
    assert encode_examples(tokenizer, make_examples(5), 8).labels.dtype == np.int64
    assert encode_examples(tokenizer, make_examples(5, labels=None), 8).labels is None


def test_batches_in_order_padded_to_the_longest_in_each_batch(tokenizer):
    encoded = encode_examples(tokenizer, make_examples(23), max_len=16)
    batches = list(iterate_batches(encoded, batch_size=5))
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    np.testing.assert_array_equal(np.concatenate([b.index for b in batches]), np.arange(23))
    for batch in batches:
        assert isinstance(batch, Batch)
        lengths = encoded.lengths[batch.index]
        assert batch.ids.dtype == np.int64 and batch.mask.dtype == np.float32 and batch.index.dtype == np.int64
        assert batch.ids.shape == batch.mask.shape == (len(batch), lengths.max())
        np.testing.assert_array_equal(batch.mask.sum(axis=1), lengths)
        np.testing.assert_array_equal(batch.ids[batch.mask == 0], PAD_ID)
        for row, i in enumerate(batch.index):
            np.testing.assert_array_equal(batch.ids[row, :lengths[row]], encoded.sequence(i))
            assert np.all(batch.mask[row, :lengths[row]] == 1)
        np.testing.assert_array_equal(batch.labels, encoded.labels[batch.index])


def test_test_split_batches_have_no_labels(tokenizer):
    encoded = encode_examples(tokenizer, make_examples(4, labels=None), 8)
    assert all(b.labels is None for b in iterate_batches(encoded, 3))


def test_shuffle_needs_a_generator(tokenizer):
    encoded = encode_examples(tokenizer, make_examples(4), 8)
    with pytest.raises(ValueError, match="default_rng"):
        list(iterate_batches(encoded, 2, shuffle=True))
    with pytest.raises(ValueError, match="batch_size"):
        list(iterate_batches(encoded, 0))


def test_shuffle_is_reproducible_from_the_seed(tokenizer):
    encoded = encode_examples(tokenizer, make_examples(200), 16)

    def order(seed, **kw):
        return np.concatenate([b.index for b in iterate_batches(encoded, 16, np.random.default_rng(seed),
                                                                 shuffle=True, **kw)])
    np.testing.assert_array_equal(order(1), order(1))
    np.testing.assert_array_equal(order(1, bucket=True), order(1, bucket=True))
    assert not np.array_equal(order(1), order(2))
    assert not np.array_equal(order(1), np.arange(200))


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(1, 30), max_size=80), batch_size=st.integers(1, 9),
       shuffle=st.booleans(), bucket=st.booleans(), drop_last=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_every_row_once_and_full_batches(lengths, batch_size, shuffle, bucket, drop_last, seed):
    lengths = np.array(lengths, dtype=np.int64)
    batches = batch_order(lengths, batch_size, np.random.default_rng(seed), shuffle, bucket, drop_last,
                          bucket_batches=3)
    n = len(lengths)
    seen = np.concatenate(batches) if batches else np.array([], dtype=np.int64)
    assert len(set(seen.tolist())) == len(seen)                   # no row twice
    assert sum(len(b) < batch_size for b in batches) <= (0 if drop_last else 1)
    if drop_last:
        assert len(batches) == n // batch_size
    else:
        assert sorted(seen.tolist()) == list(range(n))            # every row
    if bucket and not shuffle:                                    # sorted inside each chunk of 3 batches
        chunk = 3 * batch_size
        for start in range(0, len(seen), chunk):
            assert np.all(np.diff(lengths[seen[start:start + chunk]]) >= 0)


def test_bucketing_cuts_padding(tokenizer):
    encoded = encode_examples(tokenizer, make_examples(1000, pair=True), 32)
    rng = np.random.default_rng(0)

    def padded_cells(bucket):
        return sum(b.ids.size for b in iterate_batches(encoded, 32, rng, shuffle=True, bucket=bucket))
    real = int(encoded.lengths.sum())
    assert padded_cells(True) - real < 0.5 * (padded_cells(False) - real)


def test_take_and_padded(tokenizer):
    encoded = encode_examples(tokenizer, make_examples(10), 16)
    part = encoded.take([7, 2, 2])
    assert isinstance(part, EncodedSplit) and len(part) == 3
    for row, i in enumerate([7, 2, 2]):
        np.testing.assert_array_equal(part.sequence(row), encoded.sequence(i))
    np.testing.assert_array_equal(part.labels, encoded.labels[[7, 2, 2]])
    assert len(encoded.take([])) == 0
    ids, mask = encoded.padded([])
    assert ids.shape == mask.shape == (0, 0)


def test_subset_first_or_random(tokenizer):
    examples = make_examples(50)
    first = subset(examples, 5)
    assert first.text_a == examples.text_a[:5]
    np.testing.assert_array_equal(first.lines, examples.lines[:5])
    random = subset(examples, 5, np.random.default_rng(3))
    again = subset(examples, 5, np.random.default_rng(3))
    assert random.text_a == again.text_a and len(random) == 5
    assert np.all(np.diff(random.lines) > 0)                  # file order kept
    assert not np.array_equal(random.lines, first.lines)
    assert len(subset(examples, 500)) == 50                   # n beyond the split: all of it
    with pytest.raises(ValueError):
        subset(examples, -1)

    encoded = encode_examples(tokenizer, examples, 16)
    sub = subset(encoded, 5, np.random.default_rng(3))
    reference = encode_examples(tokenizer, random, 16)        # the same rows either way
    np.testing.assert_array_equal(sub.tokens, reference.tokens)
    np.testing.assert_array_equal(sub.labels, reference.labels)
