"""Graph augmentations for the self-supervised objectives, as Keras layers.

- `EdgeDrop`: removes each edge with probability `rate` (CCA-SSG and GraphMAE views).
- `FeatureDrop`: removes each feature dimension with probability `rate`, the same
  dimensions for every node of the batch (CCA-SSG's feature masking).
- `QueryNodeMasking`: replaces the input state of each subgraph's root (the query user)
  with a learnable [MASK] token (GraphMAE).

`EdgeDrop` and `FeatureDrop` are random and act only in training (like `Dropout`);
`QueryNodeMasking` defines the GraphMAE task and always acts. All work on scalar
GraphTensors of sampled subgraphs (schema: `tfzoo.graph.schema`).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_gnn as tfgnn

from tfzoo.graph.ops import filter_edges, root_indices
from tfzoo.graph.schema import FEATURES, FRIENDS, USERS


def _check_rate(rate: float) -> float:
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"`rate` must be in [0, 1). Received: rate={rate}")
    return float(rate)


@tf.keras.utils.register_keras_serializable(package="tfzoo")
class EdgeDrop(tf.keras.layers.Layer):
    """Drops each edge of `edge_set_name` independently with probability `rate` (training only).

    Args:
      rate: probability of dropping an edge, in [0, 1).
      edge_set_name: the edge set to thin out.
      seed: seeds the random choice (with the global seed).

    Call arguments:
      graph: a scalar GraphTensor.
      training: drop edges only when true.

    Returns:
      The graph with the kept edges (nodes, components and features unchanged).
    """

    def __init__(self, rate: float, *, edge_set_name: str = FRIENDS, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _check_rate(rate)
        self.edge_set_name = edge_set_name
        self.seed = seed

    def call(self, graph: tfgnn.GraphTensor, training: bool | None = None) -> tfgnn.GraphTensor:
        if not training or self.rate == 0.0:
            return graph
        num_edges = graph.edge_sets[self.edge_set_name].total_size
        keep = tf.random.uniform([num_edges], seed=self.seed) >= self.rate  # [edges]
        return filter_edges(graph, keep, self.edge_set_name)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(rate=self.rate, edge_set_name=self.edge_set_name, seed=self.seed)
        return config


@tf.keras.utils.register_keras_serializable(package="tfzoo")
class FeatureDrop(tf.keras.layers.Layer):
    """Drops each of the `feature_dim` multi-hot dimensions with probability `rate` (training only).

    As in CCA-SSG's feature masking, one draw decides for the whole batch which
    dimensions are dropped; a node loses the active features among them.

    Args:
      rate: probability of dropping a feature dimension, in [0, 1).
      feature_dim: the multi-hot width.
      seed: seeds the random choice (with the global seed).

    Call arguments:
      graph: a scalar GraphTensor whose users carry ragged `features` indices.
      training: drop features only when true.

    Returns:
      The graph with the kept feature indices.
    """

    def __init__(self, rate: float, *, feature_dim: int, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _check_rate(rate)
        if feature_dim < 1:
            raise ValueError(f"`feature_dim` must be >= 1. Received: feature_dim={feature_dim}")
        self.feature_dim = int(feature_dim)
        self.seed = seed

    def call(self, graph: tfgnn.GraphTensor, training: bool | None = None) -> tfgnn.GraphTensor:
        if not training or self.rate == 0.0:
            return graph
        node_set = graph.node_sets[USERS]
        features = node_set[FEATURES]  # [nodes, (active)]
        kept_dims = tf.random.uniform([self.feature_dim], seed=self.seed) >= self.rate  # [feature_dim]
        keep = features.with_flat_values(tf.gather(kept_dims, features.flat_values))  # [nodes, (active)]
        return graph.replace_features(
            node_sets={USERS: {**node_set.features, FEATURES: tf.ragged.boolean_mask(features, keep)}}
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(rate=self.rate, feature_dim=self.feature_dim, seed=self.seed)
        return config


@tf.keras.utils.register_keras_serializable(package="tfzoo")
class QueryNodeMasking(tf.keras.layers.Layer):
    """Replaces the input state of every subgraph's root with a learnable [MASK] token.

    GraphMAE replaces the input features of masked nodes with a learnable token
    (initialised to zeros). The tfzoo encoder's first step is linear in the multi-hot
    features, so a token in its output space (`[state_dim]`) spans the same inputs as a
    token in feature space, at a fraction of the size.

    Args:
      state_dim: width of the encoder's input states.

    Call arguments:
      graph: a scalar GraphTensor whose users carry `tfgnn.HIDDEN_STATE` [nodes, state_dim]
        (the encoder's input states).

    Returns:
      [nodes, state_dim] the states with each root's replaced by the token.
    """

    def __init__(self, *, state_dim: int, **kwargs):
        super().__init__(**kwargs)
        if state_dim < 1:
            raise ValueError(f"`state_dim` must be >= 1. Received: state_dim={state_dim}")
        self.state_dim = int(state_dim)

    def build(self, input_shape):
        self.mask_token = self.add_weight(name="mask_token", shape=[self.state_dim], initializer="zeros")
        super().build(input_shape)

    def call(self, graph: tfgnn.GraphTensor) -> tf.Tensor:
        states = graph.node_sets[USERS][tfgnn.HIDDEN_STATE]  # [nodes, state_dim]
        roots = root_indices(graph)[:, tf.newaxis]  # [components, 1]
        is_root = (
            tf.scatter_nd(roots, tf.ones_like(roots[:, 0]), tf.shape(states, out_type=tf.int32)[:1]) > 0
        )  # [nodes]
        return tf.where(is_root[:, tf.newaxis], tf.cast(self.mask_token, states.dtype)[tf.newaxis, :], states)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(state_dim=self.state_dim)
        return config
