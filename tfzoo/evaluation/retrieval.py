"""Exact retrieval metrics over all users: recall@K overall, on the low-degree slice and on
named user slices (e.g. cold-start users).

Every ranking, a model's or a heuristic's (`tfzoo.evaluation.heuristics`), goes through
`ranked_candidates`, so both are scored by exactly the same protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from tfzoo.data.friend_graph import neighbours

DEFAULT_KS = (10, 50, 100)
LOW_DEGREE_QUANTILE = 0.25

ScoreRows = Callable[[np.ndarray], np.ndarray]
"""users [chunk] -> scores [chunk, num_users] of every candidate for each of them."""


def ranked_candidates(
    score_rows: ScoreRows,
    num_users: int,
    users: np.ndarray,
    exclude_edges: Sequence[np.ndarray],
    k: int,
    *,
    tie_break: np.ndarray | None = None,
    chunk: int = 1024,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """[len(users), k] ids of the k best-scoring candidates for each of `users`, never the
    user itself nor a user it shares an edge with in `exclude_edges`.

    With `tie_break` ([num_users]), equal scores are ordered by it (larger first), e.g. a
    heuristic's many zero scores by popularity; without, by a stable sort of the scores.
    """
    (result,) = ranked_candidates_of_variants(
        lambda batch: [score_rows(batch)],
        1,
        num_users,
        users,
        exclude_edges,
        k,
        tie_break=tie_break,
        chunk=chunk,
        progress=progress,
    )
    return result


def ranked_candidates_of_variants(
    score_variants: Callable[[np.ndarray], Iterable[np.ndarray]],
    num_variants: int,
    num_users: int,
    users: np.ndarray,
    exclude_edges: Sequence[np.ndarray],
    k: int,
    *,
    tie_break: np.ndarray | None = None,
    chunk: int = 1024,
    progress: Callable[[int], None] | None = None,
) -> list[np.ndarray]:
    """`ranked_candidates` of `num_variants` scorings at once: `score_variants`(users
    [chunk]) yields one [chunk, num_users] score array per variant (e.g. one per fusion
    weight, sharing the matrix products; a generator keeps one in memory at a time), ranked
    with the same exclusions. Returns one [len(users), k] id array per variant."""
    exclusions = [neighbours(edges, num_users) for edges in exclude_edges]
    k = min(k, num_users)
    users = np.asarray(users, np.int64)
    results = [np.empty((len(users), k), np.int64) for _ in range(num_variants)]
    for start in range(0, len(users), chunk):
        batch = users[start : start + chunk]
        # The excluded cells of this chunk: the users themselves and their excluded friends.
        rows, columns = [np.arange(len(batch))], [batch]
        for splits, ids in exclusions:
            lengths = splits[batch + 1] - splits[batch]
            if lengths.sum():
                rows.append(np.repeat(np.arange(len(batch)), lengths))
                columns.append(np.concatenate([ids[splits[u] : splits[u + 1]] for u in batch]))
        rows, columns = np.concatenate(rows), np.concatenate(columns)
        count = 0
        for variant in score_variants(batch):
            if count == num_variants:
                raise ValueError(f"`score_variants` gave more than the {num_variants} score arrays expected.")
            scores = np.array(variant, dtype=np.float64)  # [chunk, users], a copy
            scores[rows, columns] = -np.inf
            results[count][start : start + len(batch)] = _top_k(scores, k, tie_break)
            count += 1
        if count != num_variants:
            raise ValueError(f"`score_variants` gave {count} score arrays; expected {num_variants}.")
        if progress is not None:
            progress(len(batch))
    return results


def _top_k(scores: np.ndarray, k: int, tie_break: np.ndarray | None) -> np.ndarray:
    """[chunk, k] column ids of each row's k highest `scores`, best first."""
    if tie_break is None:
        best = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # [chunk, k] unordered
        order = np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1, kind="stable")
        return np.take_along_axis(best, order, axis=1)
    # Last key first: by score, then by tie_break (both descending).
    secondary = np.broadcast_to(-np.asarray(tie_break, np.float64), scores.shape)
    return np.lexsort((secondary, -scores), axis=1)[:, :k]


def top_k_excluding(
    embeddings: np.ndarray,
    users: np.ndarray,
    exclude_edges: Sequence[np.ndarray],
    k: int,
    *,
    candidate_embeddings: np.ndarray | None = None,
    chunk: int = 1024,
) -> np.ndarray:
    """[len(users), k] ids of the k best-scoring users (dot product of the users' query
    `embeddings` with every user's `candidate_embeddings`, default: the same vectors) for
    each of `users`, never the user itself nor a user it shares an edge with in `exclude_edges`."""
    queries = np.asarray(embeddings, np.float32)
    candidates = queries if candidate_embeddings is None else np.asarray(candidate_embeddings, np.float32)
    if candidates.shape != queries.shape:
        raise ValueError(
            "query and candidate embeddings must have the same shape [num_users, d]. Received: "
            f"{queries.shape} and {candidates.shape}"
        )
    return ranked_candidates(
        lambda batch: queries[batch] @ candidates.T, len(queries), users, exclude_edges, k, chunk=chunk
    )


def recall_of_rankings(
    top: np.ndarray,
    users: np.ndarray,
    targets: np.ndarray,
    *,
    num_users: int,
    train_edges: np.ndarray,
    ks: Sequence[int] = DEFAULT_KS,
    slices: Mapping[str, np.ndarray] | None = None,
    per_user: bool = False,
) -> dict[str, dict[str, float]]:
    """Recall@K report of rankings `top` [len(users), >= max(ks)] of the query `users`
    (see `recall_report`)."""
    target_splits, target_ids = neighbours(targets, num_users)
    train_degree = np.bincount(np.asarray(train_edges, np.int64).ravel(), minlength=num_users)
    found = np.zeros((len(users), len(ks)), np.int64)  # held-out friends in the top K
    for row, user in enumerate(users):
        friends = target_ids[target_splits[user] : target_splits[user + 1]]
        in_top = np.isin(top[row], friends)
        found[row] = [in_top[:k].sum() for k in ks]
    num_targets = np.diff(target_splits)[users]  # [users]
    hits = found / num_targets[:, np.newaxis]  # recall@K per user
    threshold = float(np.quantile(train_degree[users], LOW_DEGREE_QUANTILE)) if len(users) else 0.0
    low = train_degree[users] <= threshold

    def summary(mask):
        values = {f"recall@{k}": float(hits[mask, i].mean()) if mask.any() else float("nan") for i, k in enumerate(ks)}
        values["users"] = int(mask.sum())
        return values

    report = {
        "all": summary(np.ones(len(users), bool)),
        "low_degree": {**summary(low), "max_train_degree": threshold},
    }
    for name, members in (slices or {}).items():
        report[name] = summary(np.isin(users, members))
    if per_user:
        report["per_user"] = {
            "users": users.tolist(),
            "targets": num_targets.tolist(),
            **{f"hits@{k}": found[:, i].tolist() for i, k in enumerate(ks)},
        }
    return report


def query_users(targets: np.ndarray, num_users: int) -> np.ndarray:
    """The users with at least one friendship in `targets`: the queries of a recall report."""
    return np.flatnonzero(np.bincount(np.asarray(targets, np.int64).ravel(), minlength=num_users) > 0)


def recall_report(
    embeddings: np.ndarray,
    targets: np.ndarray,
    *,
    train_edges: np.ndarray,
    exclude_edges: Sequence[np.ndarray] = (),
    ks: Sequence[int] = DEFAULT_KS,
    candidate_embeddings: np.ndarray | None = None,
    slices: Mapping[str, np.ndarray] | None = None,
    per_user: bool = False,
) -> dict[str, dict[str, float]]:
    """Recall@K of retrieving each user's held-out friends among all users.

    Every user with at least one friendship in `targets` ([m, 2], undirected) is a query.
    Candidates are all users except the query itself, its training friends
    (`train_edges`) and its friends in `exclude_edges` (e.g. the other held-out split:
    known friends, neither hits nor misses), ranked by the dot product of the query's
    `embeddings` row with their `candidate_embeddings` rows (default: `embeddings`).
    Recall@K of a user is the share of its target friends among its top K; the report
    averages it over users:

    - `all`: every query user;
    - `low_degree`: query users whose training degree is in the bottom quartile of the
      query users' training degrees (the cold-start slice); `max_train_degree` says
      where the quartile ends;
    - one entry per named `slices` (user ids), e.g. `"cold_start"`;
    - with `per_user`, `per_user`: the query users, their numbers of target friends and
      of those found in the top K (`hits@K`), for paired comparisons (bootstrap intervals).
    """
    num_users = len(embeddings)
    users = query_users(targets, num_users)
    top = top_k_excluding(
        embeddings, users, [train_edges, *exclude_edges], max(ks), candidate_embeddings=candidate_embeddings
    )
    return recall_of_rankings(
        top, users, targets, num_users=num_users, train_edges=train_edges, ks=ks, slices=slices, per_user=per_user
    )
