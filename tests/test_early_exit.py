"""Early exit: every criterion agrees with the full forward at the block each input left."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beexnp.config import ModelConfig
from beexnp.criteria import (CRITERIA, EntropyThreshold, FractionalEntropy, MaxProbability, NeverExit, Patience,
                             RelativeChange, make_criterion)
from beexnp.entropy import entropy, fractional_entropy_drop
from beexnp.exit_loss import SoftRouting, soft_routing_weights
from beexnp.inference import early_exit_forward, simulate_exits
from beexnp.layer_checks import padding_mask
from beexnp.model import BEExformer

BLOCKS = 5


def tiny_model(rng, regression=False):
    cfg = ModelConfig(vocab_size=17, num_classes=1 if regression else 3, regression=regression,
                      token_dim=10, position_dim=2, heads=2, blocks=BLOCKS, dropout=0.3)
    return BEExformer(cfg, rng)


def padded_batch(rng, batch=12, tokens=9):
    mask = padding_mask(rng, batch, tokens).astype(np.float32)
    return rng.integers(4, 17, size=(batch, tokens)) * mask.astype(np.int64), mask


CLASSIFICATION_RULES = [FractionalEntropy(0.0005), FractionalEntropy(0.005), FractionalEntropy(0.3),
                        EntropyThreshold(0.95), EntropyThreshold(0.99, normalized=False), MaxProbability(0.4),
                        MaxProbability(0.45), Patience(1), Patience(2), NeverExit()]


@pytest.mark.parametrize("rule", CLASSIFICATION_RULES, ids=lambda r: f"{r.name}-{vars(r)}")
def test_early_exit_logits_equal_full_forward_at_exit_block(rule):
    rng = np.random.default_rng(3)
    model = tiny_model(rng)
    ids, mask = padded_batch(rng)
    result = early_exit_forward(model, ids, mask, rule)
    model.eval()
    full = np.stack(model.forward(ids, mask))                               # (N, B, C)
    at_exit = full[result.exit_block - 1, np.arange(len(ids))]
    np.testing.assert_allclose(result.logits, at_exit, rtol=1e-4, atol=1e-5)
    passed = np.arange(BLOCKS)[None, :] < result.exit_block[:, None]
    assert np.all(np.isfinite(result.entropy) == passed)                    # entropy at every block it passed
    np.testing.assert_allclose(result.entropy[passed],
                               np.stack([entropy(z) for z in full]).T[passed], rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(simulate_exits(full, rule), result.exit_block)   # the sweep's shortcut agrees


@pytest.mark.parametrize("rule", [FractionalEntropy(0.0005), MaxProbability(0.4), Patience(1)], ids=lambda r: r.name)
def test_rows_leave_at_several_blocks(rule):
    """The consistency test above is only meaningful if rows really leave at different blocks
    (so the gathering of rows and the trimming of padding are exercised)."""
    rng = np.random.default_rng(3)
    model = tiny_model(rng)
    ids, mask = padded_batch(rng)
    assert len(np.unique(early_exit_forward(model, ids, mask, rule).exit_block)) >= 3


def test_inference_restores_training_mode():
    rng = np.random.default_rng(0)
    model = tiny_model(rng)
    ids, mask = padded_batch(rng)
    early_exit_forward(model, ids, mask, FractionalEntropy(0.1))
    assert model.training
    model.eval()
    early_exit_forward(model, ids, mask, FractionalEntropy(0.1))
    assert not model.training


def test_never_triggering_delta_reproduces_the_last_exit():
    rng = np.random.default_rng(1)
    model = tiny_model(rng)
    ids, mask = padded_batch(rng)
    result = early_exit_forward(model, ids, mask, EntropyThreshold(0.0))          # H / log C < 0: never
    model.eval()
    assert np.all(result.exit_block == BLOCKS)
    np.testing.assert_array_equal(result.logits, model.forward(ids, mask)[-1])   # same rows, same work: bitwise


@pytest.mark.parametrize("rule, block", [(FractionalEntropy(0.99), 2), (RelativeChange(1e9), 2),
                                         (EntropyThreshold(1.0), 1), (MaxProbability(0.0), 1),
                                         (Patience(1e9), BLOCKS)])
def test_always_triggering_thresholds(rule, block):
    rng = np.random.default_rng(2)
    model = tiny_model(rng, regression=isinstance(rule, RelativeChange))
    ids, mask = padded_batch(rng)
    assert np.all(early_exit_forward(model, ids, mask, rule).exit_block == block)


def test_regression_relative_change_matches_full_forward():
    rng = np.random.default_rng(4)
    model = tiny_model(rng, regression=True)
    ids, mask = padded_batch(rng)
    result = early_exit_forward(model, ids, mask, RelativeChange(0.2))
    model.eval()
    full = np.stack(model.forward(ids, mask))[..., 0]                       # (N, B)
    np.testing.assert_allclose(result.logits[:, 0], full[result.exit_block - 1, np.arange(len(ids))],
                               rtol=1e-4, atol=1e-5)
    rc = np.abs(np.diff(full, axis=0)) / np.abs(full[:-1])                   # r_i for i = 2..N
    first = np.array([next((i + 2 for i in range(BLOCKS - 1) if rc[i, b] < 0.2), BLOCKS) for b in range(len(ids))])
    np.testing.assert_array_equal(result.exit_block, first)


def test_fractional_rule_is_the_first_block_with_small_drop():
    """The exit block is the first i >= 2 with r_i < delta, computed here from the full forward."""
    rng = np.random.default_rng(5)
    model = tiny_model(rng)
    ids, mask = padded_batch(rng, batch=30)
    delta = 0.02
    result = early_exit_forward(model, ids, mask, FractionalEntropy(delta))
    model.eval()
    H = np.stack([entropy(z) for z in model.forward(ids, mask)])             # (N, B)
    r = fractional_entropy_drop(H[:-1], H[1:])                               # (N-1, B): r_2..r_N
    expected = np.where((r < delta).any(axis=0), (r < delta).argmax(axis=0) + 2, BLOCKS)
    np.testing.assert_array_equal(result.exit_block, expected)


@settings(max_examples=50, deadline=None)
@given(st.floats(-800, 800), st.integers(2, 5))
def test_entropy_is_finite_where_probabilities_underflow(gap, classes):
    z = np.zeros((1, classes))
    z[0, 0] = gap
    H = entropy(z)
    assert np.isfinite(H).all() and (H >= -1e-12).all() and (H <= np.log(classes) + 1e-12).all()
    Hn = entropy(z, normalized=True)
    assert (Hn <= 1 + 1e-12).all()


@pytest.mark.parametrize("delta", [0.0, 1e-9, 0.5])
def test_certain_input_leaves_for_every_delta(delta):
    """H_{i-1} ~ 0 (already certain): r = 0 by the guard, and the input leaves at its first eligible
    block for every delta, 0 included (DESIGN §6.2); soft routing sends it there too (§6.8)."""
    assert fractional_entropy_drop(np.array([0.0]), np.array([0.0]))[0] == 0.0
    sure = np.array([[60.0, 0.0], [0.3, 0.0]])                          # row 0 certain, row 1 not
    logits = [sure, sure + np.array([[0.0, 0.0], [0.2, 0.0]]), sure, sure]   # (N=4) x (B=2, C=2)
    rule = FractionalEntropy(delta)
    np.testing.assert_array_equal(simulate_exits(np.stack(logits), rule)[:1], [2])
    w = soft_routing_weights(logits, SoftRouting(delta=delta, tau=0.05, beta=0.0))
    np.testing.assert_allclose(w[:, 0], [0, 1, 0, 0])                     # all of its weight at exit 2
    np.testing.assert_allclose(w.sum(axis=0), 1.0)


@pytest.mark.parametrize("blocks", [1, 2, 3])
def test_soft_routing_columns_sum_to_one_for_any_depth(blocks):
    """One block: q_1 = q_N = 1, so the only exit gets weight 1 (not beta)."""
    logits = [np.array([[0.3, 0.0], [2.0, -1.0]])] * blocks
    w = soft_routing_weights(logits, SoftRouting(beta=0.2))
    assert w.shape == (blocks, 2)
    np.testing.assert_allclose(w.sum(axis=0), 1.0)


@pytest.mark.parametrize("name, good, bad", [
    ("fractional", [0.0, 0.3, 0.999], [-1.0, 1.0, 5.0, np.nan, np.inf]),
    ("relative_change", [0.0, 2.0], [-0.1, np.nan]),
    ("entropy", [0.0, 0.5, 1.0], [-0.1, 1.01, np.nan]),
    ("maxprob", [0.0, 0.9, 1.0], [-0.1, 1.5, np.nan]),
    ("patience", [1, 2.0, 5], [0, -3, 2.5, np.nan]),
])
def test_each_criterion_refuses_thresholds_outside_its_range(name, good, bad):
    for value in good:
        make_criterion(name, value, regression=name == "relative_change")
    for value in bad:
        with pytest.raises(ValueError, match=f"the {name} criterion's threshold\\) must be"):
            make_criterion(name, value, regression=name == "relative_change")


@pytest.mark.parametrize("kind", ["right", "left", "holes"])
def test_early_exit_handles_any_padding_mask(kind):
    """Left padding and holes give the full forward's logits at each exit block, like right padding."""
    rng = np.random.default_rng(6)
    model = tiny_model(rng)
    ids, mask = padded_batch(rng, batch=16, tokens=9)
    if kind == "left":
        lengths = mask.sum(axis=1).astype(int)
        order = (np.arange(9)[None, :] - (9 - lengths)[:, None]) % 9      # roll each row right by its padding
        ids, mask = np.take_along_axis(ids, order, 1), np.take_along_axis(mask, order, 1)
        assert (mask[:, -1] == 1).all() and (mask[:, 0] == 0).any()
    elif kind == "holes":
        holes = rng.random(mask.shape) < 0.3
        holes[:, 0] = False                                                 # every row keeps a real token
        mask = mask * ~holes
        ids = ids * mask.astype(np.int64)
    for rule in (FractionalEntropy(0.0005), MaxProbability(0.4), Patience(1)):
        result = early_exit_forward(model, ids, mask, rule)
        model.eval()
        full = np.stack(model.forward(ids, mask))
        assert np.isfinite(result.logits).all()
        np.testing.assert_allclose(result.logits, full[result.exit_block - 1, np.arange(len(ids))],
                                   rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(simulate_exits(full, rule), result.exit_block)
    assert len(np.unique(early_exit_forward(model, ids, mask, FractionalEntropy(0.0005)).exit_block)) >= 2


def test_early_exit_refuses_a_row_without_a_token():
    rng = np.random.default_rng(6)
    model = tiny_model(rng)
    ids, mask = padded_batch(rng, batch=4)
    mask[2] = 0
    with pytest.raises(ValueError, match=r"rows \[2\] have no real token"):
        early_exit_forward(model, ids, mask, NeverExit())


def test_make_criterion_errors():
    with pytest.raises(ValueError, match="unknown exit criterion"):
        make_criterion("coinflip", 0.5)
    with pytest.raises(ValueError, match="needs class probabilities"):
        make_criterion("maxprob", 0.9, regression=True)
    with pytest.raises(ValueError, match="needs a threshold"):
        make_criterion("patience")
    assert isinstance(make_criterion("fractional", 0.1, regression=True), RelativeChange)
    assert set(CRITERIA) == {"fractional", "relative_change", "entropy", "maxprob", "patience", "never"}


def test_sweep_chooses_the_largest_cut_that_keeps_full_depth_quality():
    from beexnp.sweep import choose
    rows = [dict(criterion="full depth", threshold=None, score=0.80, flops_cut=0.0),
            dict(criterion="fractional", threshold=0.1, score=0.81, flops_cut=0.3),
            dict(criterion="fractional", threshold=0.2, score=0.80, flops_cut=0.5),
            dict(criterion="fractional", threshold=0.5, score=0.70, flops_cut=0.9),
            dict(criterion="maxprob", threshold=0.9, score=0.85, flops_cut=0.95)]
    assert choose(rows)["threshold"] == 0.2
    assert choose(rows[:1] + rows[3:4])["threshold"] == 0.5          # none keeps quality: the best score


def test_matched_picks_each_criterion_on_the_selection_split_within_the_fractional_budget():
    """The budget is the FLOPs of the fractional point chosen on the selection split; each criterion's threshold
    is its best selection score within 1.02 x that budget, and the report split only says what it scored."""
    from beexnp.sweep import matched

    def rows(scores):                                  # (criterion, threshold, mean MFLOPs) -> score on one split
        return [dict(criterion=c, threshold=t, mean_flops=f, score=s, metric=s, flops_cut=1 - f / 10)
                for (c, t, f), s in scores.items()]
    points = [("full depth", None, 10), ("fractional", 0.1, 6), ("fractional", 0.5, 3),
              ("entropy", 0.2, 6.1), ("entropy", 0.5, 4), ("entropy", 0.9, 6.2),
              ("maxprob", 0.9, 2), ("patience", 1, 7)]
    selection = rows(dict(zip(points, [0.80, 0.80, 0.70, 0.90, 0.85, 0.95, 0.60, 0.99])))
    report = rows(dict(zip(points, [0.50, 0.51, 0.52, 0.53, 0.54, 0.55, 0.56, 0.57])))
    out = matched(selection, report)
    assert out["budget"] == 6 and out["slack"] == 1.02                # fractional 0.1 keeps full depth's 0.80
    picked = {c["criterion"]: c for c in out["criteria"]}
    assert list(picked) == ["fractional", "entropy", "maxprob", "patience"]
    assert picked["fractional"]["threshold"] == 0.1
    assert picked["entropy"]["threshold"] == 0.2          # 6.1 <= 6.12 and 0.90 > 0.85; 0.9 costs 6.2 > 6.12
    assert picked["entropy"]["report"]["metric"] == 0.53               # dev at that threshold, never chosen on
    assert picked["maxprob"]["threshold"] == 0.9 and picked["maxprob"]["selection"]["score"] == 0.60
    assert picked["patience"]["threshold"] is None and picked["patience"]["report"] is None    # none that cheap
    tie = rows({("full depth", None, 10): 0.8, ("fractional", 0.1, 6): 0.8,
                ("maxprob", 0.5, 2): 0.7, ("maxprob", 0.7, 5): 0.7})
    assert matched(tie, tie)["criteria"][1]["threshold"] == 0.5       # equal scores: the cheaper threshold


def test_mrpc_sweep_chooses_on_f1_and_accuracy_not_f1_alone():
    """An exit that answers 'paraphrase' always has the better F1 on MRPC's 68 % positives; the rows' score,
    the mean of F1 and accuracy, keeps the sweep from choosing it."""
    from beexnp.glue import get_task
    from beexnp.sweep import choose, sweep_outputs
    from beexnp.config import ModelConfig
    labels = np.array([1] * 68 + [0] * 32)
    honest = np.where(np.arange(100) < 25, 0, labels)                     # 25 paraphrases missed: F1 0.77, acc 0.75
    outputs = np.zeros((2, 100, 2))
    outputs[0, :, 1] = 3.0                                                 # exit 1: always 1, p = 0.95
    outputs[1, np.arange(100), honest] = 1.0                               # exit 2: p = 0.73
    cfg = ModelConfig(token_dim=8, position_dim=0, heads=1, blocks=2, vocab_size=10, max_len=8, num_classes=2)
    rows = sweep_outputs(outputs, labels, np.full(100, 8), get_task("mrpc"), cfg, grids={"maxprob": [0.9, 0.99]})
    always = next(r for r in rows if r["threshold"] == 0.9)               # all leave at exit 1: F1 0.81, acc 0.68
    assert always["mean_exit_block"] == 1 and always["metric"] > rows[0]["metric"]   # F1 prefers it ...
    assert always["score"] < rows[0]["score"]                             # ... the score does not
    assert choose(rows, "maxprob")["threshold"] == 0.99


def test_sweep_rows_match_the_criteria():
    from beexnp.glue import get_task
    from beexnp.sweep import sweep_outputs
    rng = np.random.default_rng(6)
    model = tiny_model(rng)
    ids, mask = padded_batch(rng, batch=20)
    model.eval()
    outputs = np.stack(model.forward(ids, mask))
    cfg = model.config.__class__.from_dict(dict(model.config.to_dict(), num_classes=2))
    outputs = outputs[..., :2]                                             # a 2-class view for SST-2's metric
    labels = rng.integers(0, 2, 20)
    lengths = mask.sum(axis=1).astype(np.int64)
    rows = sweep_outputs(outputs, labels, lengths, get_task("sst2"), cfg, grids={"patience": [1, 100]})
    assert [r["criterion"] for r in rows] == ["full depth", "patience", "patience"]
    assert rows[2]["mean_exit_block"] == BLOCKS and rows[2]["flops_cut"] == 0       # patience 100 never exits
    assert rows[2]["metric"] == rows[0]["metric"]
    assert rows[1]["mean_flops"] < rows[0]["mean_flops"]
