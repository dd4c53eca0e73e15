"""Friend graphs as `tfgnn.GraphTensor`s: one node set of users, one edge set of friendships.

```
node set "users":   "#id"      [num_nodes] int64, the user id in the friend graph
                    "features" [num_nodes, (num_active)] int32, ragged multi-hot indices
edge set "friends": users -> users, every friendship in both directions
```

A sampled subgraph (`tfzoo.graph.sampling`) has the same schema; its first node is the
user it was sampled around (its root), and it may be stored as a `tf.train.Example`
(`tfgnn.write_example`), which is what the exported `embed` signature parses.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_gnn as tfgnn

from tfzoo.data.friend_graph import FriendGraph

USERS = "users"
FRIENDS = "friends"
FEATURES = "features"
NODE_ID = "#id"


def friend_graph_tensor(graph: FriendGraph) -> tfgnn.GraphTensor:
    """The whole friend graph as a scalar GraphTensor, friendships in both directions."""
    source = np.concatenate([graph.edges[:, 0], graph.edges[:, 1]])
    target = np.concatenate([graph.edges[:, 1], graph.edges[:, 0]])
    features = tf.RaggedTensor.from_row_splits(graph.feature_indices, graph.feature_splits)  # [users, (active)]
    return tfgnn.GraphTensor.from_pieces(
        node_sets={
            USERS: tfgnn.NodeSet.from_fields(
                sizes=[graph.num_users],
                features={NODE_ID: tf.range(graph.num_users, dtype=tf.int64), FEATURES: features},
            )
        },
        edge_sets={
            FRIENDS: tfgnn.EdgeSet.from_fields(
                sizes=[len(source)], adjacency=tfgnn.Adjacency.from_indices((USERS, source), (USERS, target))
            )
        },  # int64, like the sampler seeds
    )


def subgraph_spec() -> tfgnn.GraphTensorSpec:
    """Spec of one sampled subgraph (a single component of any size): parses `tf.train.Example`s."""
    return tfgnn.GraphTensorSpec.from_piece_specs(
        node_sets_spec={
            USERS: tfgnn.NodeSetSpec.from_field_specs(
                sizes_spec=tf.TensorSpec([1], tf.int32),
                features_spec={
                    NODE_ID: tf.TensorSpec([None], tf.int64),
                    FEATURES: tf.RaggedTensorSpec([None, None], tf.int32, ragged_rank=1, row_splits_dtype=tf.int64),
                },
            )
        },
        edge_sets_spec={
            FRIENDS: tfgnn.EdgeSetSpec.from_field_specs(
                sizes_spec=tf.TensorSpec([1], tf.int32),
                adjacency_spec=tfgnn.AdjacencySpec.from_incident_node_sets(
                    USERS, USERS, index_spec=tf.TensorSpec([None], tf.int32)
                ),
            )
        },
    )


def subgraph_schema() -> tfgnn.GraphSchema:
    """The `GraphSchema` of sampled subgraphs (written next to exported models)."""
    return tfgnn.create_schema_pb_from_graph_spec(subgraph_spec())
