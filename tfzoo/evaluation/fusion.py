"""A retrieval model's score fused with a neighbourhood heuristic and popularity: what a
friend-retrieval export serves when its run chose fusion weights.

The fused score of candidate v for user u is

    query(u) . candidate(v) + weight x log(1 + h(u, v)) + popularity_weight x log(1 + d(v))

with h a neighbourhood heuristic of `tfzoo.evaluation.heuristics` (a sum over the common
friends of u and v, zero for everyone else) and d(v) the candidate's degree. A two-tower
model compresses a user's neighbourhood into one vector; the heuristic reads it exactly,
so on graphs where friends of friends dominate (Twitch ENGB) the two rank different
friends well and the sum beats both (docs/ssmtl.md, "What is served"). Users with one or
two friends reach few candidates through them; for them the most befriended users are a
strong guess, which the popularity term adds. It depends on the candidate alone, so the
export folds it into the vectors (`with_popularity`: one more dimension, 1 on the query
side, the weighted log degree on the candidate side) and the index serves it exactly.

Both weights are chosen together on validation Recall@50 from `FUSION_WEIGHTS` x
`POPULARITY_WEIGHTS` (0 included in both: each term is kept only where it helps), then
reported on test with the same protocol and exclusions as the model alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from tfzoo.evaluation.heuristics import NEIGHBOURHOOD_HEURISTICS, HeuristicScores
from tfzoo.evaluation.retrieval import DEFAULT_KS, query_users, ranked_candidates_of_variants, recall_of_rankings

FUSION_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
# The model's logits spread over a few units (standard deviation ~3 on Twitch) and log(1 + d)
# over 0-7: beyond 4 popularity drowns the model.
POPULARITY_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
SELECT_BY_K = 50  # the weight is chosen on validation Recall@50, the early-stopping metric


def check_fusion(heuristic: str | None) -> None:
    if heuristic is not None and heuristic not in NEIGHBOURHOOD_HEURISTICS:
        raise ValueError(
            f"`fusion` must be one of {NEIGHBOURHOOD_HEURISTICS} or 'none'. Received: fusion={heuristic!r}"
        )


def fusion_label(model: str, fused: Mapping) -> str:
    """How tables name a fused scorer, from `fused_reports`'s choice: e.g.
    "ssmtl + 8 x log(1 + adamic_adar) + 1 x log(1 + degree)" (zero terms left out)."""
    terms = [model]
    if fused["weight"]:
        terms.append(f"{fused['weight']:g} x log(1 + {fused['heuristic']})")
    if fused.get("popularity_weight"):
        terms.append(f"{fused['popularity_weight']:g} x log(1 + degree)")
    return " + ".join(terms)


def with_popularity(
    queries: np.ndarray, candidates: np.ndarray, degree: np.ndarray, popularity_weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """(queries [users, d + 1], candidates [users, d + 1]) whose dot products are the model's
    plus `popularity_weight` x log(1 + `degree`) of the candidate: queries get a 1, candidates
    their weighted log degree. What the export indexes and what the reports score."""
    if popularity_weight < 0:
        raise ValueError(f"`popularity_weight` must be >= 0. Received: popularity_weight={popularity_weight}")
    queries, candidates = np.asarray(queries), np.asarray(candidates)
    degree = np.asarray(degree, np.float64)
    if degree.shape != (len(candidates),):
        raise ValueError(
            f"`degree` must hold one degree per candidate, shape ({len(candidates)},). Received: {degree.shape}"
        )
    ones = np.ones((len(queries), 1), queries.dtype)
    column = (popularity_weight * np.log1p(degree)).astype(candidates.dtype)[:, np.newaxis]
    return np.concatenate([queries, ones], axis=1), np.concatenate([candidates, column], axis=1)


class FusedScores:
    """Score rows [chunk, num_users]: model logits + weight x log(1 + heuristic)
    + popularity_weight x log(1 + degree), the degree being the heuristic's graph's.

    Args:
      queries, candidates: [num_users, d] the model's query and candidate vectors.
      heuristic: a neighbourhood `HeuristicScores` (over the graph the queries know).
      weight: the heuristic's weight; 0 leaves it out.
      popularity_weight: the candidate's log degree's weight; 0 leaves it out.
    """

    def __init__(
        self,
        queries: np.ndarray,
        candidates: np.ndarray,
        heuristic: HeuristicScores,
        weight: float,
        popularity_weight: float = 0.0,
    ):
        if weight < 0:
            raise ValueError(f"`weight` must be >= 0. Received: weight={weight}")
        self.queries, self.candidates = with_popularity(
            np.asarray(queries, np.float64), np.asarray(candidates, np.float64), heuristic.degree, popularity_weight
        )
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
    popularity_weights: Sequence[float] = POPULARITY_WEIGHTS,
    ks: Sequence[int] = DEFAULT_KS,
    slices: Mapping[str, np.ndarray] | None = None,
    per_user: bool = False,
    select_by_k: int = SELECT_BY_K,
) -> dict:
    """Chooses the fusion weights on `validation` and reports them on both held-out splits.

    Each split is scored with the other one excluded, as `recall_report` does; the pair
    (heuristic weight, popularity weight) from `weights` x `popularity_weights` with the
    best validation Recall@`select_by_k` (one of `ks`) is chosen, ties going to the
    smaller weights. Returns {"heuristic", "weight", "popularity_weight": the chosen ones,
    "validation_by_weight": [{"weight", "popularity_weight", "recall@K"}, ...],
    "validation": report, "test": report} (reports as `recall_report`'s).
    """
    check_fusion(heuristic)
    if select_by_k not in ks:
        raise ValueError(f"`select_by_k` must be one of `ks` {list(ks)}. Received: select_by_k={select_by_k}")
    metric = f"recall@{select_by_k}"
    for name, values in (("weights", weights), ("popularity_weights", popularity_weights)):
        if not values or min(values) < 0:
            raise ValueError(f"`{name}` must be a non-empty list of weights >= 0. Received: {name}={list(values)}")
    num_users = len(queries)
    scores = HeuristicScores(heuristic, train_edges, num_users)
    log_degree = np.log1p(scores.degree)  # [users]
    pairs = [(float(w), float(p)) for w in sorted(set(weights)) for p in sorted(set(popularity_weights))]
    logits = np.asarray(queries, np.float64), np.asarray(candidates, np.float64)

    def variants(batch: np.ndarray, chosen: list[tuple[float, float]]) -> Iterator[np.ndarray]:
        # One matrix product and one heuristic row per chunk, shared by every pair.
        model = logits[0][batch] @ logits[1].T  # [chunk, users]
        log_heuristic = np.log1p(scores(batch)) if any(w for w, _ in chosen) else 0.0
        return (model + w * log_heuristic + p * log_degree for w, p in chosen)

    def reports(chosen: list[tuple[float, float]], targets: np.ndarray, other: np.ndarray, *, detail: bool) -> list:
        users = query_users(targets, num_users)
        tops = ranked_candidates_of_variants(
            lambda batch: variants(batch, chosen), len(chosen), num_users, users, [train_edges, other], max(ks)
        )
        return [
            recall_of_rankings(
                top,
                users,
                targets,
                num_users=num_users,
                train_edges=train_edges,
                ks=ks,
                slices=slices,
                per_user=per_user and detail,
            )
            for top in tops
        ]

    by_pair = dict(zip(pairs, reports(pairs, validation, test, detail=False)))
    # Ties go to the smaller weights: each term only where it measurably helps.
    chosen = max(pairs, key=lambda pair: (by_pair[pair]["all"][metric], -pair[0] - pair[1], -pair[1]))
    (validation_report,) = reports([chosen], validation, test, detail=True) if per_user else (by_pair[chosen],)
    (test_report,) = reports([chosen], test, validation, detail=True)
    return {
        "heuristic": heuristic,
        "weight": chosen[0],
        "popularity_weight": chosen[1],
        "validation_by_weight": [
            {"weight": w, "popularity_weight": p, metric: report["all"][metric]} for (w, p), report in by_pair.items()
        ],
        "validation": validation_report,
        "test": test_report,
    }
