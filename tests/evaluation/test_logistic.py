import numpy as np
import pytest
import scipy.sparse as sparse

from tfzoo.evaluation.logistic import LogisticRegression, task_logistic_regressions, tuned_logistic_regression
from tfzoo.evaluation.metrics import roc_auc


def _problem(rows=400, features=30, seed=0):
    rng = np.random.default_rng(seed)
    x = sparse.random(rows, features, density=0.2, random_state=seed, format="csr") * 3.0
    truth = rng.normal(size=features)
    y = (rng.random(rows) < 1.0 / (1.0 + np.exp(-(x @ truth - 0.5)))).astype(np.float64)
    return x, y


@pytest.mark.parametrize("c", [0.05, 1.0, 20.0])
def test_matches_scikit_learn(c):
    from sklearn.linear_model import LogisticRegression as Reference

    x, y = _problem()
    weights = np.random.default_rng(1).choice([0.0, 1.0, 2.0], size=len(y))
    ours = LogisticRegression(c=c).fit(x, y, sample_weight=weights)
    reference = Reference(C=c, tol=1e-10, max_iter=10_000).fit(x, y, sample_weight=weights)
    np.testing.assert_allclose(ours.coef, reference.coef_[0], atol=2e-4)
    assert ours.intercept == pytest.approx(reference.intercept_[0], abs=2e-4)
    np.testing.assert_allclose(ours.predict_probability(x[:5]), reference.predict_proba(x[:5])[:, 1], atol=1e-4)


def test_zero_weight_rows_are_ignored():
    x, y = _problem(rows=200)
    weights = np.r_[np.ones(100), np.zeros(100)]
    flipped = np.r_[y[:100], 1 - y[100:]]
    a = LogisticRegression(c=1.0).fit(x, y, sample_weight=weights)
    b = LogisticRegression(c=1.0).fit(x, flipped, sample_weight=weights)
    np.testing.assert_allclose(a.coef, b.coef, atol=1e-8)


def test_c_is_chosen_on_validation():
    # 200 training rows and 300 features, only the first 5 informative: a weak penalty
    # overfits, so validation picks a C below the largest and scores above chance.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 300))
    y = (x[:, :5].sum(axis=1) + rng.normal(size=1200) > 0).astype(float)
    model, scores = tuned_logistic_regression(x[:200], y[:200], x[200:700], y[200:700])
    assert sorted(scores) == [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]
    assert model.c == max(scores, key=scores.get) and model.c < 100.0
    assert scores[model.c] > scores[100.0]
    assert roc_auc(y[700:], model.decision_function(x[700:])) > 0.7


def test_one_model_per_task_and_bad_arguments():
    x, y = _problem(rows=300)
    labels = {"a": y, "b": 1 - y}
    masks = {"a": np.ones_like(y), "b": np.r_[np.ones(150), np.zeros(150)]}
    models = task_logistic_regressions(
        x[:200],
        {k: v[:200] for k, v in labels.items()},
        {k: v[:200] for k, v in masks.items()},
        x[200:],
        {k: v[200:] for k, v in labels.items()},
        {"a": np.ones(100)},
        ["a", "b"],
        cs=(1.0,),
    )
    assert set(models) == {"a", "b"}
    with pytest.raises(ValueError, match="c=0"):
        LogisticRegression(c=0)
    with pytest.raises(ValueError, match="not fitted"):
        LogisticRegression().decision_function(x)
    with pytest.raises(ValueError, match="positive weight"):
        LogisticRegression().fit(x, y, np.zeros_like(y))
