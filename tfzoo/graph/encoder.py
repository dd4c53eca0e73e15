"""The GAT encoder shared by every SSMTL objective: sampled subgraph -> node states.

1. Input states: a linear map of each user's multi-hot features, `x W + b`, computed as
   the sum of the embedding rows of its active indices (an embedding bag, so the
   3,170-wide multi-hot rows are never materialised), plus, with `id_buckets`, a learned
   embedding of the user's id (hashed into `id_buckets` rows). Features alone cannot tell
   two users with the same games apart; the id embedding can, and it is what lets the
   encoder learn who is friends with whom. Each distinct user of a graph is computed once.
2. `num_layers` rounds of GATv2 message passing (`tensorflow_gnn.models.gat_v2`). With
   `message_passing="to_root"` every node attends over the friends it expanded (messages
   flow towards the root; nodes of the last hop receive nothing). With `"both"` the
   sampled friendships carry messages in both directions, so every node of the subgraph
   receives, its parent included.
3. Readout. `"last"`: the final states, whose last round is linear (embeddings are not
   confined to the positive orthant). `"concat"`: the input states and the states after
   every round, concatenated and mapped linearly to `output_dim` (jumping knowledge: the
   root keeps its own id and features next to what its friends told it, which is what a
   dot product between two users needs to count the friends they share).

The root's final state is the user's embedding (`root_embeddings`).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_gnn as tfgnn
from tensorflow_gnn.models import gat_v2

from tfzoo.graph.ops import filter_edges, node_hops, root_indices, symmetrize
from tfzoo.graph.schema import FEATURES, FRIENDS, NODE_ID, USERS
from tfzoo.layers.kernel_options import check_kernel_options, kernel_options, kernel_options_config

MESSAGE_PASSING = ("to_root", "both")
READOUTS = ("last", "concat")


def hash_ids(ids: tf.Tensor, buckets: int) -> tf.Tensor:
    """int64 ids -> int32 rows of an `buckets`-row table (ids below `buckets` keep their own row)."""
    return tf.cast(tf.math.floormod(tf.cast(ids, tf.int64), buckets), tf.int32)


def gat_round(
    *, units: int, message_dim: int, num_heads: int, dropout: float, activation: str, kernel_options
) -> tf.keras.layers.Layer:
    """One round of GATv2 message passing towards `tfgnn.SOURCE`: what
    `gat_v2.GATv2MPNNGraphUpdate` builds (a `GATv2Conv` per edge set, then the next state
    from the concatenation of the old state and the pooled messages by a dense layer and
    dropout), with `kernel_options` (`tfzoo.layers.kernel_options`) on every kernel.

    The library's function takes an `l2_regularization` that it puts on the kernels and
    the biases alike, and no other regularizer; this one regularises kernels only, with
    the regularizer given. Without options it builds the same layers in the same order
    (Glorot uniform kernels, zero biases), hence the same weights for the same seed; the
    library's zero-weight L2 terms, which added exactly 0 to the loss, are left out."""
    initializer = kernel_options.get("kernel_initializer", "glorot_uniform")  # the library's default
    regularizer = kernel_options.get("kernel_regularizer")

    def next_state(node_set_name):
        del node_set_name  # one node set: users
        dense = tf.keras.layers.Dense(
            units,
            activation=activation,
            use_bias=True,
            kernel_initializer=tfgnn.keras.clone_initializer(initializer),
            bias_initializer="zeros",
            kernel_regularizer=regularizer,
        )
        return tfgnn.keras.layers.NextStateFromConcat(tf.keras.Sequential([dense, tf.keras.layers.Dropout(dropout)]))

    builder = tfgnn.keras.ConvGNNBuilder(
        lambda edge_set_name, receiver_tag: gat_v2.GATv2Conv(
            num_heads=num_heads,
            per_head_channels=message_dim // num_heads,
            receiver_tag=receiver_tag,
            kernel_initializer=tfgnn.keras.clone_initializer(initializer),
            kernel_regularizer=regularizer,
        ),
        next_state,
        receiver_tag=tfgnn.SOURCE,
    )
    return builder.Convolve()


@tf.keras.utils.register_keras_serializable(package="tfzoo")
class GraphEncoder(tf.keras.layers.Layer):
    """Multi-hot features (+ id embeddings) and GATv2 message passing over sampled subgraphs.

    Args:
      feature_dim: width of the multi-hot node features.
      hidden_dim: width of the input states and of every hidden layer.
      output_dim: width of the final node states (the embedding size).
      num_layers: rounds of message passing (use as many as sampling hops).
      num_heads: attention heads per round; `hidden_dim` must be divisible by it.
      dropout: dropout rate on the node states after each round.
      id_buckets: rows of the learned user-id embedding (0: no id embedding). Ids are
        hashed by `id mod id_buckets`; with at least as many rows as users no two users
        share one.
      message_passing: "to_root" or "both" (see the module docstring).
      readout: "last" or "concat" (see the module docstring).
      kernel_initializer, kernel_regularizer: a Keras initializer / regularizer of every
        dense kernel: the input map W of the multi-hot features, each GATv2 round's query,
        value and attention kernels and its next-state kernel, and the concat readout's
        (None: Glorot uniform, no regularizer). The id embedding table and the biases
        keep theirs (`tfzoo.layers.kernel_options`).

    Call arguments:
      graph: a scalar GraphTensor of sampled subgraphs (`tfzoo.graph.schema`).
      training: enables dropout.
      roots_only: return the roots' states only, skipping what reaches no root.

    Returns:
      [num_nodes, output_dim] final node states ([num_components, output_dim] with
      `roots_only`).
    """

    def __init__(
        self,
        *,
        feature_dim: int,
        hidden_dim: int = 64,
        output_dim: int = 64,
        num_layers: int = 2,
        num_heads: int = 4,
        dropout: float = 0.0,
        id_buckets: int = 0,
        message_passing: str = "to_root",
        readout: str = "last",
        kernel_initializer=None,
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("feature_dim", feature_dim),
            ("hidden_dim", hidden_dim),
            ("output_dim", output_dim),
            ("num_layers", num_layers),
            ("num_heads", num_heads),
        ):
            if value < 1:
                raise ValueError(f"`{name}` must be >= 1. Received: {name}={value}")
        if hidden_dim % num_heads:
            raise ValueError(
                f"`hidden_dim` must be divisible by `num_heads`. Received: hidden_dim={hidden_dim}, "
                f"num_heads={num_heads}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
        if id_buckets < 0:
            raise ValueError(f"`id_buckets` must be >= 0. Received: id_buckets={id_buckets}")
        if message_passing not in MESSAGE_PASSING:
            raise ValueError(
                f"`message_passing` must be one of {MESSAGE_PASSING}. Received: message_passing={message_passing!r}"
            )
        if readout not in READOUTS:
            raise ValueError(f"`readout` must be one of {READOUTS}. Received: readout={readout!r}")
        check_kernel_options(kernel_initializer, kernel_regularizer)
        self.feature_dim = int(feature_dim)
        self.hidden_dim = int(hidden_dim)
        self.output_dim = int(output_dim)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.dropout = float(dropout)
        self.id_buckets = int(id_buckets)
        self.message_passing = message_passing
        self.readout = readout
        self.kernel_initializer = kernel_initializer
        self.kernel_regularizer = kernel_regularizer

    def build(self, input_shape):
        # The kernel W of the input map `x W + b`, read as an embedding bag: a dense kernel.
        self.feature_embedding = self.add_weight(
            name="feature_embedding",
            shape=[self.feature_dim, self.hidden_dim],
            initializer=self.kernel_initializer or "glorot_uniform",
            regularizer=self.kernel_regularizer,
        )
        self.feature_bias = self.add_weight(name="feature_bias", shape=[self.hidden_dim], initializer="zeros")
        if self.id_buckets:
            # About the size of a user's summed feature rows (some twenty active features).
            self.id_embedding = self.add_weight(
                name="id_embedding",
                shape=[self.id_buckets, self.hidden_dim],
                initializer=tf.keras.initializers.RandomNormal(stddev=0.1),
            )
        concat = self.readout == "concat"
        self._rounds = [
            gat_round(
                units=self.output_dim if last and not concat else self.hidden_dim,
                message_dim=self.hidden_dim,
                num_heads=self.num_heads,
                dropout=self.dropout,
                activation="linear" if last and not concat else "relu",
                kernel_options=kernel_options(self),
            )
            for last in (i == self.num_layers - 1 for i in range(self.num_layers))
        ]
        if concat:
            self._readout = tf.keras.layers.Dense(self.output_dim, name="readout", **kernel_options(self))
        super().build(input_shape)

    def input_states(self, graph: tfgnn.GraphTensor) -> tf.Tensor:
        """[num_nodes, hidden_dim] `x W + b` (+ the id embedding) of each node.

        A user appears in many subgraphs of a batch; its state is computed once.
        """
        node_set = graph.node_sets[USERS]
        unique_ids, position = tf.unique(node_set[NODE_ID], out_idx=tf.int32)  # [distinct], [nodes]
        num_distinct = tf.size(unique_ids)
        first = tf.math.unsorted_segment_min(tf.range(tf.size(position)), position, num_distinct)  # [distinct]
        features = tf.gather(node_set[FEATURES], first)  # [distinct, (active)]
        # `embedding_lookup`, not `gather`: on a table sharded over parameter servers (a
        # `ShardedVariable`) it reads each shard's rows, where `gather` would concatenate
        # the whole table first (and, measured, the sharded run stopped learning).
        rows = tf.nn.embedding_lookup(self.feature_embedding, features.flat_values)  # [active_total, hidden]
        states = (
            tf.math.unsorted_segment_sum(rows, tf.cast(features.value_rowids(), tf.int32), num_distinct)
            + self.feature_bias
        )  # [distinct, hidden]
        if self.id_buckets:
            states += tf.nn.embedding_lookup(
                self.id_embedding, hash_ids(unique_ids, self.id_buckets)
            )  # [distinct, hidden]
        # In the compute dtype whether or not this runs inside the encoder's own call (where
        # Keras casts the variables) or outside (the SSL views): bfloat16 under a mixed policy.
        return tf.cast(tf.gather(states, position), self.compute_dtype)  # [nodes, hidden]

    def propagate(self, graph: tfgnn.GraphTensor, states: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        """[num_nodes, output_dim] node states after message passing from input `states`."""
        if self.message_passing == "both":
            graph = symmetrize(graph)
        states = tf.cast(states, self.compute_dtype)
        graph = graph.replace_features(node_sets={USERS: {tfgnn.HIDDEN_STATE: states}})
        layers = [states]
        for round_ in self._rounds:
            graph = round_(graph, training=training)
            layers.append(graph.node_sets[USERS][tfgnn.HIDDEN_STATE])
        if self.readout == "concat":
            return self._readout(tf.concat(layers, axis=-1))  # [nodes, output_dim]
        return layers[-1]

    def call(self, graph: tfgnn.GraphTensor, training: bool | None = None, roots_only: bool = False) -> tf.Tensor:
        if roots_only:
            return self._root_states(graph, training=training)
        return self.propagate(graph, self.input_states(graph), training=training)

    def _root_states(self, graph: tfgnn.GraphTensor, training: bool | None = None) -> tf.Tensor:
        """[num_components, output_dim] the roots' final states (`roots_only=True`):
        `root_embeddings(graph, self(graph))`, computed without the work that reaches no root.

        With messages towards the root, round r of L only matters on the edges leaving
        nodes within L - r hops of the root (the last round: the root's own edges), and
        the readout only at the roots; that skips most of the last round's edges, the
        costliest part of a GATv2 round. (Messages both ways reach the root from
        everywhere: the whole encoder runs.)
        """
        if self.message_passing == "both":
            return root_embeddings(graph, self(graph, training=training))
        hops = node_hops(graph, self.num_layers)  # [nodes]
        source_hops = tf.gather(hops, graph.edge_sets[FRIENDS].adjacency.source)  # [edges]
        states = self.input_states(graph)  # [nodes, hidden_dim]
        roots = root_indices(graph)  # [components]
        layers = [tf.gather(states, roots)]
        for index, round_ in enumerate(self._rounds):
            pruned = filter_edges(graph, source_hops <= self.num_layers - 1 - index)
            pruned = pruned.replace_features(node_sets={USERS: {tfgnn.HIDDEN_STATE: states}})
            states = round_(pruned, training=training).node_sets[USERS][tfgnn.HIDDEN_STATE]
            layers.append(tf.gather(states, roots))
        if self.readout == "concat":
            return self._readout(tf.concat(layers, axis=-1))  # [components, output_dim]
        return layers[-1]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            feature_dim=self.feature_dim,
            hidden_dim=self.hidden_dim,
            output_dim=self.output_dim,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            dropout=self.dropout,
            id_buckets=self.id_buckets,
            message_passing=self.message_passing,
            readout=self.readout,
            **kernel_options_config(self),
        )
        return config


def root_embeddings(graph: tfgnn.GraphTensor, node_states: tf.Tensor) -> tf.Tensor:
    """[num_components, d] the states of the subgraphs' roots."""
    return tf.gather(node_states, root_indices(graph))
