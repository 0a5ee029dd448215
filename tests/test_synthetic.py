"""The synthetic task of known difficulty (beexnp/synthetic.py, DESIGN §10).

Labels are recomputed here from the text alone, by a reading of the rules
written independently of the generator; the splits go through the real GLUE
reader and tokenizer.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beexnp.glue import Tokenizer, encode_examples, load_split
from beexnp.synthetic import FILLER, LEVELS, NEGATIVE, NEGATOR, POSITIVE, generate, write_glue_dir


def read_label(text):
    """(level, label) from the words alone: the rules of DESIGN §10."""
    words = text.split()
    found = [(i, w in POSITIVE) for i, w in enumerate(words) if w in POSITIVE or w in NEGATIVE]
    nots = [i for i, w in enumerate(words) if w == NEGATOR]
    if len(found) == 1 and not nots:
        return "easy", int(found[0][1])
    if len(found) == 3 and not nots:
        return "count", int(sum(p for _, p in found) >= 2)
    assert len(found) == 1 and len(nots) == 1, text
    (where, positive), = found
    negated = where > 0 and words[where - 1] == NEGATOR
    return "negation", int(positive) ^ int(negated)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60))
def test_every_label_follows_its_level_rule(seed, n):
    split = generate(n, np.random.default_rng(seed))
    for text, label, level in zip(split.examples.text_a, split.examples.labels, split.levels):
        assert read_label(text) == (LEVELS[level], label), text


def test_the_same_seed_gives_the_same_split():
    a, b = (generate(300, np.random.default_rng(7)) for _ in range(2))
    assert a.examples.text_a == b.examples.text_a
    assert np.array_equal(a.examples.labels, b.examples.labels) and np.array_equal(a.levels, b.levels)
    c = generate(300, np.random.default_rng(8))
    assert c.examples.text_a != a.examples.text_a


def test_shapes_shares_and_lengths(rng):
    n, length = 301, (5, 9)
    split = generate(n, rng, "dev", length=length)
    ex = split.examples
    assert len(split) == len(ex) == len(ex.labels) == n and ex.text_b is None and ex.split == "dev"
    assert ex.labels.dtype == np.int64 and set(ex.labels.tolist()) <= {0, 1}
    assert split.levels.dtype == np.int64 and np.ptp(np.bincount(split.levels, minlength=3)) <= 1
    words = [text.split() for text in ex.text_a]
    assert all(length[0] <= len(w) <= length[1] for w in words)
    assert set(w for ws in words for w in ws) <= set(POSITIVE + NEGATIVE + FILLER + (NEGATOR,))


def test_negation_labels_cannot_be_read_from_the_bag_of_words(rng):
    """Half the negation sentences flip their keyword: the label is independent of the keyword's polarity."""
    split = generate(3000, rng, levels=("negation",))
    positive = np.array([any(w in POSITIVE for w in t.split()) for t in split.examples.text_a])
    agree = np.mean(positive == split.examples.labels.astype(bool))
    assert 0.45 < agree < 0.55
    assert 0.45 < split.examples.labels.mean() < 0.55                  # both classes, at every level
    for level in ("easy", "count"):
        assert 0.4 < generate(1000, rng, levels=(level,)).examples.labels.mean() < 0.6


def test_the_glue_reader_and_tokenizer_read_the_written_files(tmp_path, rng):
    train, dev = generate(400, rng, "train"), generate(90, rng, "dev")
    root = write_glue_dir(tmp_path / "glue", {"train": train, "dev": dev})
    for name, split in (("train", train), ("dev", dev)):
        back = load_split("sst2", name, root)
        assert back.text_a == split.examples.text_a
        assert np.array_equal(back.labels, split.examples.labels)
        assert np.array_equal(back.lines, split.examples.lines)
    tokenizer = Tokenizer.fit(train.examples.text_a)
    encoded = encode_examples(tokenizer, dev.examples, max_len=16)
    assert len(encoded) == len(dev) and np.all(encoded.tokens != 1)      # every word seen in training: no [UNK]


@pytest.mark.parametrize("kwargs, message", [(dict(n=0), "n must be"),
                                             (dict(n=5, length=(3, 8)), "length"),
                                             (dict(n=5, length=(9, 8)), "length"),
                                             (dict(n=5, levels=("hard",)), "unknown level")])
def test_bad_arguments_say_what_is_wrong(kwargs, message, rng):
    with pytest.raises(ValueError, match=message):
        generate(rng=rng, **kwargs)
