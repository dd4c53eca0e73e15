import numpy as np

from tests.harness import check_layer
from tfzoo.layers import MultiGateMixtureOfExperts


def test_each_task_mixes_every_expert_with_its_own_softmax_gate(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3)).astype(np.float32)
    layer = MultiGateMixtureOfExperts(2, 3, (5,), name="mmoe")
    out = check_layer(layer, x, tmp_path).numpy()  # [batch, tasks, h]
    experts = layer.mixture.experts
    every = np.stack([np.maximum(x @ experts.kernels[0].numpy()[e] + experts.biases[0].numpy()[e], 0) for e in range(3)], 1)
    gates = layer.gates(x).numpy()  # [batch, tasks, experts]
    np.testing.assert_allclose(gates.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(out, np.einsum("bte,beh->bth", gates, every), atol=1e-5)
    assert layer.get_config()["num_tasks"] == 2 and out.shape == (4, 2, 5)
