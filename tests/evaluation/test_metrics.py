import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from tfzoo.evaluation import average_precision, format_task_table, roc_auc, task_metrics


@pytest.mark.parametrize("seed", range(5))
def test_match_scikit_learn_including_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(500) < 0.2
    scores = np.round(rng.random(500) + 0.3 * labels, 1)  # rounding makes many ties
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert average_precision(labels, scores) == pytest.approx(average_precision_score(labels, scores), abs=1e-12)


def test_hand_derived_values_and_masks():
    # Positives scored 0.9 and 0.4, negatives 0.5 and 0.1: 3 of 4 pairs ordered -> 0.75.
    assert roc_auc([1, 0, 1, 0], [0.9, 0.5, 0.4, 0.1]) == 0.75
    # Ranking: 0.9 (pos, P=1, R=.5), 0.5 (neg), 0.4 (pos, P=2/3, R=1) -> AP = .5 + .5 * 2/3.
    assert average_precision([1, 0, 1, 0], [0.9, 0.5, 0.4, 0.1]) == pytest.approx(0.5 + 1 / 3)
    # Masked rows are ignored entirely.
    assert roc_auc([1, 0, 1, 0, 1], [0.9, 0.5, 0.4, 0.1, 0.0], mask=[1, 1, 1, 1, 0]) == 0.75
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_task_metrics_and_table():
    report = task_metrics(
        {"a": np.array([1, 0, 1, 0])}, {"a": np.array([0.9, 0.5, 0.4, 0.1])}, {"a": np.array([1, 1, 1, 1])}
    )
    assert report["a"] == {"auc": 0.75, "ap": pytest.approx(0.5 + 1 / 3), "rows": 4, "positive_rate": 0.5}
    table = format_task_table([("mmoe", report)])
    assert "a AUC" in table and "0.7500" in table
