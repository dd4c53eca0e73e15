"""Exact retrieval metrics over all users: recall@K overall and on the low-degree slice."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from tfzoo.data.friend_graph import neighbours

DEFAULT_KS = (10, 50, 100)
LOW_DEGREE_QUANTILE = 0.25


def top_k_excluding(
    embeddings: np.ndarray,
    users: np.ndarray,
    exclude_edges: Sequence[np.ndarray],
    k: int,
    *,
    chunk: int = 1024,
) -> np.ndarray:
    """[len(users), k] ids of the k best-scoring users (dot product) for each of `users`,
    never the user itself nor a user it shares an edge with in `exclude_edges`."""
    embeddings = np.asarray(embeddings, np.float32)
    num_users = len(embeddings)
    exclusions = [neighbours(edges, num_users) for edges in exclude_edges]
    k = min(k, num_users)
    result = np.empty((len(users), k), np.int64)
    for start in range(0, len(users), chunk):
        batch = np.asarray(users[start:start + chunk])
        scores = embeddings[batch] @ embeddings.T  # [chunk, users]
        scores[np.arange(len(batch)), batch] = -np.inf
        for splits, ids in exclusions:
            lengths = splits[batch + 1] - splits[batch]
            rows = np.repeat(np.arange(len(batch)), lengths)
            columns = np.concatenate([ids[splits[u]:splits[u + 1]] for u in batch]) if lengths.sum() else rows
            scores[rows, columns] = -np.inf
        best = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # [chunk, k] unordered
        order = np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1, kind="stable")
        result[start:start + len(batch)] = np.take_along_axis(best, order, axis=1)
    return result


def recall_report(
    embeddings: np.ndarray,
    targets: np.ndarray,
    *,
    train_edges: np.ndarray,
    exclude_edges: Sequence[np.ndarray] = (),
    ks: Sequence[int] = DEFAULT_KS,
) -> dict[str, dict[str, float]]:
    """Recall@K of retrieving each user's held-out friends among all users.

    Every user with at least one friendship in `targets` ([m, 2], undirected) is a query.
    Candidates are all users except the query itself, its training friends
    (`train_edges`) and its friends in `exclude_edges` (e.g. the other held-out split:
    known friends, neither hits nor misses). Recall@K of a user is the share of its
    target friends among its top K; the report averages it over users:

    - `all`: every query user;
    - `low_degree`: query users whose training degree is in the bottom quartile of the
      query users' training degrees (the cold-start slice); `max_train_degree` says
      where the quartile ends.
    """
    embeddings = np.asarray(embeddings, np.float32)
    num_users = len(embeddings)
    target_splits, target_ids = neighbours(targets, num_users)
    num_targets = np.diff(target_splits)
    users = np.flatnonzero(num_targets > 0)
    train_degree = np.bincount(np.asarray(train_edges, np.int64).ravel(), minlength=num_users)
    top = top_k_excluding(embeddings, users, [train_edges, *exclude_edges], max(ks))  # [users, max_k]
    hits = np.zeros((len(users), len(ks)))
    for row, user in enumerate(users):
        friends = target_ids[target_splits[user]:target_splits[user + 1]]
        found = np.isin(top[row], friends)
        hits[row] = [found[:k].sum() / len(friends) for k in ks]
    threshold = float(np.quantile(train_degree[users], LOW_DEGREE_QUANTILE)) if len(users) else 0.0
    low = train_degree[users] <= threshold

    def summary(mask):
        values = {f"recall@{k}": float(hits[mask, i].mean()) if mask.any() else float("nan") for i, k in enumerate(ks)}
        values["users"] = int(mask.sum())
        return values

    return {
        "all": summary(np.ones(len(users), bool)),
        "low_degree": {**summary(low), "max_train_degree": threshold},
    }
