"""GraphMAE's decoder, restricted to the nodes it reconstructs: the subgraph roots.

GraphMAE decodes with one GAT layer whose output width is the feature width, and scores
only the masked nodes. Here the masked nodes are the roots, so the layer is evaluated
only where it is scored: each root attends over the friends it was sampled with (a
`tfgnn.keras.layers.GATv2Conv` over a small bipartite GraphTensor of those edges). The
result equals that layer's output at the roots, without the [nodes, feature_dim] tensor
(14k x 3,170 floats per batch of 256 Twitch subgraphs) a whole-graph layer would make.

With `hidden_dim`, the layer attends and pools in `hidden_dim` channels and a linear map
widens the pooled state to `units`: the same attention over the same friends, without a
[root edges, feature_dim] tensor per head (the full-width layer costs as much as the
rest of a GraphMAE step).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_gnn as tfgnn
from tensorflow_gnn.models.gat_v2 import GATv2Conv

from tfzoo.graph.ops import root_indices
from tfzoo.graph.schema import FRIENDS, USERS
from tfzoo.layers.kernel_options import check_kernel_options, kernel_options, kernel_options_config

_ROOTS = "roots"
_NEIGHBOURS = "neighbours"
_TO_ROOT = "to_root"


@tf.keras.utils.register_keras_serializable(package="tfzoo")
class RootAttentionDecoder(tf.keras.layers.Layer):
    """One GATv2 attention layer evaluated at the roots of sampled subgraphs.

    Args:
      units: output width (for GraphMAE: the feature width).
      num_heads: attention heads; `units` (or `hidden_dim`) must be divisible by it.
      hidden_dim: width of the attention and of the pooled messages, then mapped linearly
        to `units` (None: attend in `units` channels, as GraphMAE's decoder).
      kernel_initializer, kernel_regularizer: a Keras initializer / regularizer of every
        dense kernel: the GATv2 layer's query, value and attention kernels and the
        widening map's (None: Glorot uniform, no regularizer); biases keep theirs
        (`tfzoo.layers.kernel_options`).

    Call arguments:
      graph: a scalar GraphTensor of sampled subgraphs whose users carry
        `tfgnn.HIDDEN_STATE` [nodes, d] (for GraphMAE: the re-masked states).

    Returns:
      [num_components, units]: for each root, the attention-weighted, linearly transformed
      states of the friends it expanded (edges whose source is the root); a root whose
      edges were all dropped gets zeros (with `hidden_dim`: the widening map's bias).
    """

    def __init__(
        self,
        *,
        units: int,
        num_heads: int = 1,
        hidden_dim: int | None = None,
        kernel_initializer=None,
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        attention_units = units if hidden_dim is None else hidden_dim
        if units < 1 or num_heads < 1 or attention_units < 1 or attention_units % num_heads:
            raise ValueError(
                f"`units` (or `hidden_dim`) must be a positive multiple of `num_heads`. Received: "
                f"units={units}, num_heads={num_heads}, hidden_dim={hidden_dim}"
            )
        self.units = int(units)
        self.num_heads = int(num_heads)
        self.hidden_dim = None if hidden_dim is None else int(hidden_dim)
        check_kernel_options(kernel_initializer, kernel_regularizer)
        self.kernel_initializer = kernel_initializer
        self.kernel_regularizer = kernel_regularizer

    def build(self, input_shape):
        attention_units = self.units if self.hidden_dim is None else self.hidden_dim
        self._conv = GATv2Conv(
            num_heads=self.num_heads,
            per_head_channels=attention_units // self.num_heads,
            receiver_tag=tfgnn.TARGET,
            activation="linear",
            name="gat_v2_decoder",
            **kernel_options(self),
        )
        if self.hidden_dim is not None:
            self._widen = tf.keras.layers.Dense(self.units, name="widen", **kernel_options(self))
        super().build(input_shape)

    def call(self, graph: tfgnn.GraphTensor) -> tf.Tensor:
        states = graph.node_sets[USERS][tfgnn.HIDDEN_STATE]  # [nodes, d]
        roots = root_indices(graph)  # [components]
        num_roots = tf.size(roots)
        node_component = tf.repeat(tf.range(num_roots), tf.cast(graph.node_sets[USERS].sizes, tf.int32))  # [nodes]
        is_root = tf.scatter_nd(roots[:, tf.newaxis], tf.ones_like(roots), tf.shape(node_component)) > 0  # [nodes]
        adjacency = graph.edge_sets[FRIENDS].adjacency
        from_root = tf.gather(is_root, adjacency.source)  # [edges]
        neighbours = tf.boolean_mask(adjacency.target, from_root)  # [root_edges]
        receivers = tf.gather(node_component, tf.boolean_mask(adjacency.source, from_root))  # [root_edges]
        num_neighbours = tf.size(neighbours)
        star = tfgnn.GraphTensor.from_pieces(
            node_sets={
                _ROOTS: tfgnn.NodeSet.from_fields(
                    sizes=num_roots[tf.newaxis], features={tfgnn.HIDDEN_STATE: tf.gather(states, roots)}
                ),
                _NEIGHBOURS: tfgnn.NodeSet.from_fields(
                    sizes=num_neighbours[tf.newaxis], features={tfgnn.HIDDEN_STATE: tf.gather(states, neighbours)}
                ),
            },
            edge_sets={
                _TO_ROOT: tfgnn.EdgeSet.from_fields(
                    sizes=num_neighbours[tf.newaxis],
                    adjacency=tfgnn.Adjacency.from_indices(
                        (_NEIGHBOURS, tf.range(num_neighbours)), (_ROOTS, receivers)
                    ),
                )
            },
        )
        pooled = self._conv(star, edge_set_name=_TO_ROOT)  # [components, hidden_dim or units]
        return pooled if self.hidden_dim is None else self._widen(pooled)  # [components, units]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            units=self.units, num_heads=self.num_heads, hidden_dim=self.hidden_dim, **kernel_options_config(self)
        )
        return config
