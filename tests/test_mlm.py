r"""The masked-LM pieces (DESIGN §11): the masking rule, the head, the objective.

* ``mask_tokens``: properties over generated batches (hypothesis): only words are chosen (never
  [PAD], [UNK], [CLS], [SEP] or padding), exactly k_b = max(1, rint(0.15 n_b)) per row, the rate
  near 15 % on long rows, the 80/10/10 corruption, one result per Generator state.
* The objective's forward against DESIGN §11.2 written out with loops and ``math.fsum``; its
  backward against central differences (float64, ``layer_checks.mlm_cases``), and proof that the
  check catches a wrong backward.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beexnp.config import ModelConfig
from beexnp.glue.tokenizer import SPECIALS, UNK_ID
from beexnp.gradcheck import numerical_gradient, randomize_parameters, rel_error
from beexnp.layer_checks import mlm_cases
from beexnp.mlm import MaskedLM, MLMHead, mask_tokens, masked_counts
from beexnp.model import BEExformer
from beexnp.module import evaluating

TOL = 1e-6


@st.composite
def batches(draw, max_rows=6, max_len=12):
    """(ids, mask, vocab_size): right-padded rows holding specials, [UNK] and words; some rows may hold no word."""
    rows = draw(st.integers(1, max_rows))
    T = draw(st.integers(1, max_len))
    vocab = draw(st.integers(len(SPECIALS) + 1, 40))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, T + 1, size=rows)
    mask = (np.arange(T) < lengths[:, None]).astype(np.float32)
    ids = rng.integers(0, vocab, size=(rows, T))
    ids = np.where(rng.random((rows, T)) < 0.3, rng.integers(1, len(SPECIALS), size=(rows, T)), ids)
    return np.where(mask > 0, ids, 0), mask, vocab


@settings(max_examples=200, deadline=None)
@given(batches(), st.integers(0, 2 ** 32 - 1))
def test_masking_chooses_only_words_and_exactly_k_per_row(batch, seed):
    ids, mask, vocab = batch
    inputs, chosen = mask_tokens(ids, mask, vocab, np.random.default_rng(seed))
    eligible = (mask > 0) & (ids >= len(SPECIALS))
    assert not np.any(chosen & ~eligible), "a special token or padding was chosen"
    n = eligible.sum(axis=1)
    expected = np.array([max(1, round(0.15 * k)) if k else 0 for k in n])    # Python's round: half to even too
    assert np.array_equal(chosen.sum(axis=1), expected)
    assert np.array_equal(inputs[~chosen], ids[~chosen]), "a position that was not chosen changed"
    changed = inputs[chosen]
    assert np.all((changed == UNK_ID) | (changed >= len(SPECIALS))), "a chosen word became a special other than [UNK]"
    assert np.all(changed < vocab)


@settings(max_examples=50, deadline=None)
@given(batches(), st.integers(0, 2 ** 32 - 1))
def test_masking_is_one_result_per_generator_state(batch, seed):
    ids, mask, vocab = batch
    a = mask_tokens(ids, mask, vocab, np.random.default_rng(seed))
    b = mask_tokens(ids, mask, vocab, np.random.default_rng(seed))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_masking_differs_between_seeds():
    rng = np.random.default_rng(0)
    ids, mask = rng.integers(4, 50, size=(8, 40)), np.ones((8, 40))
    a = mask_tokens(ids, mask, 50, np.random.default_rng(1))[1]
    b = mask_tokens(ids, mask, 50, np.random.default_rng(2))[1]
    assert not np.array_equal(a, b)


def test_rate_and_corruption_shares_on_long_rows():
    """Rows of 200 words: 30 chosen each (15 %); of the chosen, ~80 % read [UNK], ~10 % another word, ~10 % kept."""
    rng = np.random.default_rng(0)
    ids, mask = rng.integers(4, 1000, size=(200, 200)), np.ones((200, 200))
    inputs, chosen = mask_tokens(ids, mask, 1000, rng)
    assert np.all(chosen.sum(axis=1) == 30)
    M = chosen.sum()
    unk = np.mean(inputs[chosen] == UNK_ID)
    kept = np.mean(inputs[chosen] == ids[chosen])              # a random word equal to its own: 1 in 996
    assert abs(unk - 0.8) < 4 * math.sqrt(0.16 / M)
    assert abs(kept - 0.1) < 4 * math.sqrt(0.09 / M) + 0.001
    assert abs(1 - unk - kept - 0.1) < 4 * math.sqrt(0.09 / M) + 0.001


@pytest.mark.parametrize("n, k", [(0, 0), (1, 1), (3, 1), (9, 1), (10, 2), (30, 4), (100, 15), (200, 30)])
def test_counts(n, k):
    assert masked_counts(n) == k


def test_a_vocabulary_of_specials_only_is_refused():
    with pytest.raises(ValueError, match="words beyond"):
        mask_tokens(np.zeros((1, 3), int), np.ones((1, 3)), len(SPECIALS), np.random.default_rng(0))


# ---- the objective against its equation (DESIGN §11.2) --------------------------------------

def reference_loss(hidden, chosen, originals, W, c, read):
    r"""(1/|S|) sum_{i in S} (1/M) sum_m -log softmax(X_i[b_m, t_m] W + c)[y_m], loops and fsum only."""
    B, T, _ = hidden[0].shape
    V = W.shape[1]
    per_block = []
    for i in read:
        terms = []
        for b in range(B):
            for t in range(T):
                if not chosen[b, t]:
                    continue
                z = [math.fsum([hidden[i][b, t, k] * W[k, v] for k in range(W.shape[0])] + [c[v]]) for v in range(V)]
                top = max(z)
                log_norm = top + math.log(math.fsum(math.exp(zv - top) for zv in z))
                terms.append(log_norm - z[originals[b, t]])
        per_block.append(math.fsum(terms) / len(terms))
    return math.fsum(per_block) / len(per_block)


@pytest.mark.parametrize("levels", ["last", "all"])
@pytest.mark.parametrize("seed", [0, 1])
def test_forward_is_the_equation(levels, seed):
    rng = np.random.default_rng(seed)
    V = 11
    config = ModelConfig(num_classes=2, token_dim=6, position_dim=2, heads=2, blocks=3, vocab_size=V)
    model = randomize_parameters(BEExformer(config, rng, dtype=np.float64), rng)
    head = randomize_parameters(MLMHead(config.dim, V, rng, dtype=np.float64), rng)
    head.linear.bias.data[...] = rng.standard_normal(V)
    objective = MaskedLM(model, head, levels=levels, rate=0.3)
    mask = (np.arange(7) < np.array([[7], [4], [2]])).astype(np.float64)
    ids = rng.integers(4, V, size=(3, 7)) * mask.astype(np.int64)
    inputs, chosen = mask_tokens(ids, mask, V, rng, rate=0.3)
    with evaluating(model):
        loss = objective.masked_loss(inputs, mask, chosen, ids)
        X, m = model.start(inputs, mask)                 # the blocks' outputs: checked in test_equations.py
        hidden = []
        for block in model.blocks:
            X = block.forward(X, m)
            hidden.append(X)
    read = [2] if levels == "last" else [0, 1, 2]
    expected = reference_loss(hidden, chosen, ids, head.linear.weight.data, head.linear.bias.data, read)
    assert abs(loss - expected) <= 1e-12 * max(1.0, abs(expected))
    # the reference is sharp: the other level choice, or the masked ids as targets, give another number
    other = reference_loss(hidden, chosen, ids, head.linear.weight.data, head.linear.bias.data,
                           [0, 1, 2] if levels == "last" else [2])
    assert abs(other - expected) > 1e-6
    assert abs(reference_loss(hidden, chosen, inputs, head.linear.weight.data, head.linear.bias.data, read)
               - expected) > 1e-6


# ---- the backward: central differences ----------------------------------------------------------

@pytest.mark.parametrize("index", range(len(mlm_cases(np.random.default_rng(0)))))
def test_objective_backward_matches_central_differences(index):
    rng = np.random.default_rng(10 + index)
    case = mlm_cases(rng)[index]
    report = case.check(rng, tol=TOL)
    assert report.ok, f"{case.name}:\n{report}"
    names = {row.name for row in report.rows}
    assert {"head.linear.weight", "model.embedding.weight", "model.blocks.0.attn.qkv.weight"} <= names


def test_the_check_catches_a_wrong_backward(monkeypatch):
    """Each block read gets the head's gradient; a backward that drops the 1/|S| of the mean is caught (on the
    head's bias, the cheapest tensor to differentiate numerically), and the true backward passes there."""
    rng = np.random.default_rng(3)
    case = next(c for c in mlm_cases(rng) if "every block" in c.name)
    objective, bias = case.module, case.module.head.linear.bias

    def bias_error():
        objective.zero_grad()
        case.forward(**case.constants)
        objective.backward(1.0)
        return rel_error(bias.grad.copy(), numerical_gradient(lambda: float(case.forward(**case.constants)), bias.data))

    objective.relax()
    assert bias_error() <= TOL
    original = MaskedLM.backward
    monkeypatch.setattr(MaskedLM, "backward", lambda self, dloss=1.0: original(self, dloss * len(self.read)))
    assert bias_error() > 0.1


def test_a_batch_without_words_has_loss_zero_and_no_gradient():
    """Rows of specials and [UNK] only: nothing is chosen, L = 0 (not 0/0), every grad stays 0."""
    rng = np.random.default_rng(0)
    config = ModelConfig(num_classes=2, token_dim=6, position_dim=2, heads=2, blocks=2, vocab_size=9)
    objective = MaskedLM(BEExformer(config, rng), MLMHead(config.dim, 9, rng), levels="all")
    objective.rng = np.random.default_rng(1)
    ids = np.array([[2, 1, 1, 3], [2, 1, 0, 0]])
    loss = objective.forward(ids, (ids > 0).astype(np.float32))
    objective.backward()
    assert loss == 0.0 and objective.predictions()[-1].size == 0
    assert all(not p.grad.any() for _, p in objective.parameters())
