"""Deterministic train / validation / test splits."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfzoo.data.tabular import TabularData


def _check_fractions(fractions: Sequence[float]) -> None:
    if not fractions or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"`fractions` must be positive and sum to 1. Received: fractions={tuple(fractions)}")


def _cut(order: np.ndarray, fractions: Sequence[float]) -> list[np.ndarray]:
    bounds = np.round(np.cumsum(fractions)[:-1] * len(order)).astype(int)
    return np.split(order, bounds)


def random_split(
    data: TabularData, fractions: Sequence[float] = (0.8, 0.1, 0.1), *, seed: int = 0
) -> tuple[TabularData, ...]:
    """Splits rows at random into parts of the given sizes; the same seed, the same split."""
    _check_fractions(fractions)
    order = np.random.default_rng(seed).permutation(len(data))
    return tuple(data.take(np.sort(part)) for part in _cut(order, fractions))


def ordered_split(
    data: TabularData, key: np.ndarray, fractions: Sequence[float] = (0.8, 0.1, 0.1)
) -> tuple[TabularData, ...]:
    """Splits rows by ascending `key` (e.g. a timestamp): earlier rows train, later rows test.

    Ties keep their original order, so the split is deterministic.
    """
    _check_fractions(fractions)
    key = np.asarray(key)
    if len(key) != len(data):
        raise ValueError(f"`key` has {len(key)} rows; the data has {len(data)}.")
    order = np.argsort(key, kind="stable")
    return tuple(data.take(part) for part in _cut(order, fractions))


def user_fold_split(
    data: TabularData, users: np.ndarray, *, fold: int, folds: int = 5, seed: int = 0, validation_share: float = 0.125
) -> tuple[tuple[TabularData, ...], dict[str, int]]:
    """User-level K-fold cross-validation: every user's rows in one part.

    The distinct users are shuffled with `seed` and dealt into `folds` folds of (nearly)
    equal size; fold `fold` is the test part, so over folds 0 .. K-1 every user is tested
    exactly once. Of the other users a seeded `validation_share` is validation, the rest
    train. Returns ((train, validation, test), {part: number of users}).
    """
    if folds < 2:
        raise ValueError(f"`folds` must be >= 2. Received: folds={folds}")
    if not (isinstance(fold, (int, np.integer)) and 0 <= fold < folds):
        raise ValueError(f"`fold` must be an integer in [0, folds={folds}). Received: fold={fold!r}")
    if not 0 < validation_share < 1:
        raise ValueError(f"`validation_share` must be in (0, 1). Received: validation_share={validation_share}")
    users = np.asarray(users)
    if len(users) != len(data):
        raise ValueError(f"`users` has {len(users)} rows; the data has {len(data)}.")
    distinct = np.unique(users)
    if len(distinct) < folds:
        raise ValueError(f"{len(distinct)} users cannot make {folds} folds.")
    shuffled = np.random.default_rng(seed).permutation(distinct)
    test_users = shuffled[fold::folds]
    rest = np.setdiff1d(distinct, test_users)
    rest = np.random.default_rng([seed, fold]).permutation(rest)
    validation_users = rest[: max(1, int(round(validation_share * len(rest))))]
    train_users = rest[len(validation_users) :]
    parts = tuple(
        data.take(np.flatnonzero(np.isin(users, part))) for part in (train_users, validation_users, test_users)
    )
    return parts, {"train": len(train_users), "validation": len(validation_users), "test": len(test_users)}
