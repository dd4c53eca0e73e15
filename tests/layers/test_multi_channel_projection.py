import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.distribute.sharded_variable import ShardedVariable

from tests.harness import check_layer, check_layer_kernel_knobs
from tfzoo.layers import MultiChannelProjection


def channels(seed=0):
    rng = np.random.default_rng(seed)
    genres = rng.integers(0, 6, size=(3, 4, 2))
    genres[0, 1] = [5, 0]  # 5 = vocabulary_size: the [MASK] id of a bag
    return {
        "rating": rng.integers(1, 4, size=(3, 4)),
        "genres": genres,
        "item": rng.integers(1, 11, size=(3, 4)),
        "interval": rng.normal(size=(3, 4, 1)).astype(np.float32),
    }


def layer():
    return MultiChannelProjection(
        6,
        category_channels={"rating": 3, "genres": 5},
        id_channels={"item": 10},
        dense_channels={"interval": 1},
        category_dim=2,
        id_dim=3,
        activation="relu",
    )


def test_matches_numpy_reference(tmp_path):
    inputs = channels()
    mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]], np.float32)
    projection = layer()
    out = check_layer(projection, inputs, tmp_path).numpy()  # unmasked call for the harness
    masked = projection(inputs, mask=mask).numpy()
    t = {name: v.numpy() for name, v in projection.tables.items()}
    bag = (t["genres"][inputs["genres"]] * (inputs["genres"] > 0)[..., None]).sum(axis=2)  # sum of filled slots
    # Category, ID, dense parts; within a kind, channels by name (genres before rating).
    concat = np.concatenate([bag, t["rating"][inputs["rating"]], t["item"][inputs["item"]], inputs["interval"]], -1)
    y = concat @ projection.kernel.numpy() + projection.bias.numpy()
    y = (y - y.mean(-1, keepdims=True)) / np.sqrt(y.var(-1, keepdims=True) + 1e-6)  # layer norm (gamma 1, beta 0)
    expected = np.maximum(y, 0.0)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    np.testing.assert_allclose(masked, expected * mask[..., None], atol=1e-5)
    # The [MASK] id reads the extra last row of the table.
    assert t["genres"].shape == (6, 2) and t["item"].shape == (11, 3)


def test_channel_order_given_does_not_change_the_layer():
    # A run's config.json stores the channel mappings with sorted keys: the layer rebuilt
    # from it must compute what the layer built from the data's order computed.
    inputs = channels()
    given = layer()
    given(inputs)
    sorted_keys = MultiChannelProjection.from_config(
        {**given.get_config(), "category_channels": {"genres": 5, "rating": 3}}
    )
    sorted_keys(inputs)
    sorted_keys.set_weights(given.get_weights())
    np.testing.assert_allclose(sorted_keys(inputs).numpy(), given(inputs).numpy(), atol=1e-6)


def test_validation_messages():
    with pytest.raises(ValueError, match="Received: id_channels="):
        MultiChannelProjection(4, id_channels={"item": 0})
    with pytest.raises(ValueError, match="unique"):
        MultiChannelProjection(4, id_channels={"a": 3}, category_channels={"a": 3})
    with pytest.raises(ValueError, match="missing channels \\['interval'\\]"):
        inputs = channels()
        del inputs["interval"]
        layer()(inputs)


def test_sharded_table_lookup_equals_unsharded():
    """Under a variable partitioner the ID table is a ShardedVariable; lookups read it the same."""
    inputs = channels()
    plain = layer()
    expected = plain(inputs).numpy()
    # A ShardedVariable holding the same rows, split in 3: what a partitioner creates.
    rows = plain.tables["item"].numpy()
    shards = [tf.Variable(part) for part in np.array_split(rows, 3)]
    plain.tables["item"] = ShardedVariable(shards)
    np.testing.assert_allclose(plain(inputs).numpy(), expected, atol=1e-6)


def test_kernel_options_reach_the_projection_kernel_only():
    def make(**options):
        return MultiChannelProjection(
            6,
            category_channels={"rating": 3, "genres": 5},
            id_channels={"item": 10},
            dense_channels={"interval": 1},
            **options,
        )

    # W; the three channel tables, the bias and the layer norm keep their own.
    check_layer_kernel_knobs(make, channels(), 1)
