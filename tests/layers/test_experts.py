import numpy as np
import pytest
import tensorflow as tf

from tests.harness import check_layer
from tfzoo.layers import Experts


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


def test_seeded_initializer_is_applied_per_expert_and_experts_differ(tmp_path):
    layer = Experts(
        8, (16,), kernel_initializer=tf.keras.initializers.HeNormal(seed=3), kernel_regularizer="l2", name="he"
    )
    check_layer(layer, tf.ones((2, 16)), tmp_path)  # the initializer and regularizer round-trip
    kernel = layer.kernels[0].numpy()  # [8, 16, 16]
    # He normal over one expert's fan-in (16), not the bank's (8 * 16) ...
    assert kernel.std() == pytest.approx(np.sqrt(2 / 16), rel=0.1)  # the bank's fans would give sqrt(2 / 128)
    # ... and a seeded initializer does not give every expert the same start.
    assert not np.allclose(kernel[0], kernel[1])


def test_kernel_regularizer_adds_its_penalty_to_the_layer_losses():
    layer = Experts(3, (4, 2), kernel_regularizer=tf.keras.regularizers.L2(0.1))
    layer(tf.ones((2, 5)))
    expected = 0.1 * sum(float(np.square(k.numpy()).sum()) for k in layer.kernels)
    assert float(tf.add_n(layer.losses)) == pytest.approx(expected, rel=1e-5)
    assert Experts(3, (4,)).losses == []
    with pytest.raises(ValueError, match="Received: kernel_regularizer='l3'"):
        Experts(3, (4,), kernel_regularizer="l3")


def test_validation():
    with pytest.raises(ValueError, match="num_experts=0"):
        Experts(0, (4,))


def numpy_expert(experts, e, x, activate_output=True):
    for i, (kernel, bias) in enumerate(zip(experts.kernels, experts.biases)):
        x = x @ kernel.numpy()[e] + bias.numpy()[e]
        if i < len(experts.kernels) - 1 or activate_output:
            x = np.maximum(x, 0.0)
    return x


def test_selected_experts_run_each_unit_through_its_own_k_experts():
    x = np.random.default_rng(0).normal(size=(4, 4)).astype(np.float32)
    experts = Experts(3, (6, 2), activate_output=False)
    # Unit 0 (rows 0-1) through experts (2, 0), unit 1 (rows 2-3) through (1, 1).
    units = x.reshape(2, 2, 4)
    selected = experts(units, expert_indices=np.array([[2, 0], [1, 1]])).numpy()  # [units, k, rows, h]
    assert selected.shape == (2, 2, 2, 2)
    np.testing.assert_allclose(selected[0, 0], numpy_expert(experts, 2, x[:2], activate_output=False), atol=1e-5)
    np.testing.assert_allclose(selected[0, 1], numpy_expert(experts, 0, x[:2], activate_output=False), atol=1e-5)
    np.testing.assert_allclose(selected[1, 1], numpy_expert(experts, 1, x[2:4], activate_output=False), atol=1e-5)


@pytest.mark.parametrize("num_units", [3, 40])  # one-row blocks, and blocks of several units with padding
def test_grouped_dispatch_equals_per_unit_experts_and_skips_invalid_units(num_units):
    rng = np.random.default_rng(num_units)
    experts = Experts(4, (5, 3))
    units = rng.normal(size=(num_units, 2, 6)).astype(np.float32)  # [units, rows, d]
    indices = np.stack([rng.choice(4, 2, replace=False) for _ in range(num_units)])  # [units, k]
    valid = np.arange(num_units) % 3 != 1
    out = experts.grouped(tf.constant(units), tf.constant(indices), tf.constant(valid)).numpy()
    assert out.shape == (num_units, 2, 2, 3)
    for u in range(num_units):
        for j in range(2):
            expected = numpy_expert(experts, indices[u, j], units[u]) if valid[u] else np.zeros((2, 3))
            np.testing.assert_allclose(out[u, j], expected, atol=1e-5)
    # Without `valid` every unit is computed; under tf.function with unknown batch too.
    traced = tf.function(
        experts.grouped, input_signature=[tf.TensorSpec([None, 2, 6]), tf.TensorSpec([None, 2], tf.int32)]
    )
    np.testing.assert_allclose(
        traced(units, indices.astype(np.int32)).numpy()[1, 0], numpy_expert(experts, indices[1, 0], units[1]), atol=1e-5
    )
