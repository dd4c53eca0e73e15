import numpy as np
import pytest
import tensorflow as tf
import tensorflow_gnn as tfgnn
from tensorflow_gnn.experimental.sampler import ext_ops, ext_ops_vectorized

from tfzoo.graph import NODE_ID, USERS, SubgraphSampler, sampler_ops


def _ragged(rows):
    return tf.RaggedTensor.from_row_lengths(
        tf.constant([x for row in rows for x in row], tf.int64), tf.constant([len(row) for row in rows], tf.int64)
    )


@pytest.mark.parametrize("global_indices", [False, True])
def test_lookup_equals_tf_gnn_vectorized_lookup(global_indices):
    rng = np.random.default_rng(0)
    for _ in range(20):
        vocabulary = [list(rng.choice(50, size=rng.integers(0, 6), replace=False)) for _ in range(rng.integers(1, 6))]
        values = [
            [row[i] for i in rng.integers(0, len(row), size=rng.integers(0, 7))] if row else [] for row in vocabulary
        ]
        expected = ext_ops_vectorized.ragged_lookup(_ragged(values), _ragged(vocabulary), global_indices=global_indices)
        found = sampler_ops.ragged_lookup(_ragged(values), _ragged(vocabulary), global_indices=global_indices)
        assert found.to_list() == expected.to_list()


def test_lookup_rejects_values_outside_the_row_vocabulary():
    with pytest.raises(tf.errors.InvalidArgumentError, match="Out of vocabulary"):
        sampler_ops.ragged_lookup(_ragged([[1, 2], [3]]), _ragged([[1, 2], [4]]), global_indices=False)


@pytest.mark.parametrize("global_indices", [False, True])
def test_choice_draws_distinct_positions_of_each_row(global_indices):
    splits = tf.constant([0, 4, 4, 5, 12], tf.int64)  # rows of 4, 0, 1 and 7 positions
    chosen = sampler_ops.ragged_choice(3, splits, global_indices=global_indices, seed=1).to_list()
    assert [len(row) for row in chosen] == [3, 0, 1, 3]
    for row, start, length in zip(chosen, [0, 4, 4, 5], [4, 0, 1, 7]):
        offset = start if global_indices else 0
        assert len(set(row)) == len(row) and all(offset <= i < offset + length for i in row)


def test_seeded_sampler_samples_the_same_subgraphs_under_either_implementation(small_friend_graph):
    users = tf.constant([0, 5, 17, 42, 99], tf.int64)
    subgraphs = {}
    try:
        for implementation in ("vectorized", sampler_ops.IMPLEMENTATION):
            ext_ops.set_ops_implementation(implementation)
            sampler = SubgraphSampler(small_friend_graph.train, fanouts=(4, 3), seed=3)
            subgraphs[implementation] = [sampler(users).node_sets[USERS][NODE_ID].numpy().tolist() for _ in range(2)]
    finally:
        ext_ops.set_ops_implementation(sampler_ops.IMPLEMENTATION)
    assert subgraphs["vectorized"] == subgraphs[sampler_ops.IMPLEMENTATION]
    assert subgraphs["vectorized"][0] != subgraphs["vectorized"][1]  # the draws go on between calls


def test_parallel_edge_removal_equals_tf_gnn_removal():
    # Three graphs of one component each; edges (source, target) with repeats, and an edge
    # feature that tells which copy of a repeated edge is kept.
    rng = np.random.default_rng(0)
    edges = [[(0, 1), (1, 2), (0, 1), (2, 0), (1, 2)], [], [(3, 3), (0, 2), (3, 3), (3, 3)]]
    nodes = [3, 2, 4]
    weight = tf.RaggedTensor.from_row_lengths(
        tf.constant(rng.normal(size=(sum(len(e) for e in edges), 2)), tf.float32), [len(e) for e in edges]
    )
    graph = tfgnn.GraphTensor.from_pieces(
        node_sets={"users": tfgnn.NodeSet.from_fields(sizes=tf.ragged.constant([[n] for n in nodes]), features={})},
        edge_sets={
            "friends": tfgnn.EdgeSet.from_fields(
                sizes=tf.ragged.constant([[len(e)] for e in edges]),
                features={"weight": weight},
                adjacency=tfgnn.Adjacency.from_indices(
                    ("users", tf.ragged.constant([[s for s, _ in e] for e in edges], tf.int64, ragged_rank=1)),
                    ("users", tf.ragged.constant([[t for _, t in e] for e in edges], tf.int64, ragged_rank=1)),
                ),
            )
        },
    )
    expected = sampler_ops.TF_GNN_REMOVE_PARALLEL_EDGES(graph).edge_sets["friends"]
    found = sampler_ops.remove_parallel_edges(graph).edge_sets["friends"]
    assert found.adjacency.source.to_list() == expected.adjacency.source.to_list() == [[0, 1, 2], [], [3, 0]]
    assert found.adjacency.target.to_list() == expected.adjacency.target.to_list()
    assert found.sizes.numpy().tolist() == expected.sizes.numpy().tolist() == [[3], [0], [2]]
    assert found["weight"].to_list() == expected["weight"].to_list()
