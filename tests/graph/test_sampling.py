import numpy as np
import pytest
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


def test_sharded_friendship_batches_deal_out_the_epoch(small_friend_graph, small_sampler):
    # Each input pipeline samples every n-th batch of the one shuffled epoch (a tensor index
    # as a parameter-server worker's): together, the epoch's batches once each, in turn.
    pairs = directed_pairs(small_friend_graph.train.edges)[:40]

    def roots(shard):
        dataset = small_sampler.friendship_dataset(pairs, batch_size=8, shuffle_seed=3, shard=shard)
        return [root_ids(batch["query"]).numpy().tolist() for batch in dataset]

    whole = roots((0, 1))
    assert len(whole) == 5
    assert roots((0, 2)) == whole[0::2] and roots((tf.constant(1), 2)) == whole[1::2]


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


def test_symmetrize_adds_each_reverse_next_to_its_edge(small_sampler):
    from tfzoo.graph import FRIENDS, symmetrize

    graph = small_sampler(tf.constant([1, 2, 3], tf.int64))
    both = symmetrize(graph)
    source, target = (
        graph.edge_sets[FRIENDS].adjacency.source.numpy(),
        graph.edge_sets[FRIENDS].adjacency.target.numpy(),
    )
    np.testing.assert_array_equal(both.edge_sets[FRIENDS].sizes.numpy(), 2 * graph.edge_sets[FRIENDS].sizes.numpy())
    np.testing.assert_array_equal(
        both.edge_sets[FRIENDS].adjacency.source.numpy(), np.stack([source, target], 1).ravel()
    )
    np.testing.assert_array_equal(
        both.edge_sets[FRIENDS].adjacency.target.numpy(), np.stack([target, source], 1).ravel()
    )


def test_first_components_is_the_subgraphs_of_the_first_users(small_sampler):
    from tfzoo.graph import FEATURES, FRIENDS, NODE_ID, USERS, first_components, root_ids

    graph = small_sampler(tf.constant([5, 6, 7, 8], tf.int64))
    first = first_components(graph, 2)
    assert root_ids(first).numpy().tolist() == [5, 6]
    nodes = int(graph.node_sets[USERS].sizes[:2].numpy().sum())
    edges = int(graph.edge_sets[FRIENDS].sizes[:2].numpy().sum())
    np.testing.assert_array_equal(
        first.node_sets[USERS][NODE_ID].numpy(), graph.node_sets[USERS][NODE_ID].numpy()[:nodes]
    )
    assert first.node_sets[USERS][FEATURES].to_list() == graph.node_sets[USERS][FEATURES][:nodes].to_list()
    np.testing.assert_array_equal(
        first.edge_sets[FRIENDS].adjacency.source.numpy(), graph.edge_sets[FRIENDS].adjacency.source.numpy()[:edges]
    )
    assert int(first_components(graph, 10).num_components) == 4  # fewer than asked: all of them


def test_batches_carry_the_mixed_sampler_probabilities_and_uniform_negatives(small_friend_graph, small_sampler):
    pairs = directed_pairs(small_friend_graph.train.edges)
    batch = next(iter(small_sampler.friendship_dataset(pairs, batch_size=16, uniform_negatives=4)))
    share = np.bincount(pairs[:, 1], minlength=300) / len(pairs)
    mixed = (16 * share + 4 / 300) / 20  # one draw of the mixed sampler
    candidates = (
        batch["candidate"]
        .node_sets["users"]["#id"]
        .numpy()[np.cumsum(np.r_[0, batch["candidate"].node_sets["users"].sizes.numpy()[:-1]])]
    )
    np.testing.assert_allclose(batch["candidate_probability"].numpy(), mixed[candidates], rtol=1e-5)
    assert int(batch["negatives"].num_components) == 4
    np.testing.assert_allclose(
        batch["negative_probability"].numpy(),
        mixed[
            batch["negatives"]
            .node_sets["users"]["#id"]
            .numpy()[np.cumsum(np.r_[0, batch["negatives"].node_sets["users"].sizes.numpy()[:-1]])]
        ],
        rtol=1e-5,
    )
    with pytest.raises(ValueError, match="uniform_negatives=-1"):
        small_sampler.friendship_dataset(pairs, batch_size=16, uniform_negatives=-1)
