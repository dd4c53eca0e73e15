"""The link-prediction heuristics a friend-retrieval model must beat, scored with exactly
the model's protocol (`tfzoo.evaluation.retrieval`).

All are computed from the training graph's adjacency A (sparse, `scipy.sparse`) and its
degrees d:

| name | score of candidate v for user u |
| --- | --- |
| `popularity` | d(v): rank everyone by their number of training friends |
| `common_neighbours` | \\|N(u) ∩ N(v)\\| = (A A)[u, v] |
| `adamic_adar` | sum over common friends w of 1 / log d(w) |
| `resource_allocation` | sum over common friends w of 1 / d(w) = (A D^-1 A)[u, v] |

Equal scores (the many candidates with no common friend) are ordered by popularity, so
that each neighbourhood heuristic falls back to popularity instead of to an arbitrary
order. As for a model, a user's own row, its training friends and its other held-out
friends are excluded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import scipy.sparse as sparse

from tfzoo.evaluation.retrieval import DEFAULT_KS, query_users, ranked_candidates, recall_of_rankings

HEURISTICS = ("popularity", "common_neighbours", "adamic_adar", "resource_allocation")
NEIGHBOURHOOD_HEURISTICS = HEURISTICS[1:]  # scores summed over common friends


def adjacency(edges: np.ndarray, num_users: int) -> sparse.csr_matrix:
    """[num_users, num_users] symmetric 0/1 adjacency of undirected `edges` ([E, 2])."""
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    columns = np.concatenate([edges[:, 1], edges[:, 0]])
    matrix = sparse.csr_matrix((np.ones(len(rows)), (rows, columns)), shape=(num_users, num_users))
    matrix.data[:] = 1.0  # a friendship listed twice still counts once
    return matrix


def common_friend_weights(name: str, degree: np.ndarray) -> np.ndarray:
    """[users] what each user adds, as a common friend, to a neighbourhood heuristic's
    score (`common_neighbours`, `adamic_adar` or `resource_allocation`), from the users'
    degrees: the score of (u, v) is the sum of these over the common friends of u and v."""
    degree = np.asarray(degree, np.float64)
    if name == "common_neighbours":
        return np.ones_like(degree)
    if name == "adamic_adar":
        # A common friend with one friend cannot be common; log(1) = 0 is never used.
        return 1.0 / np.log(np.maximum(degree, 2.0))
    if name == "resource_allocation":
        return 1.0 / np.maximum(degree, 1.0)
    raise ValueError(f"`name` must be one of {NEIGHBOURHOOD_HEURISTICS}. Received: name={name!r}")


class HeuristicScores:
    """Score rows of one heuristic over a training graph.

    Args:
      name: one of `HEURISTICS`.
      train_edges: [E, 2] the training friendships.
      num_users: users are `0 .. num_users - 1`.

    Calling it with users [chunk] returns their scores against every user [chunk, num_users].
    """

    def __init__(self, name: str, train_edges: np.ndarray, num_users: int):
        if name not in HEURISTICS:
            raise ValueError(f"`name` must be one of {HEURISTICS}. Received: name={name!r}")
        self.name = name
        self.num_users = int(num_users)
        self.adjacency = adjacency(train_edges, num_users)
        self.degree = np.asarray(self.adjacency.sum(axis=1)).ravel()  # [users]
        self._right = (
            None
            if name == "popularity"
            else (sparse.diags(common_friend_weights(name, self.degree)) @ self.adjacency).tocsc()
        )

    def __call__(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, np.int64)
        if self._right is None:
            return np.broadcast_to(self.degree, (len(users), self.num_users)).copy()
        return (self.adjacency[users] @ self._right).toarray()  # [chunk, users]


def heuristic_reports(
    targets: np.ndarray,
    *,
    train_edges: np.ndarray,
    num_users: int,
    exclude_edges: Sequence[np.ndarray] = (),
    ks: Sequence[int] = DEFAULT_KS,
    heuristics: Sequence[str] = HEURISTICS,
    slices: Mapping[str, np.ndarray] | None = None,
    per_user: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, dict]:
    """{heuristic: recall report} for held-out friendships `targets`, with the same
    queries, exclusions, slices and report shape as `tfzoo.evaluation.recall_report`."""
    users = query_users(targets, num_users)
    reports = {}
    for name in heuristics:
        scores = HeuristicScores(name, train_edges, num_users)
        top = ranked_candidates(
            scores,
            num_users,
            users,
            [train_edges, *exclude_edges],
            max(ks),
            tie_break=scores.degree,
            progress=None if progress is None else (lambda done, name=name: progress(name, done)),
        )
        reports[name] = recall_of_rankings(
            top, users, targets, num_users=num_users, train_edges=train_edges, ks=ks, slices=slices, per_user=per_user
        )
    return reports


def best_heuristic(reports: Mapping[str, Mapping], *, slice_name: str = "all", metric: str = "recall@100") -> str:
    """The name of the heuristic with the highest `metric` on `slice_name`."""
    return max(reports, key=lambda name: reports[name][slice_name][metric])
