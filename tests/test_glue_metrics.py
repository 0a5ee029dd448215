"""The GLUE metrics against hand-computed values and their edge cases."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from beexnp.glue import (accuracy, compute_metrics, f1, main_metric, matthews_corrcoef, pearson,
                         selection_name, selection_score, spearman)

# 5 predictions against 5 labels: TP = 2 (rows 0, 4), FP = 1 (row 1), FN = 1 (row 3), TN = 1 (row 2)
P = [1, 1, 0, 0, 1]
Y = [1, 0, 0, 1, 1]


def test_accuracy():
    assert accuracy(P, Y) == pytest.approx(3 / 5)
    assert accuracy([2, 0, 1], [2, 1, 1]) == pytest.approx(2 / 3)


def test_f1_by_hand():
    # precision 2/3, recall 2/3 -> F1 = 2 * 2 / (2 * 2 + 1 + 1) = 2/3
    assert f1(P, Y) == pytest.approx(2 / 3)
    assert f1([1, 0, 0, 0], [1, 1, 1, 0]) == pytest.approx(2 * 1 / (2 * 1 + 0 + 2))   # 0.5
    assert f1([0, 0], [0, 0]) == 0.0          # no positive anywhere
    assert f1([0, 0], [1, 1]) == 0.0


def test_mcc_by_hand():
    # (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (2 - 1) / sqrt(3 * 3 * 2 * 2) = 1/6
    assert matthews_corrcoef(P, Y) == pytest.approx(1 / 6)
    assert matthews_corrcoef([0, 1, 0, 1], [0, 1, 0, 1]) == pytest.approx(1.0)
    assert matthews_corrcoef([1, 0, 1, 0], [0, 1, 0, 1]) == pytest.approx(-1.0)


def test_mcc_multiclass_by_hand():
    # s = 4, c = 3, true counts (2, 1, 1), predicted counts (2, 0, 2):
    # (3*4 - (4 + 0 + 2)) / sqrt((16 - 8) * (16 - 6)) = 6 / sqrt(80)
    assert matthews_corrcoef([0, 2, 2, 0], [0, 1, 2, 0]) == pytest.approx(6 / math.sqrt(80))


def test_mcc_of_a_constant_predictor_is_zero_not_nan():
    assert matthews_corrcoef([1, 1, 1, 1], [0, 1, 1, 0]) == 0.0
    assert matthews_corrcoef([0, 1, 1, 0], [1, 1, 1, 1]) == 0.0   # a single class in the labels


def test_pearson_and_spearman_by_hand():
    # x = (1, 2, 3), y = (1, 2, 4): cov = 3, var x = 2, var y = 42/9 -> r = 3 / sqrt(2 * 42 / 9)
    assert pearson([1, 2, 3], [1, 2, 4]) == pytest.approx(3 / math.sqrt(2 * 42 / 9))
    assert spearman([1, 2, 3], [1, 2, 4]) == pytest.approx(1.0)
    # ranks (1, 2, 3) vs (3, 1, 2): d = (-2, 1, 1) -> 1 - 6 * 6 / (3 * 8) = -0.5
    assert spearman([1, 2, 3], [3, 1, 2]) == pytest.approx(-0.5)


def test_correlations_of_a_constant_are_zero():
    assert pearson([2.5, 2.5, 2.5], [1.0, 2.0, 3.0]) == 0.0
    assert spearman([1.0, 2.0, 3.0], [4.0, 4.0, 4.0]) == 0.0


def test_mismatched_or_empty_inputs_fail():
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        accuracy([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="no predictions"):
        f1([], [])


def test_compute_metrics_gives_each_tasks_metrics():
    assert compute_metrics("cola", P, Y) == pytest.approx({"mcc": 1 / 6})
    assert compute_metrics("MRPC", P, Y) == pytest.approx({"f1": 2 / 3, "accuracy": 3 / 5})
    assert compute_metrics("qqp", np.array(P), np.array(Y)) == pytest.approx({"f1": 2 / 3, "accuracy": 3 / 5})
    assert compute_metrics("rte", [0, 1], [1, 1]) == {"accuracy": 0.5}
    assert compute_metrics("mnli", [0, 1, 2, 2], [0, 1, 2, 1]) == {"accuracy": 0.75}
    stsb = compute_metrics("sts-b", np.array([1.0, 2.0, 3.0], np.float32), [1.0, 2.0, 4.0])
    assert stsb == pytest.approx({"pearson": 3 / math.sqrt(2 * 42 / 9), "spearman": 1.0})
    assert all(type(v) is float for v in stsb.values())


def test_main_metric():
    assert [main_metric(t) for t in ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli")] == \
        ["mcc", "accuracy", "f1", "pearson", "f1", "accuracy"]


def test_selection_score_is_the_main_metric_or_f1_and_accuracy_averaged():
    always_yes = compute_metrics("mrpc", np.ones(10, int), np.array([1] * 7 + [0] * 3))    # F1 0.824, acc 0.7
    assert selection_score("mrpc", always_yes) == pytest.approx((14 / 17 + 0.7) / 2)
    assert selection_name("mrpc") == selection_name("qqp") == "mean(f1, accuracy)"
    for task in ("cola", "sst2", "stsb", "rte", "mnli"):
        metrics = {name: 0.1 * (i + 1) for i, name in enumerate(("accuracy", "mcc", "pearson", "spearman"))}
        assert selection_score(task, metrics) == metrics[main_metric(task)]
        assert selection_name(task) == main_metric(task)


binary = st.lists(st.integers(0, 1), min_size=1, max_size=50)


@given(binary, binary)
def test_binary_mcc_equals_the_two_class_formula(p, y):
    n = min(len(p), len(y))
    p, y = np.array(p[:n]), np.array(y[:n])
    tp, tn = np.sum((p == 1) & (y == 1)), np.sum((p == 0) & (y == 0))
    fp, fn = np.sum((p == 1) & (y == 0)), np.sum((p == 0) & (y == 1))
    denominator = float((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    expected = 0.0 if denominator == 0 else (tp * tn - fp * fn) / math.sqrt(denominator)
    mcc = matthews_corrcoef(p, y)
    assert mcc == pytest.approx(expected, abs=1e-12)
    assert -1.0 <= mcc <= 1.0 and not math.isnan(mcc)


@given(binary, binary)
def test_f1_and_accuracy_are_symmetric_and_bounded(p, y):
    n = min(len(p), len(y))
    p, y = p[:n], y[:n]
    assert f1(p, y) == pytest.approx(f1(y, p))
    assert 0.0 <= f1(p, y) <= 1.0 and 0.0 <= accuracy(p, y) <= 1.0
