r"""The GLUE dev metrics.

With TP, FP, FN, TN counted for the positive class 1:

* ``accuracy`` = fraction of predictions equal to the label;
* ``f1`` = 2 TP / (2 TP + FP + FN), the harmonic mean of precision and
  recall of class 1 (MRPC, QQP); 0 when there is no positive at all;
* ``matthews_corrcoef`` (CoLA), for any number of classes from the confusion
  matrix C (``s`` samples, ``c`` correct, ``t_k`` true and ``p_k`` predicted
  counts of class k):

      MCC = (c s - sum_k t_k p_k) / sqrt((s^2 - sum_k p_k^2) (s^2 - sum_k t_k^2))

  which for two classes is (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)).
  When either factor under the root is 0 (a constant predictor, or a single
  class in the labels) MCC is defined as 0, not NaN;
* ``pearson`` and ``spearman`` (STS-B) from scipy; 0 when either side is
  constant (the correlation is undefined there).

``compute_metrics(task, predictions, labels)`` returns the task's metrics as a
dict keyed by ``task.metrics`` ("accuracy", "f1", "mcc", "pearson",
"spearman"); ``main_metric(task)`` names the one reported first, and
``selection_score(task, metrics)`` is what every choice maximises: the main
metric, or for the F1 tasks (MRPC, QQP) the mean of F1 and accuracy, GLUE's
own score for them (F1 alone is maximised by always answering 1: 81.2 on
MRPC dev).
"""
import numpy as np

from beexnp.glue.tasks import get_task


def _pair(predictions, labels):
    """Both arguments as 1-D arrays of the same, non-zero length."""
    p, y = np.asarray(predictions).ravel(), np.asarray(labels).ravel()
    if p.shape != y.shape:
        raise ValueError(f"{p.size} predictions for {y.size} labels")
    if p.size == 0:
        raise ValueError("no predictions to score")
    return p, y


def accuracy(predictions, labels):
    """Fraction of predictions equal to their label."""
    p, y = _pair(predictions, labels)
    return float(np.mean(p == y))


def f1(predictions, labels):
    """F1 score of the positive class 1 (0 when neither side has a 1)."""
    p, y = _pair(predictions, labels)
    tp = np.sum((p == 1) & (y == 1))
    wrong = np.sum(p != y)                 # FP + FN
    return float(2 * tp / (2 * tp + wrong)) if tp + wrong else 0.0


def matthews_corrcoef(predictions, labels):
    """Matthews correlation coefficient; 0 for a constant predictor."""
    p, y = _pair(predictions, labels)
    _, codes = np.unique(np.concatenate([p, y]), return_inverse=True)
    k = codes.max() + 1
    p_counts = np.bincount(codes[:p.size], minlength=k).astype(np.float64)
    t_counts = np.bincount(codes[p.size:], minlength=k).astype(np.float64)
    s, c = float(p.size), float(np.sum(p == y))
    denominator = (s * s - p_counts @ p_counts) * (s * s - t_counts @ t_counts)
    if denominator == 0:
        return 0.0
    return float((c * s - t_counts @ p_counts) / np.sqrt(denominator))


def _correlation(name, predictions, labels):
    """``scipy.stats.<name>`` (a correlation) of the two, 0 if either is constant."""
    from scipy import stats   # imported here: it takes a second, and only STS-B needs it

    p, y = _pair(predictions, labels)
    p, y = p.astype(np.float64), y.astype(np.float64)
    if np.all(p == p[0]) or np.all(y == y[0]):
        return 0.0
    return float(getattr(stats, name)(p, y)[0])


def pearson(predictions, labels):
    """Pearson correlation (0 when either side is constant)."""
    return _correlation("pearsonr", predictions, labels)


def spearman(predictions, labels):
    """Spearman rank correlation (0 when either side is constant)."""
    return _correlation("spearmanr", predictions, labels)


METRICS = {"accuracy": accuracy, "f1": f1, "mcc": matthews_corrcoef,
           "pearson": pearson, "spearman": spearman}


def compute_metrics(task, predictions, labels):
    """The metrics of ``task`` (a name or a ``Task``) as {name: float}.
    ``predictions`` are class ids, or scores for STS-B."""
    task = get_task(task)
    return {name: METRICS[name](predictions, labels) for name in task.metrics}


def main_metric(task):
    """The name of the metric ``task`` reports first ("mcc", "f1", ...)."""
    return get_task(task).main_metric


def selection_score(task, metrics):
    """What choices are made on, from a dict of ``task``'s metrics: the mean of ``task.selection_metrics``."""
    names = get_task(task).selection_metrics
    return float(np.mean([metrics[name] for name in names]))


def selection_name(task):
    """``selection_score``'s name in words: "mcc", or "mean(f1, accuracy)"."""
    names = get_task(task).selection_metrics
    return names[0] if len(names) == 1 else f"mean({', '.join(names)})"
