r"""A bag-of-words baseline on the same data and the same held-out slice: TF-IDF with logistic regression
(classification) or ridge regression (STS-B), in NumPy and SciPy.

    python experiments/baseline_tfidf.py [--tasks cola sst2 ...] [--glue-dir DIR] [--results DIR]

Features of a text (``tokenize``, DESIGN §2.1), fitted on the training rows (held-out rows excluded):

    terms    = word n-grams, n = 1 .. ngrams, seen in >= 2 training texts
    tf-idf   = (1 + log count) * (log((1 + n_texts) / (1 + df)) + 1), each text's vector scaled to unit length
    one text   x = tfidf(a)
    a pair     x = [tfidf(a) * tfidf(b), |tfidf(a) - tfidf(b)|, cos(a, b), Jaccard(words a, words b)]

Classification minimises  sum_i CE(softmax(x_i W + c), y_i) + ||W||^2 / (2 C)  with L-BFGS (scipy);
regression solves  min ||X w + c - y||^2 + alpha ||w||^2  (``lsqr`` with damping, y centred).  ngrams and C
(or alpha) are chosen on the held-out slice of DESIGN §9.1 with the task's selection score (§9.2); dev is
scored once, with the chosen model (trained without the held-out rows, as every BEExformer run is).

Each task writes ``<results>/baselines/<task>-tfidf.json``: the chosen point, the held-out score of every
point, dev metrics (``--unit rows``: ``<task>-tfidf-rows.json``, on the single rows of before issue 25).  ``experiments/tables.py`` reads them beside the published from-scratch figures.
"""
import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import scipy.optimize
import scipy.sparse as sp
import scipy.sparse.linalg

from beexnp.glue import compute_metrics, get_task, load_split, selection_score
from beexnp.glue.heldout import UNITS, split_heldout, training_rows, unit_name
from beexnp.glue.reader import nonempty
from beexnp.glue.tokenizer import tokenize
from beexnp.outputs import write_text

TASKS = ("sst2", "cola", "mrpc", "stsb", "rte", "wnli")
GRID = dict(ngrams=(1, 2), strength=(0.01, 0.1, 1.0, 10.0, 100.0))   # strength: C (classification) or alpha (ridge)
MIN_DF = 2


def ngrams(text, n):
    """The word n-grams of ``text``, n = 1 .. ``n``, as strings."""
    words = tokenize(text)
    return [" ".join(words[i:i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1)]


class Tfidf:
    """TF-IDF vectors over the n-grams seen in at least MIN_DF training texts."""

    def __init__(self, texts, n):
        self.n = n
        df = Counter(term for text in texts for term in set(ngrams(text, n)))
        terms = sorted(t for t, c in df.items() if c >= MIN_DF)
        self.index = {t: i for i, t in enumerate(terms)}
        counts = np.array([df[t] for t in terms], np.float64)
        self.idf = np.log((1 + len(texts)) / (1 + counts)) + 1

    def __call__(self, texts):
        """(len(texts), terms) CSR matrix, each row of unit length (or zero)."""
        rows, cols, vals = [], [], []
        for r, text in enumerate(texts):
            counts = Counter(self.index[t] for t in ngrams(text, self.n) if t in self.index)
            rows += [r] * len(counts)
            cols += list(counts)
            vals += [1 + np.log(c) for c in counts.values()]
        m = sp.csr_matrix((vals, (rows, cols)), shape=(len(texts), len(self.index)))
        m = m.multiply(self.idf[None, :]).tocsr()
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1))).ravel()
        return sp.diags(1 / np.maximum(norms, 1e-12)) @ m


def jaccard(a, b):
    sa, sb = set(tokenize(a)), set(tokenize(b))
    return len(sa & sb) / max(len(sa | sb), 1)


def features(vectorize, examples):
    """The design matrix of ``examples`` (CSR)."""
    a = vectorize(examples.text_a)
    if examples.text_b is None:
        return a
    b = vectorize(examples.text_b)
    cos = np.asarray(a.multiply(b).sum(axis=1))
    jac = np.array([[jaccard(x, y)] for x, y in zip(examples.text_a, examples.text_b)])
    return sp.hstack([a.multiply(b), abs(a - b), sp.csr_matrix(cos), sp.csr_matrix(jac)]).tocsr()


def logistic_loss(theta, X, Y, C):
    """(summed cross-entropy + ||W||^2 / (2C), its gradient) at theta = [W (d, K) flattened, c (K,)]; Y one-hot."""
    d, K = X.shape[1], Y.shape[1]
    W, c = theta[:-K].reshape(d, K), theta[-K:]
    z = X @ W + c
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    g = np.exp(logp) - Y                                        # dL/dz
    value = -np.sum(Y * logp) + np.sum(W * W) / (2 * C)
    return value, np.concatenate([(X.T @ g + W / C).ravel(), g.sum(axis=0)])


def fit_logistic(X, y, classes, C):
    """(W (d, K), c (K,)) minimising ``logistic_loss`` with L-BFGS."""
    theta = scipy.optimize.minimize(logistic_loss, np.zeros(X.shape[1] * classes + classes), jac=True,
                                    args=(X, np.eye(classes)[y], C), method="L-BFGS-B", options=dict(maxiter=500)).x
    return theta[:-classes].reshape(X.shape[1], classes), theta[-classes:]


def fit(X, y, task, strength):
    """A predictor X -> predictions: logistic regression (C = strength) or ridge (alpha = strength)."""
    if task.regression:
        mean = float(np.mean(y))
        w = scipy.sparse.linalg.lsqr(X, y - mean, damp=np.sqrt(strength))[0]
        return lambda Z: Z @ w + mean
    W, c = fit_logistic(X, y, task.num_labels, strength)
    return lambda Z: np.argmax(Z @ W + c, axis=1)


def run_task(name, glue_dir=None, fraction=0.1, seed=0, unit="groups"):
    """The baseline's record for one task: every grid point scored on the held-out slice, the chosen one on dev."""
    task = get_task(name)
    start = time.perf_counter()
    train, held = split_heldout(training_rows(task, glue_dir), fraction, seed, unit)
    dev = nonempty(load_split(task, task.dev_splits[0], glue_dir))
    points, best = [], None
    for n in GRID["ngrams"]:
        vectorize = Tfidf(list(train.text_a) + list(train.text_b or []), n)
        X, H = features(vectorize, train), features(vectorize, held)
        for strength in GRID["strength"]:
            predict = fit(X, train.labels, task, strength)
            metrics = compute_metrics(task, predict(H), held.labels)
            points.append(dict(ngrams=n, strength=strength, heldout=metrics, score=selection_score(task, metrics)))
            if best is None or points[-1]["score"] > best[0]["score"]:
                best = points[-1], vectorize, predict
    chosen, vectorize, predict = best
    return dict(name=f"{task.name}-tfidf" + ("" if unit == "groups" else f"-{unit}"), group="baseline", variant="tfidf", task=task.name, seed=seed,
                metric=task.main_metric, model="TF-IDF + " + ("ridge" if task.regression else "logistic") + " regression",
                point=dict(ngrams=chosen["ngrams"], strength=chosen["strength"]),
                selection=dict(split="heldout", unit=unit_name(task.name, unit), fraction=fraction, seed=seed,
                               score=chosen["score"], points=points),
                dev_full_depth=compute_metrics(task, predict(features(vectorize, dev)), dev.labels),
                terms=len(vectorize.index), run_seconds=time.perf_counter() - start)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="*", default=list(TASKS))
    p.add_argument("--glue-dir", help="GLUE folder (default: $GLUE_DIR, then data/glue)")
    p.add_argument("--results", default="results/experiments", help="records folder (baselines/ inside it)")
    p.add_argument("--unit", default="groups", choices=UNITS, help="the held-out slice: whole groups (DESIGN "
                   "§9.1), or the single rows of before issue 25 (records <task>-tfidf-rows.json: the gap between "
                   "held-out and dev with each)")
    args = p.parse_args(argv)
    folder = Path(args.results) / "baselines"
    folder.mkdir(parents=True, exist_ok=True)
    for name in args.tasks:
        record = run_task(name, args.glue_dir, unit=args.unit)
        write_text(folder / f"{record['name']}.json", json.dumps(record, indent=1))
        print(f"{record['task']}: {record['point']} held-out {record['selection']['score']:.4f}, dev "
              + ", ".join(f"{k} {v:.4f}" for k, v in record["dev_full_depth"].items())
              + f" ({record['run_seconds']:.0f}s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
