"""Ids as a client names them: the keys a dataset's files give its users, items or actions."""

from __future__ import annotations

import numpy as np


def client_ids(keys: np.ndarray) -> np.ndarray:
    """`keys` (text) as int64 where every one is an integer written plainly (so that a
    client sends numbers), else as text (object array)."""
    keys = np.asarray(keys)
    try:
        integers = np.array([int(key) for key in keys], np.int64)
    except (ValueError, OverflowError):
        return keys.astype(str).astype(object)
    if not all(str(number) == str(key) for number, key in zip(integers, keys)):
        return keys.astype(str).astype(object)  # "007" and "7" are two ids: keep the text
    return integers
