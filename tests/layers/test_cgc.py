import numpy as np
import pytest
import tensorflow as tf

from tests.harness import check_layer
from tfzoo.layers import CustomizedGateControl


def softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)


def relu_experts(x, kernel, bias):
    return np.maximum(np.einsum("bd,edh->beh", x, kernel) + bias, 0.0)  # [batch, E, h]


@pytest.mark.parametrize("shared_output", [False, True])
def test_matches_numpy_reference(tmp_path, shared_output):
    t, m, s = 2, 2, 1
    layer = CustomizedGateControl(t, m, s, (3,), shared_output=shared_output, name="cgc")
    rng = np.random.default_rng(0)
    streams = rng.normal(size=(4, t + 1, 5)).astype(np.float32)
    out = check_layer(layer, tf.constant(streams), tmp_path).numpy()

    task_kernel, task_bias = layer.task_experts.kernels[0].numpy(), layer.task_experts.biases[0].numpy()
    shared = relu_experts(
        streams[:, t], layer.shared_experts.kernels[0].numpy(), layer.shared_experts.biases[0].numpy()
    )
    own = [
        relu_experts(streams[:, i], task_kernel[i * m : (i + 1) * m], task_bias[i * m : (i + 1) * m]) for i in range(t)
    ]
    for i in range(t):
        gate = softmax(streams[:, i] @ layer.gate_kernel.numpy()[i] + layer.gate_bias.numpy()[i])  # [batch, m+s]
        expected = np.einsum("be,beh->bh", gate, np.concatenate([own[i], shared], axis=1))
        np.testing.assert_allclose(out[:, i], expected, atol=1e-5)
    if shared_output:
        assert out.shape == (4, t + 1, 3)
        every = np.concatenate(own + [shared], axis=1)
        gate = layer.shared_gate(tf.constant(streams[:, t])).numpy()
        np.testing.assert_allclose(out[:, t], np.einsum("be,beh->bh", gate, every), atol=1e-5)
    else:
        assert out.shape == (4, t, 3)


def test_rank_2_input_feeds_every_stream():
    layer = CustomizedGateControl(2, 1, 1, (3,))
    x = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_allclose(layer(tf.constant(x)), layer(tf.constant(np.repeat(x[:, None], 3, axis=1))), atol=1e-6)


def test_validation():
    with pytest.raises(ValueError, match="num_task_experts=0"):
        CustomizedGateControl(2, 0, 1, (3,))
