"""Upsampling of training rows by task (GRec, Wang et al., CIKM 2023, sec. 4.2: "training
data are upsampled by tasks to ensure data balance").

A task is a (flow, use case) pair: a row belongs to the task of its flow (the value of
`flow_feature`, or one flow for all rows) and of every use case whose label it observes.
Every task is brought up to about the size of the largest one: task T with n_T observed
rows gets the factor N / n_T (N the largest n_T, capped at `max_factor`), and a row is
repeated by the largest factor among its tasks (a row that carries a sparse task is
repeated for it; the other labels on it come along). A factor f repeats a row floor(f)
times plus once more with probability f - floor(f) (seeded), so task sizes reach about
N. Only training rows are upsampled; evaluation rows are left as they are.
"""

from __future__ import annotations

import numpy as np

from tfzoo.data.tabular import TabularData


def task_counts(data: TabularData, flow_feature: str | None = None) -> dict[str, int]:
    """Observed rows per task: {"flow/use_case": count} (or {"use_case": count} without flows)."""
    flows = _flows(data, flow_feature)
    counts = {}
    for flow in np.unique(flows):
        in_flow = flows == flow
        for task in data.spec.labels:
            name = f"{flow}/{task}" if flow_feature else task
            counts[name] = int((_observed(data, task) & in_flow).sum())
    return counts


def upsample_tasks(
    data: TabularData, flow_feature: str | None = None, *, max_factor: float | None = None, seed: int = 0
) -> TabularData:
    """`data` with rows repeated so that every task has about as many rows as the largest
    (see the module docstring); row order: each row's copies follow it."""
    if max_factor is not None and not max_factor >= 1:
        raise ValueError(f"`max_factor` must be >= 1 or None. Received: max_factor={max_factor}")
    flows = _flows(data, flow_feature)
    counts = {}
    for flow in np.unique(flows):
        for task in data.spec.labels:
            counts[(flow, task)] = int((_observed(data, task) & (flows == flow)).sum())
    largest = max(counts.values(), default=0)
    if largest == 0:
        return data
    factors = np.ones(len(data))
    for (flow, task), count in counts.items():
        if count == 0:
            continue
        factor = largest / count if max_factor is None else min(largest / count, max_factor)
        rows = _observed(data, task) & (flows == flow)
        factors[rows] = np.maximum(factors[rows], factor)
    whole = np.floor(factors)
    repeats = whole.astype(np.int64) + (np.random.default_rng(seed).random(len(data)) < factors - whole)
    return data.take(np.repeat(np.arange(len(data)), repeats))


def _flows(data: TabularData, flow_feature: str | None) -> np.ndarray:
    if flow_feature is None:
        return np.zeros(len(data), np.int64)
    if flow_feature not in data.features:
        raise ValueError(
            f"`flow_feature` {flow_feature!r} is not a column of {data.source or 'the data'} ({sorted(data.features)})."
        )
    return np.asarray(data.features[flow_feature]).astype(str)


def _observed(data: TabularData, task: str) -> np.ndarray:
    labels = np.asarray(data.labels[task], np.float64)
    mask = data.label_masks.get(task)
    observed = np.isfinite(labels)
    return observed if mask is None else observed & (np.asarray(mask) > 0)
