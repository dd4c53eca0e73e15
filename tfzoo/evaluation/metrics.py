"""Exact ranking metrics over whole splits (the Keras AUC metrics used during `fit` are
bucketed approximations; reports use these)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def _observed(labels, scores, mask):
    labels = np.asarray(labels, np.float64).ravel()
    scores = np.asarray(scores, np.float64).ravel()
    if mask is not None:
        keep = np.asarray(mask).ravel() > 0
        labels, scores = labels[keep], scores[keep]
    if labels.shape != scores.shape:
        raise ValueError(f"labels and scores differ in shape: {labels.shape} vs {scores.shape}")
    return labels, scores


def roc_auc(labels, scores, mask=None) -> float:
    """Area under the ROC curve; tied scores count one half. NaN if a class is absent."""
    labels, scores = _observed(labels, scores, mask)
    positives = labels > 0.5
    num_pos, num_neg = int(positives.sum()), int((~positives).sum())
    if num_pos == 0 or num_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    # Average rank of each group of tied scores (1-based).
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    group_ranks = first + (counts + 1) / 2.0
    ranks = np.empty(len(scores))
    ranks[order] = np.repeat(group_ranks, counts)
    return float((ranks[positives].sum() - num_pos * (num_pos + 1) / 2.0) / (num_pos * num_neg))


def average_precision(labels, scores, mask=None) -> float:
    """Average precision: sum over score thresholds of (recall gain) x precision.

    Tied scores form one threshold. NaN if there is no positive.
    """
    labels, scores = _observed(labels, scores, mask)
    positives = labels > 0.5
    if positives.sum() == 0:
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_pos = scores[order], positives[order]
    # Last index of each group of equal scores, in descending order.
    ends = np.r_[np.nonzero(np.diff(sorted_scores))[0], len(sorted_scores) - 1]
    true_pos = np.cumsum(sorted_pos)[ends]
    precision = true_pos / (ends + 1)
    recall = true_pos / positives.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def task_metrics(
    labels: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray] | None = None,
) -> dict[str, dict[str, float]]:
    """AUC, AP, observed rows and positive rate of every task in `predictions`."""
    report = {}
    for task, scores in predictions.items():
        mask = None if masks is None else masks.get(task)
        y, _ = _observed(labels[task], scores, mask)
        report[task] = {
            "auc": roc_auc(labels[task], scores, mask),
            "ap": average_precision(labels[task], scores, mask),
            "rows": int(len(y)),
            "positive_rate": float(y.mean()) if len(y) else float("nan"),
        }
    return report
