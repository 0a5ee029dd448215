r"""Masked-language-model pretraining on the task's own text (DESIGN §11).

The training split's sentences, without their labels, teach the encoder to
guess hidden words from their context before it learns the task:

* ``mask_tokens`` picks the positions to predict and corrupts them (BERT's
  rule, with [UNK] as the mask token: DESIGN §11.1);
* ``MLMHead`` maps the hidden state at each chosen position to vocabulary
  logits, z = Y[b, t] W + c;
* ``MaskedLM`` runs the BEExformer's embeddings and blocks (not its exit heads)
  on the corrupted ids and averages the softmax cross-entropy of the head over
  the chosen positions, at the last block or at every block (DESIGN §11.2).

Everything here is plain NumPy with a written-out backward, gradient-checked
in ``beexnp.layer_checks``; ``beexnp.pretrain`` trains it.
"""
import numpy as np

from beexnp.glue.tokenizer import SPECIALS, UNK_ID
from beexnp.linear import Linear
from beexnp.losses import SoftmaxCrossEntropy
from beexnp.module import Module
from beexnp.pairs import split_pair

FIRST_WORD = len(SPECIALS)          # ids below this are [PAD], [UNK], [CLS], [SEP]: never chosen, never drawn
MASK_ID = UNK_ID                    # the token a chosen position reads in place of its word (DESIGN §11.1)
MASK_RATE = 0.15
SPLIT = (0.8, 0.1, 0.1)             # of the chosen positions: -> [UNK], -> a random word, kept
LEVELS = ("last", "all")            # which blocks' hidden states the head reads
HEAD = "mlm"                        # pretrain's head: "mlm.<name>" among the optimized parameters, "mlm/<name>" saved
EXITS = "exits."                    # the exit heads' parameters: not pretrained, not carried by train --init


def masking_problem(levels, rate):
    """What is wrong with the masking settings (``levels`` read, ``rate`` masked), in words; None if nothing."""
    if levels not in LEVELS:
        return f"levels must be one of {', '.join(LEVELS)}, got {levels!r}"
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < 1:
        return f"rate must be a number in (0, 1), got {rate!r}"
    return None


def pretrain_layout(config, shapes):
    """({name: shape} the optimizer updates, {name: shape} trainer.npz holds besides) of a pretrain run whose
    model has the parameters ``shapes``: the encoder (every parameter but the exit heads') and the MLM head."""
    head = {name: p.shape for name, p in MLMHead(config.dim, config.vocab_size, np.random.default_rng(0)).parameters()}
    encoder = {name: shape for name, shape in shapes.items() if not name.startswith(EXITS)}
    return (dict(encoder, **{f"{HEAD}.{name}": shape for name, shape in head.items()}),
            {f"{HEAD}/{name}": shape for name, shape in head.items()})


def masked_counts(n, rate=MASK_RATE):
    r"""k_b = max(1, rint(rate * n_b)) if n_b > 0 else 0: how many of a row's n_b eligible tokens are chosen."""
    n = np.asarray(n)
    return np.where(n > 0, np.maximum(1, np.rint(rate * n)), 0).astype(np.int64)


def mask_tokens(ids, mask, vocab_size, rng, rate=MASK_RATE):
    r"""(inputs, chosen): the ids with the chosen positions corrupted, and chosen (B, T) bool.

    ids (B, T) int, mask (B, T) (1 on real tokens), ``rng`` a np.random.Generator.  In each row b,
    of its n_b eligible positions (real tokens that are words: id >= FIRST_WORD) exactly
    k_b = ``masked_counts(n_b, rate)`` are chosen, uniformly without replacement; each chosen
    position independently reads [UNK] (80 %), a word drawn uniformly from the vocabulary's
    words (10 %), or its own word (10 %).  The draws have fixed shapes, (B, T) each, so one
    Generator state gives one result."""
    if vocab_size <= FIRST_WORD:
        raise ValueError(f"masking needs a vocabulary with words beyond the {FIRST_WORD} specials, got {vocab_size}")
    ids = np.asarray(ids)
    eligible = (np.asarray(mask) > 0) & (ids >= FIRST_WORD)                   # (B, T)
    k = masked_counts(eligible.sum(axis=1), rate)                             # (B,)
    keys = np.where(eligible, rng.random(ids.shape), np.inf)                  # ineligible positions sort last
    rank = np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable")   # (B, T) 0 = smallest key
    chosen = rank < k[:, None]
    u = rng.random(ids.shape)                                                 # (B, T) which corruption
    words = rng.integers(FIRST_WORD, vocab_size, size=ids.shape)              # (B, T) random replacements
    to_mask, to_word = chosen & (u < SPLIT[0]), chosen & (u >= SPLIT[0]) & (u < SPLIT[0] + SPLIT[1])
    inputs = np.where(to_mask, MASK_ID, np.where(to_word, words, ids)).astype(ids.dtype)
    return inputs, chosen


class MLMHead(Module):
    r"""z_m = Y[b_m, t_m] W + c     Y (B, T, d), chosen (B, T) bool -> z (M, V), M = sum chosen

    Only the chosen positions are projected (in row-major order), so the cost is M d V,
    not B T d V.  The backward scatters dY back to them; every other position gets 0."""

    def __init__(self, dim, vocab_size, rng, dtype=np.float32):
        self.linear = Linear(dim, vocab_size, rng, dtype=dtype)

    def forward(self, Y, chosen):
        self.shape, self.chosen = Y.shape, chosen
        return self.linear.forward(Y[chosen])                                 # (M, d) -> (M, V)

    def backward(self, dz):
        dY = np.zeros(self.shape, dz.dtype)
        dY[self.chosen] = self.linear.backward(dz)                            # (M, d) into their positions
        return dY


class MaskedLM(Module):
    r"""L = (1/|S|) sum_{i in S} (1/M) sum_m -log softmax(z_{i,m})[y_m],   z_i = MLMHead(X_i, chosen)

    X_i the output of block i of ``model`` on the corrupted ids, y the original ids at the
    chosen positions, S = {N} (``levels="last"``) or {1..N} (``"all"``); one head for every
    block.  ``forward(ids, mask)`` draws the masking from ``self.rng`` (a Generator the trainer
    sets before each step); ``masked_loss`` takes a masking already drawn (gradient checks)."""

    def __init__(self, model, head, levels="last", rate=MASK_RATE):
        if levels not in LEVELS:
            raise ValueError(f"levels must be one of {LEVELS}, got {levels!r}")
        self.model, self.head = model, head
        self.levels, self.rate = levels, rate
        N = len(model.blocks)
        self.read = list(range(N)) if levels == "all" else [N - 1]            # block indices the head reads
        self.losses = [SoftmaxCrossEntropy() for _ in self.read]
        self.rng = None

    def forward(self, ids, mask, labels=None):
        """The loss on ``ids`` masked with ``self.rng``; the task's ``labels`` are not used."""
        inputs, chosen = mask_tokens(ids, mask, self.head.linear.weight.shape[1], self.rng, self.rate)
        return self.masked_loss(inputs, mask, chosen, ids)

    def masked_loss(self, inputs, mask, chosen, originals):
        """The loss of the corrupted ``inputs`` (B, T); ``chosen`` (B, T) bool, ``originals`` (B, T) the ids before."""
        model = self.model
        if model.siamese:                                                     # the rows become the 2B sentences
            _, _, chosen, originals = split_pair(inputs, mask, chosen, originals)
            chosen = chosen.astype(bool)
        self.targets = originals[chosen]                                      # (M,) row-major, as the head reads
        self.logits, self.head_inputs, total = [], {}, 0.0
        self.chosen = chosen
        if not self.targets.size:                                             # no word in the batch: nothing to
            self.logits = [np.zeros((0, self.head.linear.weight.shape[1]))]   # predict, L = 0, no gradient
            return 0.0
        X, m = model.start(inputs, mask)
        for i in range(len(model.blocks)):
            X = model.blocks[i].forward(X, m)
            if i in self.read:
                z = self.head.forward(X, chosen)
                self.logits.append(z)
                total += self.losses[len(self.logits) - 1].forward(z, self.targets)
                self.head_inputs[i] = self.head.linear.x                      # (M, d) the head's input at block i
        return total / len(self.read)

    def backward(self, dloss=1.0):
        """Every parameter's grad (the model's and the head's); the ids have none."""
        if not self.targets.size:
            return None
        dhidden = [0] * len(self.model.blocks)
        for i, loss in zip(self.read, self.losses):
            self.head.linear.x = self.head_inputs[i]                          # the head ran once per block read
            dhidden[i] = self.head.backward(loss.backward(dloss / len(self.read)))
        self.model.backward_hidden(dhidden)
        return None

    def predictions(self):
        """The head's argmax at the chosen positions, per block read: a list of (M,) arrays."""
        return [z.argmax(axis=-1) for z in self.logits]
