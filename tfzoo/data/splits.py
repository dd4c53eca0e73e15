"""Deterministic train / validation / test splits."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from tfzoo.data.tabular import TabularData


def _check_fractions(fractions: Sequence[float]) -> None:
    if not fractions or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"`fractions` must be positive and sum to 1. Received: fractions={tuple(fractions)}")


def _cut(order: np.ndarray, fractions: Sequence[float]) -> list[np.ndarray]:
    bounds = np.round(np.cumsum(fractions)[:-1] * len(order)).astype(int)
    return np.split(order, bounds)


def random_split(data: TabularData, fractions: Sequence[float] = (0.8, 0.1, 0.1), *, seed: int = 0) -> tuple[TabularData, ...]:
    """Splits rows at random into parts of the given sizes; the same seed, the same split."""
    _check_fractions(fractions)
    order = np.random.default_rng(seed).permutation(len(data))
    return tuple(data.take(np.sort(part)) for part in _cut(order, fractions))


def ordered_split(data: TabularData, key: np.ndarray, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> tuple[TabularData, ...]:
    """Splits rows by ascending `key` (e.g. a timestamp): earlier rows train, later rows test.

    Ties keep their original order, so the split is deterministic.
    """
    _check_fractions(fractions)
    key = np.asarray(key)
    if len(key) != len(data):
        raise ValueError(f"`key` has {len(key)} rows; the data has {len(data)}.")
    order = np.argsort(key, kind="stable")
    return tuple(data.take(part) for part in _cut(order, fractions))
