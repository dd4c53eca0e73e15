import numpy as np
import pytest
import tensorflow as tf

from tests.harness import check_layer
from tfzoo.layers import MLP


def test_round_trips_and_matches_numpy(tmp_path):
    layer = MLP((3, 2), activation="relu", name="mlp")
    x = tf.constant(np.random.default_rng(0).normal(size=(4, 5)), tf.float32)
    out = check_layer(layer, x, tmp_path)
    (k0, b0), (k1, b1) = [(d.kernel.numpy(), d.bias.numpy()) for d in layer._dense]
    expected = np.maximum(np.maximum(x.numpy() @ k0 + b0, 0) @ k1 + b1, 0)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_kernel_initializer_and_regularizer_reach_every_layer(tmp_path):
    layer = MLP((3, 2), kernel_initializer="ones", kernel_regularizer=tf.keras.regularizers.L2(0.5), name="knobs")
    check_layer(layer, tf.ones((2, 4)), tmp_path)
    assert all(np.all(d.kernel.numpy() == 1.0) for d in layer._dense)
    # 0.5 * (4 * 3 + 3 * 2) ones squared.
    assert float(tf.add_n(layer.losses)) == pytest.approx(0.5 * (12 + 6))
    with pytest.raises(ValueError, match="Received: kernel_regularizer='l3'"):
        MLP((3,), kernel_regularizer="l3")
    with pytest.raises(ValueError, match="Received: kernel_initializer='nope'"):
        MLP((3,), kernel_initializer="nope")


def test_dropout_only_in_training():
    layer = MLP((64,), dropout=0.5)
    x = tf.ones((8, 4))
    np.testing.assert_allclose(layer(x, training=False), layer(x, training=False))
    assert not np.allclose(layer(x, training=True), layer(x, training=False))


@pytest.mark.parametrize(
    "kwargs, message", [({"units": ()}, "units=()"), ({"units": (4,), "dropout": 1.0}, "dropout=1.0")]
)
def test_validation(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        MLP(**kwargs)
