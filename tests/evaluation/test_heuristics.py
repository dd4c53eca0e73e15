import math

import numpy as np
import pytest

from tfzoo.evaluation.heuristics import HEURISTICS, HeuristicScores, best_heuristic, heuristic_reports
from tfzoo.evaluation.retrieval import ranked_candidates

# 0 - 1 - 3 - 4 - 5        degrees: 0:2  1:3  2:3  3:3  4:2  5:1  6:1
#  \ /   /                 (6 - 7 is a separate pair; 7: 1)
#   2 --'
#   6 - 7
EDGES = np.array([[0, 1], [0, 2], [1, 2], [1, 3], [2, 3], [3, 4], [4, 5], [6, 7]])
USERS = 8


def test_scores_match_the_hand_computed_ones():
    cn = HeuristicScores("common_neighbours", EDGES, USERS)([0, 4])
    # 0 and 3 share 1 and 2; 0 and 1 share 2; 4 and 1, 4 and 2 share 3.
    assert cn[0].tolist() == [2, 1, 1, 2, 0, 0, 0, 0]
    assert cn[1].tolist() == [0, 1, 1, 0, 2, 0, 0, 0]
    aa = HeuristicScores("adamic_adar", EDGES, USERS)([0])[0]
    assert aa[3] == pytest.approx(2 / math.log(3))  # common friends 1 and 2, degree 3 each
    assert aa[1] == pytest.approx(1 / math.log(3))
    ra = HeuristicScores("resource_allocation", EDGES, USERS)([0, 5])
    assert ra[0, 3] == pytest.approx(2 / 3)
    assert ra[1, 3] == pytest.approx(1 / 2)  # 5 and 3 share 4 (degree 2)
    assert HeuristicScores("popularity", EDGES, USERS)([0])[0].tolist() == [2, 3, 3, 3, 2, 1, 1, 1]


def test_rankings_exclude_known_friends_and_break_ties_by_popularity():
    scores = HeuristicScores("resource_allocation", EDGES, USERS)
    top = ranked_candidates(scores, USERS, np.array([0]), [EDGES], 5, tie_break=scores.degree)
    # 3 is the only candidate with common friends; 4 (degree 2) leads the zero-score rest,
    # then 5, 6, 7 (degree 1) in id order. 0 itself and its friends 1, 2 never appear.
    assert top[0].tolist() == [3, 4, 5, 6, 7]


def test_reports_score_held_out_friendships_like_the_model_protocol():
    targets = np.array([[0, 3], [5, 6]])  # held-out friendships
    reports = heuristic_reports(targets, train_edges=EDGES, num_users=USERS, ks=(1, 2))
    assert sorted(reports) == sorted(HEURISTICS)
    ra = reports["resource_allocation"]["all"]
    # Query users 0, 3, 5, 6. 0 finds 3 first; 3's candidates (friends 1, 2, 4 excluded): 0
    # (RA 2/3) first, then 5 (RA 1/2). 5: 3 (RA 1/2) first, then 1 and 2 (degree 3), so 6 is
    # missed at K = 2; 6: no common friends, candidates by degree 1, 2, 3 ... never 5 in 2.
    assert ra["users"] == 4
    assert ra["recall@1"] == pytest.approx((1 + 1 + 0 + 0) / 4)
    assert ra["recall@2"] == pytest.approx((1 + 1 + 0 + 0) / 4)
    popularity = reports["popularity"]["all"]
    # 0: candidates 3 (deg 3) first -> hit. 3: 0 (deg 2) ties with none at degree 2 after
    # friends 1, 2, 4 are excluded -> 0 first, hit. 5: 1, 2 -> miss. 6: 1, 2 -> miss.
    assert popularity["recall@1"] == pytest.approx(0.5)
    assert best_heuristic(reports, metric="recall@2") in HEURISTICS


def test_unknown_heuristic_is_rejected():
    with pytest.raises(ValueError, match="name='jaccard'"):
        HeuristicScores("jaccard", EDGES, USERS)
