import numpy as np
import pytest

from tfzoo.data import FriendGraph, MultiHotFeatures, load_dataset, make_friend_graph, split_friendships
from tfzoo.data.friend_graph import neighbours


def _pairs(edges):
    return {tuple(e) for e in np.asarray(edges).tolist()}


def test_generated_graph_is_seeded_and_has_community_structure():
    first, second = make_friend_graph(600, seed=3), make_friend_graph(600, seed=3)
    np.testing.assert_array_equal(first.edges, second.edges)
    np.testing.assert_array_equal(first.feature_indices, second.feature_indices)
    assert not np.array_equal(first.edges, make_friend_graph(600, seed=4).edges)
    community = first.node_targets["community"]
    same = (community[first.edges[:, 0]] == community[first.edges[:, 1]]).mean()
    # within_community=0.8 (+ 1/20 of the rest by chance); 1/20 if there were no structure.
    assert same > 0.7
    # Features: most of a user's indices come from its community's block of 512 // 20 = 25.
    block = first.feature_indices // 25
    owner = np.repeat(community, np.diff(first.feature_splits))
    assert (block == owner).mean() > 0.5
    degree = first.degrees()
    assert np.percentile(degree, 25) < degree.mean() < degree.max() / 4  # heavy-tailed


def test_split_is_deterministic_disjoint_and_keeps_everybody_connected():
    graph = make_friend_graph(800, seed=0)
    splits = split_friendships(graph, validation_share=0.1, test_share=0.1, seed=5)
    again = split_friendships(graph, validation_share=0.1, test_share=0.1, seed=5)
    np.testing.assert_array_equal(splits.test, again.test)
    train, validation, test = _pairs(splits.train.edges), _pairs(splits.validation), _pairs(splits.test)
    assert not (train & validation or train & test or validation & test)
    assert train | validation | test == _pairs(graph.edges)
    held = (len(validation) + len(test)) / graph.num_friendships
    assert 0.12 < held < 0.22  # about 0.2 per user, less for users of degree <= 4
    # Nobody who had friends loses all of them to the held-out sets.
    assert np.all(splits.train.degrees()[graph.degrees() > 0] >= 1)
    # Each user loses at most its rounded-up share.
    lost = graph.degrees() - splits.train.degrees()
    assert np.all(lost <= np.ceil(0.2 * graph.degrees()))
    assert not np.array_equal(splits.test, split_friendships(graph, seed=6).test)


def test_split_rejects_bad_shares():
    graph = make_friend_graph(50, num_communities=5, seed=0)
    with pytest.raises(ValueError, match="test_share"):
        split_friendships(graph, validation_share=0.5, test_share=0.5)


def test_friend_graph_validates_edges_and_features():
    features = MultiHotFeatures(dim=4)
    with pytest.raises(ValueError, match="self-loop"):
        FriendGraph(num_users=2, edges=[[1, 1]], feature_splits=[0, 0, 0], feature_indices=[], features=features)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        FriendGraph(num_users=2, edges=[[0, 1]], feature_splits=[0, 1, 1], feature_indices=[7], features=features)
    graph = FriendGraph(
        num_users=3,
        edges=[[2, 0], [0, 2], [1, 2]],
        feature_splits=[0, 1, 1, 2],
        feature_indices=[3, 0],
        features=features,
    )
    assert graph.edges.tolist() == [[0, 2], [1, 2]]
    splits, ids = neighbours(graph.edges, 3)
    assert splits.tolist() == [0, 1, 2, 4] and ids.tolist() == [2, 2, 0, 1]


def test_graph_datasets_are_registered():
    splits = load_dataset("friend_graph", split_seed=1)
    assert splits.graph.num_users == 3000 and "seed 1" in splits.split
    with pytest.raises(ValueError, match="--data"):
        load_dataset("twitch")
    with pytest.raises(ValueError, match="no tasks"):
        load_dataset("friend_graph", tasks=["income"])
    smaller = load_dataset("friend_graph", options={"num_users": 500})
    assert smaller.graph.num_users == 500
    np.testing.assert_array_equal(
        smaller.graph.edges, load_dataset("friend_graph", options={"num_users": 500}).graph.edges
    )
    for bad in (50, 2.5, "many", True):
        with pytest.raises(ValueError, match=f"Received: num_users={bad!r}"):
            load_dataset("friend_graph", options={"num_users": bad})


def test_cold_start_users_keep_exactly_one_training_friendship(small_friend_graph):
    graph = small_friend_graph.graph
    plain = split_friendships(graph, seed=0)
    cold = split_friendships(graph, seed=0, cold_start_share=0.1)
    users = cold.cold_start_users
    eligible = int((graph.degrees() >= 2).sum())
    assert 0.08 * eligible <= len(users) <= 0.1 * eligible + 1
    train_degree = cold.train.degrees()
    assert (train_degree[users] == 1).all()
    assert (train_degree >= 1).all()  # nobody loses every training friend
    # Every other friendship of a cold-start user is a test friendship.
    for user in users[:20]:
        total = graph.degrees()[user]
        in_test = int(((cold.test == user).any(axis=1)).sum())
        in_validation = int(((cold.validation == user).any(axis=1)).sum())
        assert in_validation == 0 and in_test == total - 1
    # The three parts still partition the friendships.
    together = np.concatenate([cold.train.edges, cold.validation, cold.test])
    assert len(together) == len(graph.edges) and len(np.unique(together, axis=0)) == len(graph.edges)
    assert "cold-start users" in cold.split
    # Without cold-start users the split is the plain one, draw for draw.
    np.testing.assert_array_equal(split_friendships(graph, seed=0, cold_start_share=0.0).test, plain.test)
    with pytest.raises(ValueError, match="cold_start_share=1.0"):
        split_friendships(graph, cold_start_share=1.0)


def test_saved_graph_loads_back_equal(tmp_path):
    graph = make_friend_graph(num_users=120, seed=4)
    graph.node_targets["views"] = np.linspace(0.0, 1.0, graph.num_users)
    graph.save(tmp_path / "graph.npz")
    loaded = FriendGraph.load(tmp_path / "graph.npz")
    assert loaded.num_users == graph.num_users and loaded.features == graph.features
    assert loaded.source == graph.source
    for name in ("edges", "feature_splits", "feature_indices"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(graph, name))
    np.testing.assert_array_equal(loaded.node_targets["views"], graph.node_targets["views"])
    with pytest.raises(FileNotFoundError, match="missing.npz not found"):
        FriendGraph.load(tmp_path / "missing.npz")
