import numpy as np
import pytest
import tensorflow as tf
import tensorflow_gnn as tfgnn
from tensorflow_gnn.models.gat_v2 import GATv2Conv

from tests.harness import check_layer, check_layer_kernel_knobs
from tfzoo.graph import FRIENDS, USERS, RootAttentionDecoder, root_indices


@pytest.fixture(scope="module")
def graph(small_sampler):
    subgraphs = small_sampler(tf.constant([1, 9, 30], tf.int64))
    states = tf.random.stateless_normal([int(subgraphs.node_sets[USERS].total_size), 6], seed=[2, 3])
    return subgraphs.replace_features(node_sets={USERS: {tfgnn.HIDDEN_STATE: states}})


def test_decoder_equals_a_whole_graph_gatv2_layer_at_the_roots(graph, tmp_path):
    decoder = RootAttentionDecoder(units=10, num_heads=2)
    out = check_layer(decoder, graph, tmp_path)
    assert out.shape == (3, 10)
    # The same GATv2 layer over the whole subgraph (receivers: the expanding users), read at the roots.
    whole = GATv2Conv(num_heads=2, per_head_channels=5, receiver_tag=tfgnn.SOURCE, activation="linear")
    whole(graph, edge_set_name=FRIENDS)
    whole.set_weights(decoder.get_weights())
    expected = tf.gather(whole(graph, edge_set_name=FRIENDS), root_indices(graph))
    np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=1e-5)


def test_units_must_split_over_heads():
    with pytest.raises(ValueError, match="units=10, num_heads=3"):
        RootAttentionDecoder(units=10, num_heads=3)


def test_kernel_options_reach_the_attention_and_the_widening_map(graph):
    # GATv2's query, value and attention kernels, and the widening map's.
    check_layer_kernel_knobs(lambda **options: RootAttentionDecoder(units=10, hidden_dim=4, **options), graph, 3 + 1)
