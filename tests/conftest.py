"""Shared fixtures.  One rule: every test draws its randomness from one seeded
``np.random.Generator`` (never the global ``np.random`` state)."""
import zlib

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def no_downloads_from_the_internet(monkeypatch):
    """A missing GLUE task is an error in every test, never fetched from the official address
    (``BEEXNP_NO_DOWNLOAD``); the tests of data on first use turn it back on against a local server."""
    monkeypatch.setenv("BEEXNP_NO_DOWNLOAD", "1")


@pytest.fixture
def rng(request):
    """A Generator seeded from the test's id: reproducible run to run, different per test."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


# ---- a tiny synthetic SST-2 (the label is the sentiment word in the sentence) -----------
POSITIVE = ["good", "great", "fine", "lovely", "superb", "warm"]
NEGATIVE = ["bad", "awful", "dull", "boring", "poor", "cold"]
NEUTRAL = ["the", "film", "a", "story", "is", "plot", "and", "actors"]
TINY_MODEL = dict(token_dim=12, position_dim=4, heads=2, blocks=3, dropout=0.1)


def write_sentiment(folder, n, rng):
    """SST-2 layout: 'sentence<TAB>label' rows; the label is which sentiment word appears."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["sentence\tlabel"]
    for _ in range(n):
        label = int(rng.integers(2))
        words = list(rng.choice(NEUTRAL, size=rng.integers(2, 7)))
        words.insert(int(rng.integers(len(words) + 1)), rng.choice(POSITIVE if label else NEGATIVE))
        lines.append(" ".join(words) + f"\t{label}")
    return "\n".join(lines) + "\n"


def sentiment_glue(root, train=256, dev=64, seed=0):
    """``root/glue``, a GLUE folder holding a tiny, learnable SST-2 of ``train`` and ``dev`` rows."""
    rng = np.random.default_rng(seed)
    sst = root / "glue" / "SST-2"
    for split, n in (("train", train), ("dev", dev)):
        text = write_sentiment(sst, n, rng)
        (sst / f"{split}.tsv").write_text(text)
    return root / "glue"


@pytest.fixture
def glue_dir(tmp_path):
    """A GLUE folder holding a tiny, learnable SST-2 (256 train, 64 dev rows)."""
    return sentiment_glue(tmp_path)


@pytest.fixture
def two_gradchecks(monkeypatch):
    """``gradcheck`` (``layer_checks.check_all``) down to its first two layer cases at tiny shapes, for the tests
    of the command itself (its bar, its stderr); returns those cases."""
    from beexnp import layer_checks
    cases = layer_checks.layer_cases(np.random.default_rng(0), batch=2, tokens=3, dim=4, heads=2)[:2]
    monkeypatch.setattr(layer_checks, "layer_cases", lambda rng, **shape: cases)
    monkeypatch.setattr(layer_checks, "model_cases", lambda rng: [])
    monkeypatch.setattr(layer_checks, "mlm_cases", lambda rng: [])
    return cases




def rewrite_card(folder, change):
    """Edit a checkpoint's card by hand, as an older beexnp or a test of one would have written it: ``change(card)``
    edits the dict in place; the card's own checksum is renewed, so only what ``change`` did differs."""
    import json

    from beexnp.card import with_self_sum
    path = folder / "checkpoint.json"
    card = json.loads(path.read_text())
    change(card)
    path.write_text(json.dumps(with_self_sum(card) if "card_sha256" in card else card))
    return card
