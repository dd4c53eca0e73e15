import numpy as np
import pytest
import tensorflow as tf

from tfzoo.export.ann import LARGE_INDEX, ScannSettings, build_index


def test_large_indexes_scale_the_tuned_tree_with_sqrt_n():
    assert ScannSettings.for_size(1_000_000) == LARGE_INDEX
    # 4x the candidates: 2x the leaves, the same share of them searched.
    quadrupled = ScannSettings.for_size(4_000_000)
    assert quadrupled.num_leaves == 2 * LARGE_INDEX.num_leaves
    assert quadrupled.num_leaves_to_search == 2 * LARGE_INDEX.num_leaves_to_search
    assert quadrupled.num_reordering_candidates == LARGE_INDEX.num_reordering_candidates
    small = ScannSettings.for_size(10_000)
    assert (small.num_leaves, small.num_leaves_to_search) == (100, 50)


def test_settings_are_validated():
    with pytest.raises(ValueError, match="num_leaves_to_search=11"):
        ScannSettings(num_leaves=10, num_leaves_to_search=11)
    with pytest.raises(ValueError, match="dimensions_per_block=0"):
        ScannSettings(num_leaves=10, num_leaves_to_search=5, dimensions_per_block=0)
    with pytest.raises(ValueError, match="num_reordering_candidates=0"):
        ScannSettings(num_leaves=10, num_leaves_to_search=5, num_reordering_candidates=0)
    with pytest.raises(ValueError, match="kind='annoy'"):
        build_index("annoy", np.zeros((4, 2), np.float32))


def test_scann_index_finds_the_exact_top_k_and_returns_more_than_its_reordering_budget():
    rng = np.random.default_rng(0)
    # 20 well-separated clusters: a tree that searches half its leaves finds the exact answer.
    centres = rng.standard_normal((20, 16)).astype(np.float32) * 5
    candidates = (centres[rng.integers(0, 20, 2000)] + 0.1 * rng.standard_normal((2000, 16))).astype(np.float32)
    queries = candidates[:50] + 0.01
    ids = tf.constant(np.arange(2000, dtype=np.int64) + 10_000)
    exact = np.argsort(-(queries @ candidates.T), axis=1)[:, :10] + 10_000
    index = build_index("scann", candidates, ids, k=10,
                        settings=ScannSettings(num_leaves=20, num_leaves_to_search=10, num_reordering_candidates=100))
    scores, found = index(tf.constant(queries))
    recall = np.mean([len(np.intersect1d(f, e)) / 10 for f, e in zip(found.numpy(), exact)])
    assert recall >= 0.95
    np.testing.assert_allclose(scores.numpy()[:, 0], np.max(queries @ candidates.T, axis=1), rtol=1e-5)
    # k above num_reordering_candidates (100) (top K + known friends at serving): still k answers.
    _, many = index(tf.constant(queries), k=150)
    assert many.shape == (50, 150) and len(np.unique(many.numpy()[0])) == 150
