import numpy as np
import pytest
import tensorflow as tf

from tests.harness import check_layer
from tfzoo.graph import FEATURES, NODE_ID, USERS, GraphEncoder, multi_hot, root_embeddings, root_ids


@pytest.fixture(scope="module")
def subgraphs(small_sampler):
    return small_sampler(tf.constant([3, 8, 21], tf.int64))


def test_encoder_round_trips_and_gives_root_embeddings(subgraphs, tmp_path):
    encoder = GraphEncoder(feature_dim=60, hidden_dim=8, output_dim=6, num_layers=2, num_heads=2)
    states = check_layer(encoder, subgraphs, tmp_path)
    assert states.shape == (int(subgraphs.node_sets[USERS].total_size), 6)
    roots = root_embeddings(subgraphs, states)
    assert roots.shape == (3, 6)
    assert root_ids(subgraphs).numpy().tolist() == [3, 8, 21]


def test_input_states_are_the_linear_map_of_the_multi_hot_features(subgraphs, small_friend_graph):
    encoder = GraphEncoder(feature_dim=60, hidden_dim=8, output_dim=8, num_layers=1, num_heads=1)
    encoder(subgraphs)
    encoder.feature_bias.assign(np.arange(8, dtype=np.float32))
    x = small_friend_graph.train.multi_hot(subgraphs.node_sets[USERS][NODE_ID].numpy())  # [nodes, 60]
    expected = x @ encoder.feature_embedding.numpy() + np.arange(8)
    np.testing.assert_allclose(encoder.input_states(subgraphs).numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(multi_hot(subgraphs.node_sets[USERS][FEATURES], 60).numpy(), x)


def test_root_embedding_depends_on_the_sampled_neighbourhood(subgraphs):
    encoder = GraphEncoder(feature_dim=60, hidden_dim=8, output_dim=8, num_layers=2, num_heads=2)
    with_friends = root_embeddings(subgraphs, encoder(subgraphs))
    alone = subgraphs.replace_features(node_sets={USERS: {
        NODE_ID: subgraphs.node_sets[USERS][NODE_ID],
        FEATURES: tf.ragged.boolean_mask(subgraphs.node_sets[USERS][FEATURES],
                                         tf.ragged.map_flat_values(tf.zeros_like, subgraphs.node_sets[USERS][FEATURES]) > 0)}})
    # Removing every neighbour's (and the root's) features changes the root's embedding.
    assert not np.allclose(with_friends, root_embeddings(alone, encoder(alone)))


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="hidden_dim=10, num_heads=4"):
        GraphEncoder(feature_dim=5, hidden_dim=10, num_heads=4)
    with pytest.raises(ValueError, match="num_layers=0"):
        GraphEncoder(feature_dim=5, num_layers=0)
