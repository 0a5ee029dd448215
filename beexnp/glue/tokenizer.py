r"""A small word-level tokenizer: lowercased words and punctuation marks.

``tokenize("Don't stop!")`` -> ``["don", "'", "t", "stop", "!"]``: the text is
lowercased and split by the regular expression ``\w+|[^\w\s]`` (runs of
letters/digits/underscores, or any single other non-space character).

The vocabulary is built from training texts by ``Tokenizer.fit``: the four
special tokens first, with fixed ids

    [PAD] = 0   padding (batches are padded with 0)
    [UNK] = 1   any token not in the vocabulary
    [CLS] = 2   first token of every sequence (the exit heads average over all real tokens)
    [SEP] = 3   separates the two sentences of a pair

then every token seen at least ``min_freq`` times, most frequent first, ties
broken alphabetically, cut to ``max_size`` entries in all (specials included).
The result depends on the texts only, never on their order or on a seed.

``encode(a)`` is ``[CLS] a`` and ``encode(a, b)`` is ``[CLS] a [SEP] b``,
truncated to ``max_len`` ids: for a pair the longer side loses its last tokens
first, so both sentences keep a share (as BERT's ``_truncate_seq_pair``).

``state_dict()`` is a plain JSON-serializable dict, saved with a model and
restored by ``Tokenizer.from_state_dict``.
"""
import re
from collections import Counter

PAD, UNK, CLS, SEP = "[PAD]", "[UNK]", "[CLS]", "[SEP]"
SPECIALS = (PAD, UNK, CLS, SEP)
PAD_ID, UNK_ID, CLS_ID, SEP_ID = range(4)

TOKEN_PATTERN = re.compile(r"\w+|[^\w\s]")
STATE_FORMAT = "beexnp.glue.Tokenizer/1"


def tokenize(text):
    """Lowercased words and punctuation marks of ``text``."""
    return TOKEN_PATTERN.findall(text.lower())


def pair_lengths(len_a, len_b, budget):
    """How many tokens of a and b to keep so that len_a + len_b <= budget.

    Equivalent to removing one token at a time from the longer side (from b
    when they are equal) until the pair fits: the shorter side is kept whole
    when it fits in half the budget, otherwise a keeps ceil(budget/2) and b
    keeps floor(budget/2)."""
    if len_a + len_b <= budget:
        return len_a, len_b
    if min(len_a, len_b) * 2 <= budget:
        return (len_a, budget - len_a) if len_a < len_b else (budget - len_b, len_b)
    return budget - budget // 2, budget // 2


class Tokenizer:
    """Words and punctuation -> ids, with a vocabulary fitted on training text.

    Build one with ``Tokenizer.fit(texts_a, texts_b)`` (a classmethod) or
    restore one with ``Tokenizer.from_state_dict(d)``; ``Tokenizer(vocab)``
    takes the token list directly (``vocab[:4]`` must be the specials).
    ``len(tokenizer)`` is the vocabulary size (the embedding table's rows).
    """

    def __init__(self, vocab):
        vocab = list(vocab)
        if tuple(vocab[:4]) != SPECIALS:
            raise ValueError(f"the vocabulary must start with {list(SPECIALS)}, got {vocab[:4]}")
        if len(set(vocab)) != len(vocab):
            raise ValueError("the vocabulary holds a token twice")
        self.vocab = vocab
        self.ids = {token: i for i, token in enumerate(vocab)}

    @classmethod
    def fit(cls, texts_a, texts_b=None, min_freq=1, max_size=None):
        """A tokenizer whose vocabulary is the specials plus the tokens of
        ``texts_a`` (and ``texts_b``) seen at least ``min_freq`` times, most
        frequent first, ties alphabetical, at most ``max_size`` in all."""
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        if max_size is not None and max_size < len(SPECIALS):
            raise ValueError(f"max_size must be >= {len(SPECIALS)} (the special tokens), got {max_size}")
        counts = Counter()
        for texts in (texts_a, texts_b or ()):
            for text in texts:
                counts.update(tokenize(text))
        for special in SPECIALS:   # "[", "pad", "]" can never form "[PAD]", but be explicit
            counts.pop(special, None)
        ranked = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        vocab = list(SPECIALS) + ranked
        return cls(vocab if max_size is None else vocab[:max_size])

    def __len__(self):
        return len(self.vocab)

    def __repr__(self):
        return f"Tokenizer({len(self)} tokens)"

    def token_ids(self, text):
        """Ids of the tokens of ``text`` (no specials added, no truncation)."""
        get = self.ids.get
        return [get(token, UNK_ID) for token in tokenize(text)]

    def encode(self, text_a, text_b=None, max_len=64):
        """``[CLS] a`` or ``[CLS] a [SEP] b`` as a list of ids, at most
        ``max_len`` long (``max_len=None``: no truncation)."""
        a = self.token_ids(text_a)
        b = None if text_b is None else self.token_ids(text_b)
        if max_len is not None:
            if max_len < 3:
                raise ValueError(f"max_len must be >= 3 ([CLS], [SEP] and a token), got {max_len}")
            if b is None:
                a = a[:max_len - 1]
            else:
                keep_a, keep_b = pair_lengths(len(a), len(b), max_len - 2)
                a, b = a[:keep_a], b[:keep_b]
        return [CLS_ID] + a if b is None else [CLS_ID] + a + [SEP_ID] + b

    def tokens(self, ids):
        """The token strings of ``ids`` (specials included)."""
        return [self.vocab[i] for i in ids]

    def decode(self, ids):
        """The tokens of ``ids`` joined by spaces, padding left out."""
        return " ".join(self.vocab[i] for i in ids if i != PAD_ID)

    def state_dict(self):
        """A JSON-serializable dict from which ``from_state_dict`` rebuilds this tokenizer."""
        return {"format": STATE_FORMAT, "pattern": TOKEN_PATTERN.pattern, "vocab": list(self.vocab)}

    @classmethod
    def from_state_dict(cls, state):
        """The tokenizer saved by ``state_dict``."""
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"not a saved beexnp tokenizer (format {state.get('format')!r}, "
                             f"expected {STATE_FORMAT!r})")
        if state.get("pattern") != TOKEN_PATTERN.pattern:
            raise ValueError(f"the saved tokenizer split text with {state.get('pattern')!r}, "
                             f"this version uses {TOKEN_PATTERN.pattern!r}")
        return cls(state["vocab"])
