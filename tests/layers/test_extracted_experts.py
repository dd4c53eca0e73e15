import numpy as np
import pytest

from tests.harness import check_layer
from tfzoo.layers import ExtractedExperts


def test_fixed_routes_mix_their_experts_with_their_gates(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 2, 4)).astype(np.float32)
    layer = ExtractedExperts(
        (5,), route_experts=[[0, 2], [1, 2]], route_gates=[[0.75, 0.25], [0.5, 0.5]], name="extracted"
    )
    out = check_layer(layer, x, tmp_path, route=1).numpy()
    kernel, bias = layer.experts.kernels[0].numpy(), layer.experts.biases[0].numpy()
    expert = [np.maximum(x @ kernel[e] + bias[e], 0.0) for e in range(3)]
    np.testing.assert_allclose(out, 0.5 * expert[1] + 0.5 * expert[2], atol=1e-5)
    per_row = layer(x, route=np.array([0, 1, 0])).numpy()
    np.testing.assert_allclose(per_row[0], (0.75 * expert[0] + 0.25 * expert[2])[0], atol=1e-5)
    np.testing.assert_allclose(per_row[1], out[1], atol=1e-5)
    with pytest.raises(ValueError, match="route"):
        layer(x, route=2)
    with pytest.raises(ValueError, match="same non-zero number"):
        ExtractedExperts((5,), route_experts=[[0, 1]], route_gates=[[1.0]])
