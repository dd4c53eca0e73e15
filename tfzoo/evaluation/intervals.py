"""Paired bootstrap intervals for differences between two systems scored on the same units
(users, examples), and the smallest difference a design can detect."""

from __future__ import annotations

import numpy as np


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, *, samples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """Mean of `a - b` over paired units and its percentile bootstrap interval.

    `a`, `b` are [units] or [runs, units] (e.g. seeds x users, resampled over the units
    with the runs averaged): the units are resampled with replacement `samples` times.
    Returns {"difference", "low", "high"}; the difference is supported at `confidence`
    when the interval excludes 0.
    """
    a, b = np.atleast_2d(np.asarray(a, np.float64)), np.atleast_2d(np.asarray(b, np.float64))
    if a.shape[1] != b.shape[1] or a.shape[1] == 0:
        raise ValueError(f"`a` and `b` must score the same, non-empty set of units. Received: {a.shape} and {b.shape}")
    if not 0 < confidence < 1:
        raise ValueError(f"`confidence` must be in (0, 1). Received: confidence={confidence}")
    differences = a.mean(axis=0) - b.mean(axis=0)  # [units]
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    for start in range(0, samples, 256):
        draws = rng.integers(0, len(differences), size=(min(256, samples - start), len(differences)))
        means[start : start + len(draws)] = differences[draws].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return {"difference": float(differences.mean()), "low": float(low), "high": float(high)}


def minimum_detectable_effect(a: np.ndarray, b: np.ndarray, *, z_alpha: float = 1.96, z_power: float = 0.84) -> float:
    """The smallest true mean difference a paired design like (`a`, `b`) detects with 80%
    power at the 5% level (two-sided): (z_alpha + z_power) x the standard error of the
    mean paired difference."""
    a, b = np.atleast_2d(np.asarray(a, np.float64)), np.atleast_2d(np.asarray(b, np.float64))
    differences = a.mean(axis=0) - b.mean(axis=0)
    return float((z_alpha + z_power) * differences.std(ddof=1) / np.sqrt(len(differences)))
