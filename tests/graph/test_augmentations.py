import numpy as np
import pytest
import tensorflow as tf
import tensorflow_gnn as tfgnn

from tests.harness import check_layer
from tfzoo.graph import FEATURES, FRIENDS, NODE_ID, USERS, EdgeDrop, FeatureDrop, QueryNodeMasking, root_indices


@pytest.fixture(scope="module")
def subgraphs(small_sampler):
    return small_sampler(tf.constant([0, 5, 17, 42], tf.int64))


def _edge_pairs(graph):
    ids = graph.node_sets[USERS][NODE_ID].numpy()
    adjacency = graph.edge_sets[FRIENDS].adjacency
    return {(ids[s], ids[t]) for s, t in zip(adjacency.source.numpy(), adjacency.target.numpy())}


def test_edge_drop_keeps_a_random_subset_in_training_only(subgraphs, tmp_path):
    layer = EdgeDrop(0.5, seed=3)
    unchanged = check_layer(layer, subgraphs, tmp_path)  # inference: the identity
    assert unchanged.edge_sets[FRIENDS].total_size == subgraphs.edge_sets[FRIENDS].total_size
    dropped = layer(subgraphs, training=True)
    total = int(subgraphs.edge_sets[FRIENDS].total_size)
    kept = int(dropped.edge_sets[FRIENDS].total_size)
    assert 0.2 * total < kept < 0.8 * total
    assert _edge_pairs(dropped) <= _edge_pairs(subgraphs)
    assert int(tf.reduce_sum(dropped.edge_sets[FRIENDS].sizes)) == kept  # per-component sizes stay consistent
    np.testing.assert_array_equal(dropped.node_sets[USERS].sizes, subgraphs.node_sets[USERS].sizes)


def test_feature_drop_drops_the_same_dimensions_for_every_node(subgraphs, tmp_path):
    layer = FeatureDrop(0.5, feature_dim=60, seed=1)
    check_layer(layer, subgraphs, tmp_path)
    before = subgraphs.node_sets[USERS][FEATURES]
    after = layer(subgraphs, training=True).node_sets[USERS][FEATURES]
    kept_dims = set(after.flat_values.numpy().tolist())
    dropped_dims = set(before.flat_values.numpy().tolist()) - kept_dims
    assert kept_dims and dropped_dims
    for row_before, row_after in zip(before.to_list(), after.to_list()):
        assert row_after == [f for f in row_before if f not in dropped_dims]


def test_query_node_masking_replaces_roots_with_the_token(subgraphs, tmp_path):
    states = tf.random.stateless_normal([int(subgraphs.node_sets[USERS].total_size), 4], seed=[0, 1])
    graph = subgraphs.replace_features(node_sets={USERS: {tfgnn.HIDDEN_STATE: states}})
    layer = QueryNodeMasking(state_dim=4)
    check_layer(layer, graph, tmp_path)
    layer.mask_token.assign([1.0, 2.0, 3.0, 4.0])
    masked = layer(graph).numpy()
    roots = root_indices(graph).numpy()
    np.testing.assert_array_equal(masked[roots], np.tile([1.0, 2.0, 3.0, 4.0], (len(roots), 1)))
    others = np.setdiff1d(np.arange(len(masked)), roots)
    np.testing.assert_array_equal(masked[others], states.numpy()[others])
    assert len(layer.trainable_weights) == 1  # the token is learned


@pytest.mark.parametrize("layer", [lambda: EdgeDrop(1.0), lambda: FeatureDrop(-0.1, feature_dim=3)])
def test_bad_rates_are_rejected(layer):
    with pytest.raises(ValueError, match="rate="):
        layer()
