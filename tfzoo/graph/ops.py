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
        tf.cast(keep, sizes.dtype), edge_components(graph, edge_set_name), tf.size(sizes)
    )  # [components]
    filtered = tfgnn.EdgeSet.from_fields(
        sizes=kept_sizes,
        adjacency=tfgnn.Adjacency.from_indices(
            (adjacency.source_name, tf.boolean_mask(adjacency.source, keep)),
            (adjacency.target_name, tf.boolean_mask(adjacency.target, keep)),
        ),
        features={name: tf.boolean_mask(value, keep) for name, value in edge_set.features.items()},
    )
    return tfgnn.GraphTensor.from_pieces(
        context=graph.context, node_sets=dict(graph.node_sets), edge_sets={**graph.edge_sets, edge_set_name: filtered}
    )


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
    counts = tf.scatter_nd(
        indices,
        tf.ones_like(features.flat_values, tf.float32),
        tf.stack([tf.cast(features.nrows(), tf.int64), tf.constant(dim, tf.int64)]),
    )  # [rows, dim]
    return tf.minimum(counts, 1.0)


def node_hops(graph: tfgnn.GraphTensor, max_hops: int, edge_set_name: str = FRIENDS) -> tf.Tensor:
    """[nodes] int32 hop of every node from its component's root (edges point away from
    the root), `max_hops + 1` for nodes farther than `max_hops`."""
    num_nodes = graph.node_sets[USERS].total_size
    adjacency = graph.edge_sets[edge_set_name].adjacency
    roots = root_indices(graph)
    hops = tf.tensor_scatter_nd_update(
        tf.fill([num_nodes], max_hops + 1), roots[:, tf.newaxis], tf.zeros_like(roots)
    )  # [nodes]
    for _ in range(max_hops):
        reached = tf.math.unsorted_segment_min(tf.gather(hops, adjacency.source) + 1, adjacency.target, num_nodes)
        hops = tf.minimum(hops, reached)
    return hops


def message_receivers(graph: tfgnn.GraphTensor, *, both_ways: bool = False, edge_set_name: str = FRIENDS) -> tf.Tensor:
    """[receivers] int32 indices of the nodes that receive messages, in node order.

    Sampled edges point away from the root and messages flow towards it, so the
    receivers are the nodes some edge leaves from: the roots and every node that was
    expanded. With messages both ways (`symmetrize`), every node receives.
    """
    num_nodes = graph.node_sets[USERS].total_size
    if both_ways:
        return tf.range(num_nodes)
    source = graph.edge_sets[edge_set_name].adjacency.source  # [edges]
    received = tf.math.unsorted_segment_sum(tf.ones_like(source), source, num_nodes) > 0  # [nodes]
    return tf.cast(tf.where(received)[:, 0], tf.int32)


def symmetrize(graph: tfgnn.GraphTensor, edge_set_name: str = FRIENDS) -> tfgnn.GraphTensor:
    """The graph with every edge followed by its reverse (edge features are dropped).

    A sampled subgraph holds each friendship once, pointing away from the root; message
    passing along both copies reaches every node, the last hop included. Each reverse
    copy sits next to its edge, so every component keeps its edges together.
    """
    edge_set = graph.edge_sets[edge_set_name]
    adjacency = edge_set.adjacency
    source = tf.reshape(tf.stack([adjacency.source, adjacency.target], axis=1), [-1])  # [2 * edges]
    target = tf.reshape(tf.stack([adjacency.target, adjacency.source], axis=1), [-1])  # [2 * edges]
    both = tfgnn.EdgeSet.from_fields(
        sizes=2 * edge_set.sizes,
        adjacency=tfgnn.Adjacency.from_indices((adjacency.source_name, source), (adjacency.target_name, target)),
    )
    return tfgnn.GraphTensor.from_pieces(
        context=graph.context, node_sets=dict(graph.node_sets), edge_sets={**graph.edge_sets, edge_set_name: both}
    )


def first_components(graph: tfgnn.GraphTensor, count: int | tf.Tensor) -> tfgnn.GraphTensor:
    """The first `count` components of a merged scalar GraphTensor (all of them if fewer).

    Components keep their nodes and edges together, in order, so this is a slice of every
    node and edge feature; the batches of `SubgraphSampler.friendship_dataset` are
    shuffled, so the first components are a random subset of the batch.
    """
    node_sets = {}
    for name, node_set in graph.node_sets.items():
        sizes = node_set.sizes[:count]  # [count]
        total = tf.reduce_sum(sizes)
        node_sets[name] = tfgnn.NodeSet.from_fields(
            sizes=sizes, features={key: value[:total] for key, value in node_set.features.items()}
        )
    edge_sets = {}
    for name, edge_set in graph.edge_sets.items():
        sizes = edge_set.sizes[:count]  # [count]
        total = tf.reduce_sum(sizes)
        adjacency = edge_set.adjacency
        edge_sets[name] = tfgnn.EdgeSet.from_fields(
            sizes=sizes,
            features={key: value[:total] for key, value in edge_set.features.items()},
            adjacency=tfgnn.Adjacency.from_indices(
                (adjacency.source_name, adjacency.source[:total]), (adjacency.target_name, adjacency.target[:total])
            ),
        )
    return tfgnn.GraphTensor.from_pieces(node_sets=node_sets, edge_sets=edge_sets)


def side_by_side(graphs: list[tfgnn.GraphTensor], edge_set_name: str = FRIENDS) -> tfgnn.GraphTensor:
    """One scalar GraphTensor holding the components of `graphs` one after the other: their
    structure only (node and edge counts, adjacency; no features), for one message-passing
    pass over several views of the same subgraphs."""
    if len(graphs) == 1:
        return graphs[0]
    offsets = tf.math.cumsum([g.node_sets[USERS].total_size for g in graphs], exclusive=True)  # [graphs]
    sources, targets = [], []
    for offset, graph in zip(tf.unstack(offsets), graphs):
        adjacency = graph.edge_sets[edge_set_name].adjacency
        sources.append(adjacency.source + offset)
        targets.append(adjacency.target + offset)
    return tfgnn.GraphTensor.from_pieces(
        node_sets={USERS: tfgnn.NodeSet.from_fields(sizes=tf.concat([g.node_sets[USERS].sizes for g in graphs], 0))},
        edge_sets={
            edge_set_name: tfgnn.EdgeSet.from_fields(
                sizes=tf.concat([g.edge_sets[edge_set_name].sizes for g in graphs], 0),
                adjacency=tfgnn.Adjacency.from_indices((USERS, tf.concat(sources, 0)), (USERS, tf.concat(targets, 0))),
            )
        },
    )
