import numpy as np
import pytest

from tfzoo.data import CategoricalFeature, DatasetSpec, EmbeddingFeature, IdFeature, NumericFeature
from tfzoo.data.pipeline import model_columns
from tfzoo.data.tabular import TabularData
from tfzoo.evaluation import tabular
from tfzoo.evaluation.metrics import task_metrics
from tfzoo.evaluation.tabular import TabularBaselines, baseline_matrices

SPEC = DatasetSpec(
    features=(
        CategoricalFeature("segment"),
        NumericFeature("amount"),
        IdFeature("user", num_ids=50),
        EmbeddingFeature("vector", dim=3),
    ),
    labels=("buy", "churn"),
)


def rows(n, seed):
    """`buy` is planted in the segment, `churn` in a threshold on the amount (what trees
    find and a linear model only approximates); half the `churn` labels are absent."""
    rng = np.random.default_rng(seed)
    segment = rng.choice(["a", "b", "c"], n).astype(object)
    amount = rng.normal(size=n).astype(np.float32)
    features = {
        "segment": segment,
        "amount": amount,
        "user": rng.integers(0, 50, n),
        "vector": rng.normal(size=(n, 3)).astype(np.float32),
    }
    buy = ((segment == "a") ^ (rng.random(n) < 0.1)).astype(np.float32)
    churn = (np.abs(amount) > 1.0).astype(np.float32)
    masks = {"buy": np.ones(n, np.float32), "churn": (rng.random(n) < 0.5).astype(np.float32)}
    return TabularData(features, {"buy": buy, "churn": churn}, SPEC, label_masks=masks)


@pytest.fixture(scope="module")
def fitted():
    train, validation, test = rows(3000, 0), rows(1000, 1), rows(1000, 2)
    spec = SPEC.fit(train.features)
    baselines = TabularBaselines(spec, model_columns(train, spec), model_columns(validation, spec), spec.labels)
    scores = baselines.predictions(model_columns(test, spec, with_labels=False)["features"])
    return spec, test, {name: task_metrics(test.labels, p, test.label_masks) for name, p in scores.items()}


def test_both_baselines_find_the_planted_signals(fitted):
    _, test, reports = fitted
    assert set(reports) == {"logistic_regression", "gradient_boosted_trees"}
    for report in reports.values():
        assert report["buy"]["auc"] > 0.85  # 10% label noise on a segment: at most 0.9
        assert report["churn"]["rows"] == int(test.label_masks["churn"].sum())  # absent labels left out
    # |amount| > 1 is two thresholds: trees find them, a line through the amount cannot.
    assert reports["gradient_boosted_trees"]["churn"]["auc"] > 0.99
    assert reports["logistic_regression"]["churn"]["auc"] < 0.7


def test_matrices_hold_every_feature_in_the_spec_order(fitted):
    spec, test, _ = fitted
    linear, trees, categorical = baseline_matrices(spec, model_columns(test, spec, with_labels=False)["features"])
    segment = spec.feature("segment").cardinality
    assert linear.shape == (len(test), segment + 1 + 51 + 3)
    assert trees.shape == (len(test), 1 + 1 + 0 + 3)  # the id gives trees no column
    assert categorical.tolist() == [True, False, False, False, False]


def test_training_rows_are_capped_by_a_seeded_sample(monkeypatch):
    train, validation = rows(400, 0), rows(200, 1)
    spec = SPEC.fit(train.features)
    monkeypatch.setattr(tabular, "MAX_BASELINE_ROWS", 100)
    seen = []
    original = tabular.task_logistic_regressions

    def spy(x, *args, **kwargs):
        seen.append(x.shape[0])
        return original(x, *args, **kwargs)

    monkeypatch.setattr(tabular, "task_logistic_regressions", spy)
    TabularBaselines(
        spec, model_columns(train, spec), model_columns(validation, spec), ["buy"], baselines=["logistic_regression"]
    )
    assert seen == [100]


def test_unknown_baselines_are_refused():
    train = rows(50, 0)
    spec = SPEC.fit(train.features)
    with pytest.raises(ValueError, match=r"baselines=\['forest'\]"):
        TabularBaselines(spec, model_columns(train, spec), model_columns(train, spec), ["buy"], baselines=["forest"])
