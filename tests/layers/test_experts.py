import numpy as np
import pytest
import tensorflow as tf

from tfzoo.layers import Experts
from tests.harness import check_layer


def reference(x, kernels, biases):
    # x [batch, d] -> [batch, E, h], every expert applied on its own weights.
    outputs = []
    for e in range(kernels[0].shape[0]):
        h = x
        for k, b in zip(kernels, biases):
            h = np.maximum(h @ k[e] + b[e], 0.0)
        outputs.append(h)
    return np.stack(outputs, axis=1)


def test_dense_layout_matches_per_expert_numpy(tmp_path):
    layer = Experts(3, (4, 2), name="experts")
    x = tf.constant(np.random.default_rng(1).normal(size=(5, 6)), tf.float32)
    out = check_layer(layer, x, tmp_path)
    assert out.shape == (5, 3, 2)
    kernels = [k.numpy() for k in layer.kernels]
    biases = [b.numpy() for b in layer.biases]
    np.testing.assert_allclose(out, reference(x.numpy(), kernels, biases), atol=1e-5)


def test_expert_major_layout_gives_each_expert_its_own_rows():
    layer = Experts(2, (3,))
    x = np.random.default_rng(2).normal(size=(4, 5)).astype(np.float32)
    dense = layer(tf.constant(x)).numpy()  # [4, 2, 3]
    # Expert 0 sees rows 0 and 1, expert 1 sees rows 2 and 3.
    dispatched = layer(tf.constant(np.stack([x[:2], x[2:]])), expert_major=True).numpy()  # [2, 2, 3]
    np.testing.assert_allclose(dispatched[0], dense[:2, 0], atol=1e-6)
    np.testing.assert_allclose(dispatched[1], dense[2:, 1], atol=1e-6)


def test_initialisation_is_scaled_per_expert():
    layer = Experts(64, (32,))
    layer.build([None, 32])
    # Glorot over one expert's [32, 32] kernel: limit sqrt(6 / 64), std = limit / sqrt(3).
    assert layer.kernels[0].numpy().std() == pytest.approx(np.sqrt(6 / 64) / np.sqrt(3), rel=0.05)


def test_validation():
    with pytest.raises(ValueError, match="num_experts=0"):
        Experts(0, (4,))
