"""The word-level tokenizer: splitting, vocabulary, encoding, truncation, saving."""
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beexnp.glue import Tokenizer
from beexnp.glue.tokenizer import CLS_ID, PAD_ID, SEP_ID, SPECIALS, UNK_ID, pair_lengths, tokenize


def test_tokenize_lowercases_words_and_punctuation():
    assert tokenize("Don't stop!") == ["don", "'", "t", "stop", "!"]
    assert tokenize("  U.S. sales,\tup 2.5%  ") == ["u", ".", "s", ".", "sales", ",", "up", "2", ".", "5", "%"]
    assert tokenize("") == []


def test_special_tokens_have_fixed_ids():
    tok = Tokenizer.fit(["a b"])
    assert (PAD_ID, UNK_ID, CLS_ID, SEP_ID) == (0, 1, 2, 3)
    assert tok.vocab[:4] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    assert [tok.ids[s] for s in SPECIALS] == [0, 1, 2, 3]


def test_vocabulary_by_frequency_then_alphabetically():
    tok = Tokenizer.fit(["b a c", "a b"], ["a z y"])
    # a: 3, b: 2, then c, y, z once each (alphabetical)
    assert tok.vocab[4:] == ["a", "b", "c", "y", "z"]
    assert len(tok) == 9


def test_min_freq_and_max_size():
    texts = ["a a a b b c", "d"]
    assert Tokenizer.fit(texts, min_freq=2).vocab[4:] == ["a", "b"]
    assert Tokenizer.fit(texts, max_size=6).vocab == list(SPECIALS) + ["a", "b"]   # max_size counts specials
    assert len(Tokenizer.fit(texts, max_size=4)) == 4
    with pytest.raises(ValueError, match="min_freq"):
        Tokenizer.fit(texts, min_freq=0)
    with pytest.raises(ValueError, match="max_size"):
        Tokenizer.fit(texts, max_size=3)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(alphabet="abc .!", max_size=12), max_size=8), st.randoms(use_true_random=False))
def test_vocabulary_does_not_depend_on_text_order(texts, random):
    shuffled = list(texts)
    random.shuffle(shuffled)
    assert Tokenizer.fit(texts).vocab == Tokenizer.fit(shuffled).vocab


def test_encode_single_and_pair():
    tok = Tokenizer.fit(["the cat sat", "a dog"])
    the, cat, sat, dog = (tok.ids[w] for w in ("the", "cat", "sat", "dog"))
    assert tok.encode("The cat sat") == [CLS_ID, the, cat, sat]
    assert tok.encode("the cat", "a dog") == [CLS_ID, the, cat, SEP_ID, tok.ids["a"], dog]
    assert tok.encode("the zebra") == [CLS_ID, the, UNK_ID]
    assert tok.encode("", "") == [CLS_ID, SEP_ID]


def test_truncation_of_a_single_sentence():
    tok = Tokenizer.fit(["a b c d e"])
    assert tok.tokens(tok.encode("a b c d e", max_len=4)) == ["[CLS]", "a", "b", "c"]
    assert len(tok.encode("a b c d e", max_len=None)) == 6
    with pytest.raises(ValueError, match="max_len"):
        tok.encode("a", max_len=2)


def test_truncation_of_a_pair_trims_the_longer_side_first():
    tok = Tokenizer.fit(["a b c d e f g h i j", "x y"])
    # budget 8 - 2 = 6: the 2-token side is kept, the 10-token side gets 4
    assert tok.tokens(tok.encode("a b c d e f g h i j", "x y", max_len=8)) == \
        ["[CLS]", "a", "b", "c", "d", "[SEP]", "x", "y"]
    assert tok.tokens(tok.encode("x y", "a b c d e f g h i j", max_len=8)) == \
        ["[CLS]", "x", "y", "[SEP]", "a", "b", "c", "d"]
    # both long: budget 5 split 3 / 2
    assert tok.tokens(tok.encode("a b c d", "e f g h", max_len=7)) == \
        ["[CLS]", "a", "b", "c", "[SEP]", "e", "f"]


def reference_pair_lengths(len_a, len_b, budget):
    """The definition: drop one token from the longer side (b on ties) until it fits."""
    while len_a + len_b > budget:
        if len_a > len_b:
            len_a -= 1
        else:
            len_b -= 1
    return len_a, len_b


@given(st.integers(0, 60), st.integers(0, 60), st.integers(1, 80))
def test_pair_lengths_equals_trimming_one_token_at_a_time(len_a, len_b, budget):
    assert pair_lengths(len_a, len_b, budget) == reference_pair_lengths(len_a, len_b, budget)


@settings(deadline=None)
@given(st.lists(st.sampled_from("abcde"), min_size=1, max_size=40),
       st.lists(st.sampled_from("abcde"), min_size=1, max_size=40), st.integers(4, 50))
def test_encoded_pair_fits_and_keeps_both_sides(words_a, words_b, max_len):
    tok = Tokenizer.fit(["a b c d e"])
    ids = tok.encode(" ".join(words_a), " ".join(words_b), max_len=max_len)
    assert len(ids) <= max_len
    assert ids[0] == CLS_ID and ids.count(SEP_ID) == 1
    sep = ids.index(SEP_ID)
    assert sep > 1 and sep < len(ids) - 1   # a and b both keep at least one token
    assert tok.tokens(ids[1:sep]) == words_a[:sep - 1]   # a prefix of each side is kept
    assert tok.tokens(ids[sep + 1:]) == words_b[:len(ids) - sep - 1]


def test_tokens_and_decode():
    tok = Tokenizer.fit(["hello world"])
    ids = tok.encode("Hello, world", "hello") + [PAD_ID, PAD_ID]
    assert tok.tokens(ids) == ["[CLS]", "hello", "[UNK]", "world", "[SEP]", "hello", "[PAD]", "[PAD]"]
    assert tok.decode(ids) == "[CLS] hello [UNK] world [SEP] hello"


def test_state_dict_round_trip_through_json():
    tok = Tokenizer.fit(["The quick brown fox", "jumps over the lazy dog"], min_freq=1, max_size=10)
    restored = Tokenizer.from_state_dict(json.loads(json.dumps(tok.state_dict())))
    assert restored.vocab == tok.vocab and len(restored) == len(tok) == 10
    assert restored.encode("the lazy fox", "quick") == tok.encode("the lazy fox", "quick")


def test_from_state_dict_rejects_other_formats():
    state = Tokenizer.fit(["a"]).state_dict()
    with pytest.raises(ValueError, match="not a saved beexnp tokenizer"):
        Tokenizer.from_state_dict({**state, "format": "something else"})
    with pytest.raises(ValueError, match="split text with"):
        Tokenizer.from_state_dict({**state, "pattern": r"\S+"})


def test_vocabulary_must_start_with_the_specials_and_be_unique():
    with pytest.raises(ValueError, match="must start with"):
        Tokenizer(["[UNK]", "[PAD]", "[CLS]", "[SEP]", "a"])
    with pytest.raises(ValueError, match="twice"):
        Tokenizer(list(SPECIALS) + ["a", "a"])
