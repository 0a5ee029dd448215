"""experiments/baseline_tfidf.py: the TF-IDF vectors, the logistic loss's gradient, and a whole task on the
synthetic GLUE folder."""
import json
import sys
from pathlib import Path

import numpy as np
import scipy.optimize
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "experiments"))

import baseline_tfidf  # noqa: E402  (experiments/baseline_tfidf.py)


def test_tfidf_rows_have_unit_length_and_rare_terms_weigh_more():
    vectorize = baseline_tfidf.Tfidf(["a b", "a c", "a b c", "d"], n=2)
    assert sorted(vectorize.index) == ["a", "a b", "b", "c"]              # seen in >= 2 texts; "d" once
    X = vectorize(["a b", "d", "b b a"]).toarray()
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), [1, 0, 1], atol=1e-12)
    assert X[0, vectorize.index["b"]] > X[0, vectorize.index["a"]]      # a is in every text: a lower idf


def test_the_logistic_loss_gradient_matches_central_differences(rng):
    X = sp.csr_matrix(rng.standard_normal((7, 4)))
    Y = np.eye(3)[rng.integers(0, 3, 7)]
    theta = rng.standard_normal(4 * 3 + 3)
    err = scipy.optimize.check_grad(lambda t: baseline_tfidf.logistic_loss(t, X, Y, 0.7)[0],
                                    lambda t: baseline_tfidf.logistic_loss(t, X, Y, 0.7)[1], theta)
    assert err < 1e-5


def test_a_task_is_chosen_on_the_heldout_slice_and_scored_on_dev(glue_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(baseline_tfidf, "GRID", dict(ngrams=(1,), strength=(0.1, 10.0)))
    assert baseline_tfidf.main(["--tasks", "sst2", "--glue-dir", str(glue_dir), "--results", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "baselines" / "sst2-tfidf.json").read_text())
    points = record["selection"]["points"]
    assert len(points) == 2 and record["selection"]["score"] == max(p["score"] for p in points)
    assert record["point"]["strength"] == max(points, key=lambda p: p["score"])["strength"]
    assert record["selection"]["unit"] == "sentences" and 0.5 < record["dev_full_depth"]["accuracy"] <= 1
