"""The ragged index operations of TF-GNN's in-memory sampler, on flat values.

TF-GNN's sampler (`tensorflow_gnn.experimental.sampler`) runs its row-wise choices and
lookups through an exchangeable implementation (`set_ext_ops_implementation`). Its default,
"vectorized", subtracts per-row offsets from ragged tensors (`ragged - row_offsets[:, None]`):
in a traced function every such broadcast builds TensorFlow's dynamic ragged-shape
machinery, and tracing one 2-hop sampler cost about 30 s of Python per trace (measured:
40% of a whole small `tfzoo train ssmtl` run, which traces the sampler for training,
validation, every input pipeline and the export). The same arithmetic on the flat values
(each value's row id gathers its row's offset) gives the same numbers and traces in well
under a second. `install()` registers this implementation as "tfzoo" and selects it.
The random draws are TF-GNN's own (`segment_random_index_shuffle`, same seeds), so a seeded
sampler samples the same subgraphs under either implementation (tested).

The sampler's removal of parallel edges is replaced the same way (`remove_parallel_edges`):
the same edges, gathered on flat values.
"""

from __future__ import annotations

import types

import tensorflow as tf
import tensorflow_gnn as tfgnn
from tensorflow_gnn.experimental.sampler import core as sampler_core
from tensorflow_gnn.experimental.sampler import ext_ops, ext_ops_vectorized

IMPLEMENTATION = "tfzoo"
# TF-GNN's own, kept before `install()` replaces it (the tests compare the two).
TF_GNN_REMOVE_PARALLEL_EDGES = sampler_core._remove_parallel_edges


def ragged_choice(
    num_samples: tf.Tensor, row_splits: tf.Tensor, *, global_indices: bool, seed: int | None
) -> tf.RaggedTensor:
    """`ext_ops.ragged_choice`: up to `num_samples` positions per row, without replacement."""
    row_starts, row_limits = row_splits[:-1], row_splits[1:]  # [rows] each
    num_samples = tf.math.minimum(num_samples, row_limits - row_starts)
    shuffled = tfgnn.experimental.segment_random_index_shuffle(
        segment_ids=tf.ragged.row_splits_to_segment_ids(row_splits), seed=seed
    )  # [values]: a random permutation of every row's positions, within the row
    chosen = tf.ragged.range(row_starts, row_starts + tf.cast(num_samples, row_starts.dtype))  # [rows, (k)]
    flat = tf.gather(shuffled, chosen.flat_values)  # [chosen]
    if not global_indices:
        flat -= tf.gather(row_starts, chosen.value_rowids())
    return chosen.with_flat_values(flat)


def ragged_lookup(
    values: tf.RaggedTensor, vocabulary: tf.RaggedTensor, *, global_indices: bool, validate: bool = True
) -> tf.RaggedTensor:
    """`ext_ops.ragged_lookup`: each value's index in its row's vocabulary."""
    joined = tf.concat([vocabulary, values], axis=-1)  # [rows, (vocabulary + values)]
    _, row_ids, _ = ext_ops_vectorized._index_rows(joined)  # [joined values]
    # Indices of the distinct (row, value) pairs in order of first appearance: a row's
    # vocabulary comes first, so its values index into it after the row's offset goes.
    row_vocabulary, global_index = tf.unique(row_ids, tf.int64)  # [joined values]
    joined_rows = joined.value_rowids()  # [joined values]
    row_offsets = tf.math.unsorted_segment_min(global_index, joined_rows, joined.nrows())  # [rows]
    joined_index = tf.cast(global_index - tf.gather(row_offsets, joined_rows), values.row_splits.dtype)
    value_rows = values.value_rowids()  # [values]
    within_row = tf.range(tf.size(value_rows, out_type=value_rows.dtype)) - tf.gather(values.row_splits, value_rows)
    vocabulary_sizes = tf.gather(vocabulary.row_lengths(), value_rows)  # [values]
    flat = tf.gather(joined_index, tf.gather(joined.row_splits, value_rows) + vocabulary_sizes + within_row)
    checks = []
    if validate:
        checks.append(tf.debugging.assert_less(flat, vocabulary_sizes, "Out of vocabulary values"))
        checks.append(
            tf.debugging.assert_equal(
                tf.size(row_vocabulary, out_type=tf.int64),
                tf.size(vocabulary, out_type=tf.int64),
                "Vocabulary has repeated values in rows",
            )
        )
    if global_indices:
        flat += tf.gather(vocabulary.row_splits, value_rows)
    with tf.control_dependencies(checks):
        return values.with_flat_values(tf.identity(flat))


def _gather_rows(values, indices: tf.RaggedTensor):
    """`tf.gather(values, indices, batch_dims=1)` for [rows, (n), ...] ragged `values` and
    [rows, (k)] within-row `indices`, on the flat values."""
    if not isinstance(values, tf.RaggedTensor):
        return tf.gather(values, indices, batch_dims=1)
    rows = indices.value_rowids()  # [k total]
    flat_index = tf.cast(indices.values, values.row_splits.dtype) + tf.gather(values.row_splits, rows)
    return tf.RaggedTensor.from_row_splits(
        tf.gather(values.values, flat_index), tf.cast(indices.row_splits, values.row_splits.dtype), validate=False
    )


def remove_parallel_edges(graph_tensor: tfgnn.GraphTensor) -> tfgnn.GraphTensor:
    """TF-GNN's `sampler.core._remove_parallel_edges` (each graph's edges between the same
    two nodes kept once, the first), gathering on flat values: TF-GNN's ragged
    `tf.gather(batch_dims=1)` took about 4 of the 7 s of Python that tracing a 2-hop
    sampler cost; this gathers the same edges in the same order (tested)."""
    assert graph_tensor.rank == 1, graph_tensor.rank
    with tf.control_dependencies(
        [
            tf.debugging.assert_equal(
                graph_tensor.num_components,
                tf.constant(1, graph_tensor.num_components.dtype),
                message="Expected graphs with a single graph component per graph",
            )
        ]
    ):
        graph_tensor = tf.identity(graph_tensor)
    unique_edge_indices = sampler_core._get_unique_parallel_edges_indices(graph_tensor)
    edge_sets = {}
    for name, edge_set in graph_tensor.edge_sets.items():
        adjacency, indices = edge_set.adjacency, unique_edge_indices[name]
        source, target, features = tf.nest.map_structure(
            lambda values, indices=indices: _gather_rows(values, indices),
            (adjacency.source, adjacency.target, edge_set.get_features_dict()),
        )
        edge_sets[name] = tfgnn.EdgeSet.from_fields(
            features=features,
            sizes=tf.expand_dims(tf.cast(indices.row_lengths(), edge_set.sizes.dtype), axis=-1),
            adjacency=tfgnn.Adjacency.from_indices((adjacency.source_name, source), (adjacency.target_name, target)),
        )
    return tfgnn.GraphTensor.from_pieces(graph_tensor.context, graph_tensor.node_sets, edge_sets)


def install() -> None:
    """Registers these operations as TF-GNN's "tfzoo" sampler implementation and selects
    it, and builds sampled graphs with `remove_parallel_edges`."""
    ext_ops._IMPLEMENTATIONS[IMPLEMENTATION] = types.SimpleNamespace(
        ragged_choice=ragged_choice,
        ragged_unique=ext_ops_vectorized.ragged_unique,
        ragged_lookup=ragged_lookup,
    )
    ext_ops.set_ops_implementation(IMPLEMENTATION)
    sampler_core._remove_parallel_edges = remove_parallel_edges
