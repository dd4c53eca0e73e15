"""Friend graphs with TF-GNN: GraphTensors, k-hop subgraph sampling, augmentations, GAT encoder."""

from tfzoo.graph.augmentations import EdgeDrop, FeatureDrop, QueryNodeMasking
from tfzoo.graph.decoder import RootAttentionDecoder
from tfzoo.graph.encoder import GraphEncoder, root_embeddings
from tfzoo.graph.ops import (
    filter_edges,
    first_components,
    multi_hot,
    remove_edges_between,
    root_ids,
    root_indices,
    symmetrize,
)
from tfzoo.graph.sampling import DEFAULT_FANOUTS, SubgraphSampler, directed_pairs
from tfzoo.graph.schema import FEATURES, FRIENDS, NODE_ID, USERS, friend_graph_tensor, subgraph_schema, subgraph_spec

__all__ = [
    "DEFAULT_FANOUTS",
    "EdgeDrop",
    "FEATURES",
    "FRIENDS",
    "FeatureDrop",
    "GraphEncoder",
    "NODE_ID",
    "QueryNodeMasking",
    "RootAttentionDecoder",
    "SubgraphSampler",
    "USERS",
    "directed_pairs",
    "filter_edges",
    "first_components",
    "friend_graph_tensor",
    "multi_hot",
    "remove_edges_between",
    "root_embeddings",
    "root_ids",
    "root_indices",
    "subgraph_schema",
    "subgraph_spec",
    "symmetrize",
]
