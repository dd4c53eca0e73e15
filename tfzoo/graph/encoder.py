"""The GAT encoder shared by every SSMTL objective: sampled subgraph -> node states.

1. Input states: a linear map of each user's multi-hot features, `x W + b`, computed as
   the sum of the embedding rows of its active indices (an embedding bag), so the
   3,170-wide multi-hot rows are never materialised.
2. `num_layers` rounds of GATv2 message passing (`tensorflow_gnn.models.gat_v2`), each
   node attending over the sampled friends it expanded (messages flow towards the root:
   after k rounds the root has seen its k-hop sample). The last round is linear, so that
   embeddings are not confined to the positive orthant.

The root's final state is the user's embedding (`root_embeddings`).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_gnn as tfgnn
from tensorflow_gnn.models import gat_v2

from tfzoo.graph.ops import root_indices
from tfzoo.graph.schema import FEATURES, USERS


@tf.keras.utils.register_keras_serializable(package="tfzoo")
class GraphEncoder(tf.keras.layers.Layer):
    """Multi-hot features + GATv2 message passing over sampled subgraphs.

    Args:
      feature_dim: width of the multi-hot node features.
      hidden_dim: width of the input states and of every hidden layer.
      output_dim: width of the final node states (the embedding size).
      num_layers: rounds of message passing (use as many as sampling hops).
      num_heads: attention heads per round; `hidden_dim` must be divisible by it.
      dropout: dropout rate on the node states after each round.

    Call arguments:
      graph: a scalar GraphTensor of sampled subgraphs (`tfzoo.graph.schema`).
      training: enables dropout.

    Returns:
      [num_nodes, output_dim] final node states.
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
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("feature_dim", feature_dim), ("hidden_dim", hidden_dim), ("output_dim", output_dim),
                            ("num_layers", num_layers), ("num_heads", num_heads)):
            if value < 1:
                raise ValueError(f"`{name}` must be >= 1. Received: {name}={value}")
        if hidden_dim % num_heads:
            raise ValueError(f"`hidden_dim` must be divisible by `num_heads`. Received: hidden_dim={hidden_dim}, "
                             f"num_heads={num_heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
        self.feature_dim = int(feature_dim)
        self.hidden_dim = int(hidden_dim)
        self.output_dim = int(output_dim)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.dropout = float(dropout)

    def build(self, input_shape):
        self.feature_embedding = self.add_weight(
            name="feature_embedding", shape=[self.feature_dim, self.hidden_dim], initializer="glorot_uniform")
        self.feature_bias = self.add_weight(name="feature_bias", shape=[self.hidden_dim], initializer="zeros")
        self._rounds = [
            gat_v2.GATv2MPNNGraphUpdate(
                units=self.output_dim if last else self.hidden_dim,
                message_dim=self.hidden_dim,
                num_heads=self.num_heads,
                receiver_tag=tfgnn.SOURCE,
                state_dropout_rate=self.dropout,
                activation="linear" if last else "relu",
            )
            for last in (i == self.num_layers - 1 for i in range(self.num_layers))
        ]
        super().build(input_shape)

    def input_states(self, graph: tfgnn.GraphTensor) -> tf.Tensor:
        """[num_nodes, hidden_dim] `x W + b` of each node's multi-hot features."""
        features = graph.node_sets[USERS][FEATURES]  # [nodes, (active)]
        rows = tf.gather(self.feature_embedding, features.flat_values)  # [active_total, hidden]
        summed = tf.math.unsorted_segment_sum(
            rows, tf.cast(features.value_rowids(), tf.int32), tf.cast(features.nrows(), tf.int32))  # [nodes, hidden]
        return summed + self.feature_bias

    def propagate(self, graph: tfgnn.GraphTensor, states: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        """[num_nodes, output_dim] node states after message passing from input `states`."""
        graph = graph.replace_features(node_sets={USERS: {tfgnn.HIDDEN_STATE: states}})
        for round_ in self._rounds:
            graph = round_(graph, training=training)
        return graph.node_sets[USERS][tfgnn.HIDDEN_STATE]

    def call(self, graph: tfgnn.GraphTensor, training: bool | None = None) -> tf.Tensor:
        return self.propagate(graph, self.input_states(graph), training=training)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(feature_dim=self.feature_dim, hidden_dim=self.hidden_dim, output_dim=self.output_dim,
                      num_layers=self.num_layers, num_heads=self.num_heads, dropout=self.dropout)
        return config


def root_embeddings(graph: tfgnn.GraphTensor, node_states: tf.Tensor) -> tf.Tensor:
    """[num_components, d] the states of the subgraphs' roots."""
    return tf.gather(node_states, root_indices(graph))
