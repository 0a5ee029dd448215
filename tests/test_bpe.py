"""Subword tokens (DESIGN §2.6): byte-pair encoding learned from the training split, its round trips, unknown
characters, saving, and a run trained and evaluated with it."""
import json
import os
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beexnp.config import TrainConfig
from beexnp.evaluate import evaluate_checkpoint, load_for_inference
from beexnp.glue.tokenizer import (END, SPECIALS, UNK_ID, BPETokenizer, Tokenizer, apply_merges, fit_tokenizer,
                                   learn_bpe, tokenize, word_symbols)
from beexnp.train import Trainer
from conftest import TINY_MODEL

ROOT = Path(__file__).resolve().parent.parent

SENNRICH = {"low": 5, "lower": 2, "newest": 6, "widest": 3}          # the example of the BPE paper


def test_the_first_merges_are_the_most_frequent_pairs():
    symbols, merges = learn_bpe(SENNRICH, max_size=100, min_freq=1)
    # e s: 9 (newest 6 + widest 3), tied with s t</w> and won by the smaller pair; then es t</w>: 9; l o: 7
    assert merges[:3] == [("e", "s"), ("es", "t" + END), ("l", "o")]
    assert symbols[:2] == ["e", "e" + END]                                # e is the most frequent character
    assert set(symbols) >= {"est" + END, "lo"} and len(set(symbols)) == len(symbols)
    assert apply_merges(word_symbols("lowest"), {m: r for r, m in enumerate(merges)})[-1] == "est" + END


def test_the_vocabulary_stops_at_max_size_and_at_min_freq():
    few = BPETokenizer.fit([" ".join(w for w, c in SENNRICH.items() for _ in range(c))], min_freq=1, max_size=30)
    assert len(few) == 30 and few.vocab[:4] == list(SPECIALS)
    rare = BPETokenizer.fit(["low lower newest widest"], min_freq=2, max_size=1000)
    assert rare.merges == [("e", "s"), ("es", "t" + END), ("l", "o")]          # then no pair is seen twice
    assert "n" not in rare.ids and "w" in rare.ids                              # n once, w four times
    with pytest.raises(ValueError, match="max_size"):
        BPETokenizer.fit(["a"], max_size=4)
    with pytest.raises(ValueError, match="tokenizer must be one of"):
        fit_tokenizer("chars", ["a"])


WORDS = st.text(alphabet="abcdeéxy", min_size=1, max_size=7)
TEXTS = st.lists(st.lists(WORDS, min_size=1, max_size=6).map(" ".join), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(train=TEXTS, text=st.lists(st.text(alphabet="abcdeéxyzö!,", min_size=1, max_size=8), max_size=6).map(" ".join),
       size=st.integers(5, 80), min_freq=st.integers(1, 3))
def test_round_trips_and_one_unk_per_unseen_character(train, text, size, min_freq):
    tok = BPETokenizer.fit(train, min_freq=min_freq, max_size=size)
    assert len(tok) <= size and tok.vocab[:4] == list(SPECIALS)
    ids = tok.token_ids(text)
    unseen = sum(1 for word in tokenize(text) for x in word_symbols(word) if x not in tok.ids)   # "x" or "x</w>"
    assert ids.count(UNK_ID) == unseen                                        # one [UNK] per unknown character
    if not unseen:                                                            # only known characters: a round trip
        assert tok.decode(ids) == " ".join(tokenize(text))
        assert UNK_ID not in ids
    again = BPETokenizer.fit(list(reversed(train)), min_freq=min_freq, max_size=size)   # order does not matter
    assert again.vocab == tok.vocab and again.merges == tok.merges
    restored = Tokenizer.from_state_dict(json.loads(json.dumps(tok.state_dict())))
    assert isinstance(restored, BPETokenizer) and restored.token_ids(text) == ids


def test_an_unknown_character_is_one_unk_and_the_rest_of_the_word_stays():
    tok = BPETokenizer.fit(["zaz zaz zz"], min_freq=1, max_size=50)
    ids = tok.token_ids("zöz")
    assert tok.tokens(ids) == ["z", "[UNK]", "z" + END]
    assert tok.decode(tok.encode("zaz", "zaz")) == "[CLS] zaz [SEP] zaz"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        BPETokenizer(list(SPECIALS) + ["a", "b"], [("a", "b")])


def test_a_bpe_run_saves_its_tokenizer_and_evaluate_rebuilds_it(glue_dir, tmp_path):
    cfg = TrainConfig(task="sst2", epochs=1, batch_size=32, max_len=24, tokenizer="bpe", max_vocab=60, min_freq=1)
    trainer = Trainer(cfg, TINY_MODEL, tmp_path / "run", glue_dir=glue_dir, progress=False)
    assert isinstance(trainer.tokenizer, BPETokenizer) and len(trainer.tokenizer) == 60
    trainer.fit()
    _, tokenizer, _, card = load_for_inference(tmp_path / "run" / "best")
    assert card["train_config"]["tokenizer"] == "bpe" and tokenizer.merges == trainer.tokenizer.merges
    report = evaluate_checkpoint(tmp_path / "run" / "best", glue_dir=glue_dir, timing=False)
    assert 0 <= report["per_exit"][-1]["accuracy"] <= 1
    resumed = Trainer.resume(tmp_path / "run" / "last", glue_dir=glue_dir, progress=False)
    assert resumed.tokenizer.vocab == trainer.tokenizer.vocab


@pytest.mark.glue
@pytest.mark.skipif(not (Path(os.environ.get("GLUE_DIR", "-")) / "CoLA").is_dir(), reason="needs GLUE_DIR with CoLA")
def test_design_quotes_the_measured_tokens_on_cola():
    """DESIGN §2.6's CoLA rows are what experiments/tokenizer_stats.py measures."""
    sys.path.insert(0, str(ROOT / "experiments"))
    import tokenizer_stats
    design = " ".join((ROOT / "docs" / "DESIGN.md").read_text().split())     # the table's spacing aside
    result = tokenizer_stats.measure("cola", os.environ["GLUE_DIR"], sizes=(None,))
    for label, key in (("word (§2.1)", "word"), ("bpe, same size", f"bpe{result['word']['vocab']}")):
        r = result[key]
        row = (f"CoLA {label} {r['vocab']:,} {100 * r['unk_tokens']:.2f} % {100 * r['texts_with_unk']:.1f} % "
               f"{r['tokens_per_text']:.1f}")
        assert row in design, row
