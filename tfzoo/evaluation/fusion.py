"""A retrieval model's score fused with a neighbourhood heuristic: what a friend-retrieval
export serves when its run chose a fusion weight.

The fused score of candidate v for user u is

    query(u) . candidate(v) + weight x log(1 + h(u, v))

with h a neighbourhood heuristic of `tfzoo.evaluation.heuristics` (a sum over the common
friends of u and v, zero for everyone else). A two-tower model compresses a user's
neighbourhood into one vector; the heuristic reads it exactly, so on graphs where friends
of friends dominate (Twitch ENGB) the two rank different friends well and the sum beats
both (docs/ssmtl.md, "Score fusion"). The weight is chosen on validation Recall@50 from
`FUSION_WEIGHTS` (0 included: fusion is kept only where it helps), then reported on test
with the same protocol and exclusions as the model alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tfzoo.evaluation.heuristics import NEIGHBOURHOOD_HEURISTICS, HeuristicScores
from tfzoo.evaluation.retrieval import DEFAULT_KS, query_users, ranked_candidates, recall_of_rankings

FUSION_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
SELECT_BY_K = 50  # the weight is chosen on validation Recall@50, the early-stopping metric


def check_fusion(heuristic: str | None) -> None:
    if heuristic is not None and heuristic not in NEIGHBOURHOOD_HEURISTICS:
        raise ValueError(
            f"`fusion` must be one of {NEIGHBOURHOOD_HEURISTICS} or 'none'. Received: fusion={heuristic!r}"
        )


class FusedScores:
    """Score rows [chunk, num_users]: model logits + weight x log(1 + heuristic).

    Args:
      queries, candidates: [num_users, d] the model's query and candidate vectors.
      heuristic: a neighbourhood `HeuristicScores` (over the graph the queries know).
      weight: the heuristic's weight; 0 scores the model alone.
    """

    def __init__(self, queries: np.ndarray, candidates: np.ndarray, heuristic: HeuristicScores, weight: float):
        if weight < 0:
            raise ValueError(f"`weight` must be >= 0. Received: weight={weight}")
        self.queries = np.asarray(queries, np.float64)
        self.candidates = np.asarray(candidates, np.float64)
        self.heuristic, self.weight = heuristic, float(weight)

    def __call__(self, users: np.ndarray) -> np.ndarray:
        scores = self.queries[users] @ self.candidates.T
        if self.weight:
            scores = scores + self.weight * np.log1p(self.heuristic(users))
        return scores


def fused_reports(
    queries: np.ndarray,
    candidates: np.ndarray,
    *,
    heuristic: str,
    train_edges: np.ndarray,
    validation: np.ndarray,
    test: np.ndarray,
    weights: Sequence[float] = FUSION_WEIGHTS,
    ks: Sequence[int] = DEFAULT_KS,
    slices: Mapping[str, np.ndarray] | None = None,
    per_user: bool = False,
    select_by_k: int = SELECT_BY_K,
) -> dict:
    """Chooses the fusion weight on `validation` and reports it on both held-out splits.

    Each split is scored with the other one excluded, as `recall_report` does; the weight
    with the best validation Recall@`select_by_k` (one of `ks`) is chosen. Returns
    {"heuristic", "weight": the chosen one, "validation_by_weight": {weight: validation
    Recall@`select_by_k`}, "validation": report, "test": report} (reports as
    `recall_report`'s).
    """
    check_fusion(heuristic)
    if select_by_k not in ks:
        raise ValueError(f"`select_by_k` must be one of `ks` {list(ks)}. Received: select_by_k={select_by_k}")
    metric = f"recall@{select_by_k}"
    if not weights or min(weights) < 0:
        raise ValueError(f"`weights` must be a non-empty list of weights >= 0. Received: weights={list(weights)}")
    num_users = len(queries)
    scores = HeuristicScores(heuristic, train_edges, num_users)

    def report(weight: float, targets: np.ndarray, other: np.ndarray, *, detail: bool) -> dict:
        users = query_users(targets, num_users)
        top = ranked_candidates(
            FusedScores(queries, candidates, scores, weight), num_users, users, [train_edges, other], max(ks)
        )
        return recall_of_rankings(
            top,
            users,
            targets,
            num_users=num_users,
            train_edges=train_edges,
            ks=ks,
            slices=slices,
            per_user=per_user and detail,
        )

    by_weight = {float(w): report(w, validation, test, detail=False) for w in weights}
    # Ties go to the smaller weight: fusion only where it measurably helps.
    chosen = max(sorted(by_weight), key=lambda w: (by_weight[w]["all"][metric], -w))
    return {
        "heuristic": heuristic,
        "weight": chosen,
        "validation_by_weight": {str(w): r["all"][metric] for w, r in by_weight.items()},
        "validation": report(chosen, validation, test, detail=True) if per_user else by_weight[chosen],
        "test": report(chosen, test, validation, detail=True),
    }
