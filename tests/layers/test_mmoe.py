import numpy as np
import pytest
import tensorflow as tf

from tests.harness import check_layer
from tfzoo.layers import MultiGateMixtureOfExperts


def softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)


def test_each_task_mixes_the_shared_experts_with_its_own_gate(tmp_path):
    layer = MultiGateMixtureOfExperts(num_tasks=2, num_experts=3, expert_units=(4,), name="mmoe")
    x = tf.constant(np.random.default_rng(0).normal(size=(6, 5)), tf.float32)
    out = check_layer(layer, x, tmp_path)
    assert out.shape == (6, 2, 4)
    experts = layer.experts(x).numpy()  # [6, 3, 4]
    gates = softmax(np.einsum("bd,tde->bte", x.numpy(), layer.gate_kernel.numpy()) + layer.gate_bias.numpy())
    np.testing.assert_allclose(layer.gates(x), gates, atol=1e-6)
    np.testing.assert_allclose(gates.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(out, np.einsum("bte,beh->bth", gates, experts), atol=1e-5)


def test_uniform_gates_average_the_experts():
    layer = MultiGateMixtureOfExperts(num_tasks=1, num_experts=2, expert_units=(3,))
    x = tf.ones((2, 4))
    layer(x)
    layer.gate_kernel.assign(tf.zeros_like(layer.gate_kernel))  # logits 0 -> gates 1/2 each
    np.testing.assert_allclose(layer(x)[:, 0], layer.experts(x).numpy().mean(axis=1), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_tasks": 0, "num_experts": 2, "expert_units": (4,)}, "num_tasks=0"),
        ({"num_tasks": 2, "num_experts": 0, "expert_units": (4,)}, "num_experts=0"),
    ],
)
def test_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MultiGateMixtureOfExperts(**kwargs)
