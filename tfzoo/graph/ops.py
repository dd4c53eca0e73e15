"""Small operations on scalar (merged) GraphTensors of sampled subgraphs.

In a batch of sampled subgraphs merged into one scalar GraphTensor, each subgraph is a
graph component and its root (the user it was sampled around) is its first node.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_gnn as tfgnn

from tfzoo.graph.schema import FRIENDS, NODE_ID, USERS


def root_indices(graph: tfgnn.GraphTensor, node_set_name: str = USERS) -> tf.Tensor:
    """[num_components] int32 index of each component's first node."""
    sizes = graph.node_sets[node_set_name].sizes  # [components]
    return tf.cast(tf.math.cumsum(sizes, exclusive=True), tf.int32)


def root_ids(graph: tfgnn.GraphTensor) -> tf.Tensor:
    """[num_components] int64 user id of each component's root."""
    return tf.gather(graph.node_sets[USERS][NODE_ID], root_indices(graph))


def edge_components(graph: tfgnn.GraphTensor, edge_set_name: str = FRIENDS) -> tf.Tensor:
    """[num_edges] int32 component of every edge."""
    sizes = graph.edge_sets[edge_set_name].sizes  # [components]
    return tf.repeat(tf.range(tf.size(sizes, out_type=tf.int32)), tf.cast(sizes, tf.int32))


def filter_edges(graph: tfgnn.GraphTensor, keep: tf.Tensor, edge_set_name: str = FRIENDS) -> tfgnn.GraphTensor:
    """The graph with only the edges where `keep` ([num_edges] bool) is true.

    Node sets, context and the remaining edges' features are unchanged; the components
    keep their nodes.
    """
    edge_set = graph.edge_sets[edge_set_name]
    adjacency = edge_set.adjacency
    sizes = edge_set.sizes  # [components]
    kept_sizes = tf.math.unsorted_segment_sum(
        tf.cast(keep, sizes.dtype), edge_components(graph, edge_set_name), tf.size(sizes))  # [components]
    filtered = tfgnn.EdgeSet.from_fields(
        sizes=kept_sizes,
        adjacency=tfgnn.Adjacency.from_indices(
            (adjacency.source_name, tf.boolean_mask(adjacency.source, keep)),
            (adjacency.target_name, tf.boolean_mask(adjacency.target, keep))),
        features={name: tf.boolean_mask(value, keep) for name, value in edge_set.features.items()},
    )
    return tfgnn.GraphTensor.from_pieces(
        context=graph.context, node_sets=dict(graph.node_sets), edge_sets={**graph.edge_sets, edge_set_name: filtered})


def remove_edges_between(graph: tfgnn.GraphTensor, first: tf.Tensor, second: tf.Tensor) -> tfgnn.GraphTensor:
    """Removes, in component i, every edge between users `first[i]` and `second[i]` (either direction).

    Training on a friendship (u, v) samples subgraphs around u and v from the training
    graph, which holds that friendship; removing it keeps the model from reading the label
    off the input (held-out friendships are absent from the graph at evaluation, too).
    """
    ids = graph.node_sets[USERS][NODE_ID]  # [nodes]
    adjacency = graph.edge_sets[FRIENDS].adjacency
    source_ids = tf.gather(ids, adjacency.source)  # [edges]
    target_ids = tf.gather(ids, adjacency.target)  # [edges]
    component = edge_components(graph)  # [edges]
    a = tf.gather(tf.cast(first, ids.dtype), component)
    b = tf.gather(tf.cast(second, ids.dtype), component)
    between = ((source_ids == a) & (target_ids == b)) | ((source_ids == b) & (target_ids == a))
    return filter_edges(graph, tf.logical_not(between))


def multi_hot(features: tf.RaggedTensor, dim: int) -> tf.Tensor:
    """[rows, dim] float32 0/1 from ragged active indices [rows, (active)] (repeats count once)."""
    indices = tf.stack([tf.cast(features.value_rowids(), tf.int64), tf.cast(features.flat_values, tf.int64)], axis=1)
    counts = tf.scatter_nd(indices, tf.ones_like(features.flat_values, tf.float32),
                           tf.stack([tf.cast(features.nrows(), tf.int64), tf.constant(dim, tf.int64)]))  # [rows, dim]
    return tf.minimum(counts, 1.0)
