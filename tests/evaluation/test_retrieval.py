import numpy as np
import pytest

from tfzoo.evaluation.retrieval import ranked_candidates, ranked_candidates_of_variants

EDGES = np.array([[0, 1], [0, 2], [1, 2], [1, 3], [2, 3], [3, 4], [4, 5], [6, 7]])
USERS = 8


def test_variants_are_ranked_as_one_at_a_time():
    rng = np.random.default_rng(0)
    tables = [rng.normal(size=(USERS, USERS)) for _ in range(3)]
    users = np.array([0, 3, 4, 6, 7])
    held_out = np.array([[0, 5], [3, 6]])
    together = ranked_candidates_of_variants(
        lambda batch: (table[batch] for table in tables), 3, USERS, users, [EDGES, held_out], 3, chunk=2
    )
    for table, ranked in zip(tables, together):
        alone = ranked_candidates(lambda batch, table=table: table[batch], USERS, users, [EDGES, held_out], 3)
        np.testing.assert_array_equal(ranked, alone)
    # Never the user, a training friend or another held-out friend.
    assert set(together[0][0]) <= {3, 4, 6, 7} and set(together[0][1]) <= {0, 5, 7}


def test_the_number_of_variants_is_checked():
    table = np.zeros((USERS, USERS))
    with pytest.raises(ValueError, match="gave 1 score arrays; expected 2"):
        ranked_candidates_of_variants(lambda batch: [table[batch]], 2, USERS, np.array([0]), [EDGES], 1)
    with pytest.raises(ValueError, match="more than the 1 score arrays"):
        ranked_candidates_of_variants(lambda batch: [table[batch]] * 2, 1, USERS, np.array([0]), [EDGES], 1)
