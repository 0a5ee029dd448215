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

``BPETokenizer`` (DESIGN §2.6) splits each word further into subword pieces
learned from the training split by byte-pair encoding; ``fit_tokenizer`` builds
either kind, by name, and ``Tokenizer.from_state_dict`` restores either.
"""
import heapq
import re
from collections import Counter, defaultdict

PAD, UNK, CLS, SEP = "[PAD]", "[UNK]", "[CLS]", "[SEP]"
SPECIALS = (PAD, UNK, CLS, SEP)
PAD_ID, UNK_ID, CLS_ID, SEP_ID = range(4)

TOKEN_PATTERN = re.compile(r"\w+|[^\w\s]")
STATE_FORMAT = "beexnp.glue.Tokenizer/1"
BPE_FORMAT = "beexnp.glue.BPETokenizer/1"
END = "</w>"                           # the last piece of a word ends with it: "lower" -> "low", "er</w>"
KINDS = ("word", "bpe")                # what fit_tokenizer builds


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
        """The tokenizer saved by ``state_dict`` (a ``BPETokenizer`` if it saved one)."""
        if state.get("format") == BPE_FORMAT:
            return BPETokenizer.from_state_dict(state)
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"not a saved beexnp tokenizer (format {state.get('format')!r}, "
                             f"expected {STATE_FORMAT!r})")
        if state.get("pattern") != TOKEN_PATTERN.pattern:
            raise ValueError(f"the saved tokenizer split text with {state.get('pattern')!r}, "
                             f"this version uses {TOKEN_PATTERN.pattern!r}")
        return cls(state["vocab"])


def word_symbols(word):
    """The characters of ``word``, the last one with the end-of-word mark: "low" -> ("l", "o", "w</w>")."""
    return tuple(word[:-1]) + (word[-1] + END,)


def apply_merges(symbols, ranks):
    """``symbols`` with the learned merges applied: again and again, every occurrence of the adjacent pair of
    lowest rank (the earliest learned) is joined, until no adjacent pair has a rank."""
    symbols = list(symbols)
    while len(symbols) > 1:
        pairs = {(a, b) for a, b in zip(symbols, symbols[1:]) if (a, b) in ranks}
        if not pairs:
            break
        first = min(pairs, key=ranks.__getitem__)
        merged, i = [], 0
        while i < len(symbols):
            if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == first:
                merged.append(symbols[i] + symbols[i + 1])
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    return symbols


def learn_bpe(word_counts, max_size, min_freq=2):
    """(symbols, merges) of byte-pair encoding fitted on ``word_counts`` ({word: count}).

    symbols: every character seen at least ``min_freq`` times, both as it stands inside a word and at its end
    ("e", "e</w>"), most frequent first, ties alphabetical.  Then, until ``len(SPECIALS) + len(symbols)``
    reaches ``max_size``: the adjacent pair of symbols that occurs most often (over the words, weighted by
    their counts; ties: the smallest pair) is merged into a new symbol, appended; it stops early when no pair
    occurs ``min_freq`` times."""
    words = [[list(word_symbols(w)), c] for w, c in sorted(word_counts.items())]
    chars = Counter()
    for w, c in word_counts.items():
        for x in w:
            chars[x] += c
    symbols = [s for x in sorted((x for x, c in chars.items() if c >= min_freq), key=lambda x: (-chars[x], x))
               for s in (x, x + END)]
    known = set(symbols)
    pair_count, where = Counter(), defaultdict(set)          # pair -> weighted count; pair -> words holding it
    for i, (syms, c) in enumerate(words):
        for pair in zip(syms, syms[1:]):
            pair_count[pair] += c
            where[pair].add(i)
    heap = [(-c, pair) for pair, c in pair_count.items()]     # (-count, pair); stale entries are skipped
    heapq.heapify(heap)
    merges = []
    while len(SPECIALS) + len(symbols) < max_size and heap:
        count, best = heapq.heappop(heap)
        if pair_count.get(best) != -count:                    # stale: the pair's count changed since
            continue
        if -count < min_freq:
            break
        new = best[0] + best[1]
        merges.append(best)
        if new not in known:
            symbols.append(new)
            known.add(new)
        changed = set()
        for i in sorted(where.pop(best)):
            syms, c = words[i]
            for pair in zip(syms, syms[1:]):                   # this word's pairs leave the counts ...
                pair_count[pair] -= c
                changed.add(pair)
            words[i][0] = syms = apply_merges(syms, {best: 0})
            for pair in zip(syms, syms[1:]):                   # ... and its merged pairs come back
                pair_count[pair] += c
                where[pair].add(i)
                changed.add(pair)
        for pair in changed:
            if pair_count[pair] > 0:
                heapq.heappush(heap, (-pair_count[pair], pair))
            else:
                del pair_count[pair]
    return symbols, merges


class BPETokenizer(Tokenizer):
    """Subword pieces learned by byte-pair encoding from the training split (DESIGN §2.6).

    A text is split by ``tokenize`` into words and punctuation marks as the word tokenizer does; each word is
    its characters (the last marked ``</w>``) merged by the learned merges, in the order they were learned.
    A character not in the vocabulary (never seen in training, or, with a vocabulary cut below the alphabet,
    its form "x" or "x</w>" left out) is ``[UNK]``, one per character.  ``decode`` joins the pieces and puts a
    space after each word's last piece.  The vocabulary is the specials, the characters, then one piece per
    merge; ``max_size`` bounds it."""

    def __init__(self, vocab, merges):
        super().__init__(vocab)
        self.merges = [tuple(m) for m in merges]
        self.ranks = {m: r for r, m in enumerate(self.merges)}
        unknown = sorted({a + b for a, b in self.merges} - set(self.ids))
        if unknown:
            raise ValueError(f"merges make pieces not in the vocabulary: {unknown[:5]}")
        self.cache = {}

    @classmethod
    def fit(cls, texts_a, texts_b=None, min_freq=2, max_size=8000):
        """A BPE tokenizer fitted on the words of ``texts_a`` (and ``texts_b``): see ``learn_bpe``."""
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        if max_size is None or max_size <= len(SPECIALS):
            raise ValueError(f"max_size must be > {len(SPECIALS)} (the special tokens), got {max_size}")
        counts = Counter(w for texts in (texts_a, texts_b or ()) for text in texts for w in tokenize(text))
        symbols, merges = learn_bpe(counts, max_size, min_freq)
        return cls(list(SPECIALS) + symbols[:max_size - len(SPECIALS)], merges)

    def __repr__(self):
        return f"BPETokenizer({len(self)} tokens, {len(self.merges)} merges)"

    def pieces(self, word):
        """The pieces of one word (unknown characters kept as they are; ``token_ids`` makes them [UNK])."""
        if word not in self.cache:
            self.cache[word] = apply_merges(word_symbols(word), self.ranks)
        return self.cache[word]

    def token_ids(self, text):
        """Ids of the pieces of ``text`` (no specials added, no truncation)."""
        get = self.ids.get
        return [get(piece, UNK_ID) for word in tokenize(text) for piece in self.pieces(word)]

    def decode(self, ids):
        """The words of ``ids``: pieces joined, a space after each word's last piece; padding left out, and
        each special token (an unknown character too) a word of its own."""
        text = "".join(self.vocab[i] if self.vocab[i] not in SPECIALS else self.vocab[i] + END
                       for i in ids if i != PAD_ID)
        return " ".join(text.split(END)).strip()

    def state_dict(self):
        return {"format": BPE_FORMAT, "pattern": TOKEN_PATTERN.pattern, "vocab": list(self.vocab),
                "merges": [list(m) for m in self.merges]}

    @classmethod
    def from_state_dict(cls, state):
        if state.get("format") != BPE_FORMAT:
            raise ValueError(f"not a saved BPE tokenizer (format {state.get('format')!r}, expected {BPE_FORMAT!r})")
        if state.get("pattern") != TOKEN_PATTERN.pattern:
            raise ValueError(f"the saved tokenizer split text with {state.get('pattern')!r}, "
                             f"this version uses {TOKEN_PATTERN.pattern!r}")
        return cls(state["vocab"], state["merges"])


def fit_tokenizer(kind, texts_a, texts_b=None, min_freq=2, max_size=20000):
    """A ``Tokenizer`` (kind "word") or a ``BPETokenizer`` (kind "bpe") fitted on the training texts."""
    if kind not in KINDS:
        raise ValueError(f"the tokenizer must be one of {', '.join(KINDS)}, got {kind!r}")
    return (BPETokenizer if kind == "bpe" else Tokenizer).fit(texts_a, texts_b, min_freq=min_freq, max_size=max_size)
