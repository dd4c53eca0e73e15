import math

import numpy as np
import pytest

from tfzoo.evaluation.fusion import FUSION_WEIGHTS, POPULARITY_WEIGHTS, FusedScores, fused_reports, with_popularity
from tfzoo.evaluation.heuristics import HeuristicScores
from tfzoo.evaluation.retrieval import recall_report

# The hand graph of test_heuristics.py:
# 0 - 1 - 3 - 4 - 5        degrees: 0:2  1:3  2:3  3:3  4:2  5:1  6:1  7:1
#  \ /   /
#   2 --'
#   6 - 7
EDGES = np.array([[0, 1], [0, 2], [1, 2], [1, 3], [2, 3], [3, 4], [4, 5], [6, 7]])
USERS = 8
# A one-dimensional model that prefers higher ids: logit(u, v) = v / 10.
QUERIES = np.ones((USERS, 1))
CANDIDATES = np.arange(USERS, dtype=np.float64)[:, np.newaxis] / 10


def test_fused_score_is_the_logit_plus_the_weighted_log_heuristic():
    heuristic = HeuristicScores("adamic_adar", EDGES, USERS)
    scores = FusedScores(QUERIES, CANDIDATES, heuristic, 2.0)(np.array([0, 5]))
    # 0 and 3 share friends 1 and 2 (degree 3 each); 5 and 3 share 4 (degree 2).
    assert scores[0, 3] == pytest.approx(0.3 + 2 * math.log1p(2 / math.log(3)))
    assert scores[1, 3] == pytest.approx(0.3 + 2 * math.log1p(1 / math.log(2)))
    assert scores[0, 7] == pytest.approx(0.7)  # no common friend: the model's logit alone
    np.testing.assert_allclose(
        FusedScores(QUERIES, CANDIDATES, heuristic, 0.0)(np.array([0])), QUERIES[[0]] @ CANDIDATES.T
    )


def test_weight_is_chosen_on_validation_and_reported_on_test():
    validation, test = np.array([[0, 3]]), np.array([[5, 6]])
    fused = fused_reports(
        QUERIES,
        CANDIDATES,
        heuristic="adamic_adar",
        train_edges=EDGES,
        validation=validation,
        test=test,
        popularity_weights=(0.0,),
        ks=(1,),
        per_user=True,
        select_by_k=1,
    )
    # Validation queries 0 and 3. 0's candidates (0, 1, 2 excluded) are 7 > 6 > 5 > 4 > 3 by
    # the model alone; from weight 0.5 on, 3 scores 0.3 + w x log(1 + 2 / log 3) > 0.7: found.
    # 3's candidates (1, 2, 4 excluded): 0 scores w x 1.04 (friends 1, 2) and 5 scores
    # 0.5 + w x 0.89 (friend 4, degree 2): 0 comes first only for w > 3.5. The smallest
    # weight with the best recall is chosen.
    by_weight = {row["weight"]: row["recall@1"] for row in fused["validation_by_weight"]}
    assert [by_weight[w] for w in (0.0, 0.5, 2.0, 4.0, 32.0)] == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert fused["weight"] == 4.0 and fused["popularity_weight"] == 0.0 and fused["heuristic"] == "adamic_adar"
    # Test, with 0 - 3 excluded: 5 (friend 4) now ranks 3 first (0.3 + 4 x log(1 + 1 / log 2)
    # = 3.9 > 0.7) and misses 6; 6 (friend 7, no common friends) ranks 5 first: a hit.
    assert fused["test"]["all"]["recall@1"] == pytest.approx(0.5)
    assert fused["test"]["per_user"]["users"] == [5, 6] and fused["test"]["per_user"]["hits@1"] == [0, 1]


def test_weight_zero_reports_the_model_alone():
    rng = np.random.default_rng(0)
    queries, candidates = rng.normal(size=(USERS, 3)), rng.normal(size=(USERS, 3))
    validation, test = np.array([[0, 3], [5, 6]]), np.array([[1, 4], [2, 5]])
    fused = fused_reports(
        queries,
        candidates,
        heuristic="resource_allocation",
        train_edges=EDGES,
        validation=validation,
        test=test,
        weights=(0.0,),
        popularity_weights=(0.0,),
        ks=(1, 2),
        select_by_k=2,
    )
    alone = recall_report(
        queries, test, train_edges=EDGES, exclude_edges=[validation], ks=(1, 2), candidate_embeddings=candidates
    )
    assert fused["weight"] == 0.0 and fused["popularity_weight"] == 0.0 and fused["test"] == alone


def test_popularity_adds_the_weighted_log_degree_of_the_candidate():
    heuristic = HeuristicScores("adamic_adar", EDGES, USERS)
    scores = FusedScores(QUERIES, CANDIDATES, heuristic, 2.0, 0.5)(np.array([0]))
    # 3 has degree 3 and shares friends 1 and 2 with 0; 7 has degree 1 and no common friend.
    assert scores[0, 3] == pytest.approx(0.3 + 2 * math.log1p(2 / math.log(3)) + 0.5 * math.log(4))
    assert scores[0, 7] == pytest.approx(0.7 + 0.5 * math.log(2))
    # As vectors: one more dimension, 1 for queries, the weighted log degree for candidates.
    queries, candidates = with_popularity(QUERIES, CANDIDATES, heuristic.degree, 0.5)
    np.testing.assert_allclose(
        queries @ candidates.T, QUERIES @ CANDIDATES.T + 0.5 * np.log1p(heuristic.degree)[np.newaxis, :]
    )
    with pytest.raises(ValueError, match="popularity_weight=-1"):
        with_popularity(QUERIES, CANDIDATES, heuristic.degree, -1)
    with pytest.raises(ValueError, match=r"shape \(8,\). Received: \(3,\)"):
        with_popularity(QUERIES, CANDIDATES, heuristic.degree[:3], 0.5)


def test_popularity_weight_is_chosen_on_validation():
    # Validation queries 0 and 3. The model alone ranks the highest id first (7: a miss for
    # both). 0's candidates 3-7 have degrees 3, 2, 1, 1, 1: with weight 4, 3 scores
    # 0.3 + 4 log 4 = 5.85 > 4 + 4 log 3 = 4.79 (4): a hit. 3's candidates 0, 5, 6, 7
    # (degrees 2, 1, 1, 1): 0 scores 4 log 3 = 4.39 > 0.7 + 4 log 2 = 3.47 (7): a hit.
    fused = fused_reports(
        QUERIES,
        CANDIDATES,
        heuristic="adamic_adar",
        train_edges=EDGES,
        validation=np.array([[0, 3]]),
        test=np.array([[5, 6]]),
        weights=(0.0,),
        popularity_weights=(0.0, 4.0, 8.0),
        ks=(1,),
        select_by_k=1,
    )
    by_weight = {row["popularity_weight"]: row["recall@1"] for row in fused["validation_by_weight"]}
    assert by_weight == {0.0: 0.0, 4.0: 1.0, 8.0: 1.0}
    assert fused["weight"] == 0.0 and fused["popularity_weight"] == 4.0  # ties: the smaller weight
    assert fused["validation"]["all"]["recall@1"] == 1.0


def _fused_on_the_hand_graph(**options):
    arguments = {"heuristic": "adamic_adar", "train_edges": EDGES, "validation": EDGES[:1], "test": EDGES[1:2]}
    return fused_reports(QUERIES, CANDIDATES, **{**arguments, **options})


@pytest.mark.parametrize("heuristic", ["popularity", "jaccard"])
def test_only_neighbourhood_heuristics_fuse(heuristic):
    with pytest.raises(ValueError, match=f"fusion='{heuristic}'"):
        _fused_on_the_hand_graph(heuristic=heuristic)


def test_options_are_validated():
    with pytest.raises(ValueError, match=r"weights=\[0.0, -1.0\]"):
        _fused_on_the_hand_graph(weights=(0.0, -1.0))
    with pytest.raises(ValueError, match=r"popularity_weights=\[\]"):
        _fused_on_the_hand_graph(popularity_weights=())
    with pytest.raises(ValueError, match="select_by_k=50"):
        _fused_on_the_hand_graph(ks=(1, 2))
    with pytest.raises(ValueError, match="weight=-1"):
        FusedScores(QUERIES, CANDIDATES, HeuristicScores("adamic_adar", EDGES, USERS), -1)
    assert 0.0 in FUSION_WEIGHTS and 0.0 in POPULARITY_WEIGHTS
