import numpy as np
import pytest
import tensorflow as tf

from tests.harness import check_layer, check_layer_kernel_knobs
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
    alone = subgraphs.replace_features(
        node_sets={
            USERS: {
                NODE_ID: subgraphs.node_sets[USERS][NODE_ID],
                FEATURES: tf.ragged.boolean_mask(
                    subgraphs.node_sets[USERS][FEATURES],
                    tf.ragged.map_flat_values(tf.zeros_like, subgraphs.node_sets[USERS][FEATURES]) > 0,
                ),
            }
        }
    )
    # Removing every neighbour's (and the root's) features changes the root's embedding.
    assert not np.allclose(with_friends, root_embeddings(alone, encoder(alone)))


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="hidden_dim=10, num_heads=4"):
        GraphEncoder(feature_dim=5, hidden_dim=10, num_heads=4)
    with pytest.raises(ValueError, match="num_layers=0"):
        GraphEncoder(feature_dim=5, num_layers=0)


def test_id_embeddings_tell_apart_users_with_the_same_features(small_sampler):
    # Every node gets the same single feature: only the id embedding can tell them apart.
    graph = small_sampler(tf.constant([3, 8], tf.int64))
    nodes = int(graph.node_sets[USERS].total_size)
    same = tf.RaggedTensor.from_row_lengths(tf.zeros([nodes], tf.int32), tf.ones([nodes], tf.int64))
    plain = graph.replace_features(node_sets={USERS: {NODE_ID: graph.node_sets[USERS][NODE_ID], FEATURES: same}})
    without = GraphEncoder(feature_dim=60, hidden_dim=8, output_dim=8, num_layers=1, num_heads=2)
    without(plain)
    assert np.allclose(without.input_states(plain).numpy(), without.input_states(plain).numpy()[:1])
    with_ids = GraphEncoder(feature_dim=60, hidden_dim=8, output_dim=8, num_layers=1, num_heads=2, id_buckets=300)
    with_ids(plain)
    ids = plain.node_sets[USERS][NODE_ID].numpy()
    shared = with_ids.feature_embedding.numpy()[0] + with_ids.feature_bias.numpy()
    np.testing.assert_allclose(
        with_ids.input_states(plain).numpy(), shared + with_ids.id_embedding.numpy()[ids], atol=1e-5
    )


def test_input_states_are_computed_once_per_user_and_equal_per_node_ones(subgraphs, small_friend_graph):
    encoder = GraphEncoder(feature_dim=60, hidden_dim=8, output_dim=8, num_layers=1, num_heads=1, id_buckets=7)
    encoder(subgraphs)
    ids = subgraphs.node_sets[USERS][NODE_ID].numpy()
    x = small_friend_graph.train.multi_hot(ids)
    expected = (
        x @ encoder.feature_embedding.numpy() + encoder.feature_bias.numpy() + encoder.id_embedding.numpy()[ids % 7]
    )
    np.testing.assert_allclose(encoder.input_states(subgraphs).numpy(), expected, atol=1e-5)


def test_messages_both_ways_reach_the_last_hop(subgraphs):
    # A last-hop node (no edge points away from it) keeps its input state under "to_root"
    # message passing (its next state sees no messages) but receives under "both".
    from tfzoo.graph import FRIENDS

    adjacency = subgraphs.edge_sets[FRIENDS].adjacency
    leaf = int(np.setdiff1d(adjacency.target.numpy(), adjacency.source.numpy())[0])
    for passing, changes in (("to_root", False), ("both", True)):
        tf.keras.utils.set_random_seed(0)
        encoder = GraphEncoder(
            feature_dim=60, hidden_dim=8, output_dim=8, num_layers=1, num_heads=2, message_passing=passing
        )
        states = encoder(subgraphs).numpy()
        parent = int(adjacency.source.numpy()[adjacency.target.numpy() == leaf][0])
        features = dict(subgraphs.node_sets[USERS].features)
        flat = features[FEATURES]
        # Drop the parent's features: only a message from the parent can move the leaf's state.
        keep = tf.ragged.map_flat_values(tf.ones_like, flat, dtype=tf.bool)
        keep = tf.RaggedTensor.from_row_splits(
            tf.repeat(tf.range(flat.nrows()) != parent, tf.cast(flat.row_lengths(), tf.int32)), flat.row_splits
        )
        changed = subgraphs.replace_features(
            node_sets={USERS: {**features, FEATURES: tf.ragged.boolean_mask(flat, keep)}}
        )
        moved = not np.allclose(encoder(changed).numpy()[leaf], states[leaf], atol=1e-6)
        assert moved == changes, passing


def test_concat_readout_round_trips_and_rejects_unknown_options(subgraphs, tmp_path):
    encoder = GraphEncoder(
        feature_dim=60,
        hidden_dim=8,
        output_dim=6,
        num_layers=2,
        num_heads=2,
        readout="concat",
        message_passing="both",
        id_buckets=50,
    )
    assert check_layer(encoder, subgraphs, tmp_path).shape[1] == 6
    with pytest.raises(ValueError, match="readout='mean'"):
        GraphEncoder(feature_dim=5, readout="mean")
    with pytest.raises(ValueError, match="message_passing='up'"):
        GraphEncoder(feature_dim=5, message_passing="up")
    with pytest.raises(ValueError, match="id_buckets=-1"):
        GraphEncoder(feature_dim=5, id_buckets=-1)


@pytest.mark.parametrize("readout, passing", [("last", "to_root"), ("concat", "to_root"), ("concat", "both")])
def test_root_states_equal_the_whole_encoder_at_the_roots(subgraphs, readout, passing):
    encoder = GraphEncoder(
        feature_dim=60,
        hidden_dim=8,
        output_dim=6,
        num_layers=2,
        num_heads=2,
        readout=readout,
        message_passing=passing,
        id_buckets=20,
    )
    whole = root_embeddings(subgraphs, encoder(subgraphs)).numpy()
    np.testing.assert_allclose(encoder(subgraphs, roots_only=True).numpy(), whole, atol=1e-5)


def test_kernel_options_reach_the_feature_map_every_round_and_the_readout(subgraphs):
    def make(**options):
        return GraphEncoder(
            feature_dim=60,
            hidden_dim=8,
            output_dim=6,
            num_layers=2,
            num_heads=2,
            readout="concat",
            id_buckets=50,
            **options,
        )

    # The feature map W (1); per round GATv2's query, value and attention kernels and the
    # next-state kernel (2 x 4); the concat readout (1). The id table and biases keep theirs.
    check_layer_kernel_knobs(make, subgraphs, 1 + 2 * 4 + 1)
