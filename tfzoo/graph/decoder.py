"""GraphMAE's decoder, restricted to the nodes it reconstructs: the subgraph roots.

GraphMAE decodes with one GAT layer whose output width is the feature width, and scores
only the masked nodes. Here the masked nodes are the roots, so the layer is evaluated
only where it is scored: each root attends over the friends it was sampled with (a
`tfgnn.keras.layers.GATv2Conv` over a small bipartite GraphTensor of those edges). The
result equals that layer's output at the roots, without the [nodes, feature_dim] tensor
(14k x 3,170 floats per batch of 256 Twitch subgraphs) a whole-graph layer would make.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_gnn as tfgnn
from tensorflow_gnn.models.gat_v2 import GATv2Conv

from tfzoo.graph.ops import root_indices
from tfzoo.graph.schema import FRIENDS, USERS

_ROOTS = "roots"
_NEIGHBOURS = "neighbours"
_TO_ROOT = "to_root"


@tf.keras.utils.register_keras_serializable(package="tfzoo")
class RootAttentionDecoder(tf.keras.layers.Layer):
    """One GATv2 attention layer evaluated at the roots of sampled subgraphs.

    Args:
      units: output width (for GraphMAE: the feature width).
      num_heads: attention heads; `units` must be divisible by it.

    Call arguments:
      graph: a scalar GraphTensor of sampled subgraphs whose users carry
        `tfgnn.HIDDEN_STATE` [nodes, d] (for GraphMAE: the re-masked states).

    Returns:
      [num_components, units]: for each root, the attention-weighted, linearly transformed
      states of the friends it expanded (edges whose source is the root); a root whose
      edges were all dropped gets zeros.
    """

    def __init__(self, *, units: int, num_heads: int = 1, **kwargs):
        super().__init__(**kwargs)
        if units < 1 or num_heads < 1 or units % num_heads:
            raise ValueError(f"`units` must be a positive multiple of `num_heads`. Received: units={units}, "
                             f"num_heads={num_heads}")
        self.units = int(units)
        self.num_heads = int(num_heads)

    def build(self, input_shape):
        self._conv = GATv2Conv(
            num_heads=self.num_heads, per_head_channels=self.units // self.num_heads, receiver_tag=tfgnn.TARGET,
            activation="linear", name="gat_v2_decoder")
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
                    sizes=num_roots[tf.newaxis], features={tfgnn.HIDDEN_STATE: tf.gather(states, roots)}),
                _NEIGHBOURS: tfgnn.NodeSet.from_fields(
                    sizes=num_neighbours[tf.newaxis], features={tfgnn.HIDDEN_STATE: tf.gather(states, neighbours)}),
            },
            edge_sets={_TO_ROOT: tfgnn.EdgeSet.from_fields(
                sizes=num_neighbours[tf.newaxis],
                adjacency=tfgnn.Adjacency.from_indices((_NEIGHBOURS, tf.range(num_neighbours)), (_ROOTS, receivers)))},
        )
        return self._conv(star, edge_set_name=_TO_ROOT)  # [components, units]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(units=self.units, num_heads=self.num_heads)
        return config
