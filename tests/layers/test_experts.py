import numpy as np

from tests.harness import check_layer
from tfzoo.layers import Experts


def numpy_expert(experts, e, x, activate_output=True):
    for i, (kernel, bias) in enumerate(zip(experts.kernels, experts.biases)):
        x = x @ kernel.numpy()[e] + bias.numpy()[e]
        if i < len(experts.kernels) - 1 or activate_output:
            x = np.maximum(x, 0.0)
    return x


def test_three_layouts_agree_with_numpy(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 4)).astype(np.float32)
    experts = Experts(3, (6, 2), activate_output=False)
    dense = check_layer(experts, x, tmp_path).numpy()  # [batch, E, h]
    for e in range(3):
        np.testing.assert_allclose(dense[:, e], numpy_expert(experts, e, x, activate_output=False), atol=1e-5)
    # Expert-major: expert e sees only its own rows.
    major = experts(np.stack([x, x[::-1], x]), expert_major=True).numpy()
    np.testing.assert_allclose(major[1], numpy_expert(experts, 1, x[::-1], activate_output=False), atol=1e-5)
    # Selected experts per unit: unit 0 (rows 0-1) through experts (2, 0), unit 1 through (1, 1).
    units = x[:4].reshape(2, 2, 4)
    selected = experts(units, expert_indices=np.array([[2, 0], [1, 1]])).numpy()  # [units, k, rows, h]
    assert selected.shape == (2, 2, 2, 2)
    np.testing.assert_allclose(selected[0, 0], numpy_expert(experts, 2, x[:2], activate_output=False), atol=1e-5)
    np.testing.assert_allclose(selected[1, 1], numpy_expert(experts, 1, x[2:4], activate_output=False), atol=1e-5)
