import numpy as np
import tensorflow as tf
import tensorflow_gnn as tfgnn

from tfzoo.graph import FEATURES, FRIENDS, NODE_ID, USERS, directed_pairs, remove_edges_between, root_ids, subgraph_spec
from tfzoo.graph.schema import friend_graph_tensor


def _edges_by_component(graph):
    ids = graph.node_sets[USERS][NODE_ID].numpy()
    adjacency = graph.edge_sets[FRIENDS].adjacency
    sizes = graph.edge_sets[FRIENDS].sizes.numpy()
    pairs = list(zip(ids[adjacency.source.numpy()], ids[adjacency.target.numpy()]))
    return np.split(np.array(pairs).reshape(-1, 2), np.cumsum(sizes)[:-1])


def test_full_graph_tensor_holds_both_directions_and_features(small_friend_graph):
    graph = small_friend_graph.train
    full = friend_graph_tensor(graph)
    assert full.edge_sets[FRIENDS].total_size == 2 * graph.num_friendships
    assert full.node_sets[USERS][FEATURES][7].numpy().tolist() == graph.user_features(7).tolist()


def test_sampled_subgraphs_are_rooted_bounded_and_from_the_training_graph(small_friend_graph, small_sampler):
    train = small_friend_graph.train
    users = np.array([0, 5, 17, 42])
    graph = small_sampler(tf.constant(users))
    assert root_ids(graph).numpy().tolist() == users.tolist()  # the seed is each component's first node
    known = {tuple(e) for e in directed_pairs(train.edges).tolist()}
    degree = train.degrees()
    sizes = graph.node_sets[USERS].sizes.numpy()
    assert np.all(sizes <= 1 + 4 + 4 * 3)
    for user, edges in zip(users, _edges_by_component(graph)):
        assert {tuple(e) for e in edges.tolist()} <= known
        assert (edges[:, 0] == user).sum() == min(4, degree[user])  # hop 1: fan-out 4, without replacement
    ids = graph.node_sets[USERS][NODE_ID].numpy()
    features = graph.node_sets[USERS][FEATURES]
    for row in (0, len(ids) - 1):
        assert features[row].numpy().tolist() == train.user_features(ids[row]).tolist()


def test_friendship_batches_remove_the_pair_edge(small_friend_graph, small_sampler):
    pairs = directed_pairs(small_friend_graph.train.edges)[:8]
    batch = next(iter(small_sampler.friendship_dataset(pairs, batch_size=8)))
    assert root_ids(batch["query"]).numpy().tolist() == pairs[:, 0].tolist()
    assert root_ids(batch["candidate"]).numpy().tolist() == pairs[:, 1].tolist()
    for name in ("query", "candidate"):
        for (u, v), edges in zip(pairs, _edges_by_component(batch[name])):
            linked = ((edges[:, 0] == u) & (edges[:, 1] == v)) | ((edges[:, 0] == v) & (edges[:, 1] == u))
            assert not linked.any()


def test_remove_edges_between_drops_exactly_those_edges(small_sampler):
    graph = small_sampler(tf.constant([3]))
    edges = _edges_by_component(graph)[0]
    u, v = edges[0]
    kept = _edges_by_component(remove_edges_between(graph, tf.constant([u]), tf.constant([v])))[0]
    expected = [e for e in edges.tolist() if set(e) != {u, v}]
    assert kept.tolist() == expected


def test_serialized_subgraphs_parse_back(small_sampler):
    serialized = small_sampler.serialized_subgraphs([1, 2])
    parsed = tfgnn.parse_example(subgraph_spec(), tf.constant(serialized)).merge_batch_to_components()
    assert root_ids(parsed).numpy().tolist() == [1, 2]
    assert parsed.node_sets[USERS][FEATURES].flat_values.dtype == tf.int32
