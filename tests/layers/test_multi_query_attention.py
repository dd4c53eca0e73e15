import numpy as np

from tests.harness import check_layer, check_layer_kernel_knobs
from tfzoo.layers import MultiQueryAttention


def test_heads_share_one_key_and_value_and_skip_padding(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 6)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], np.float32)
    layer = MultiQueryAttention(num_heads=3, head_dim=2, name="mqa")
    out = check_layer(layer, x, tmp_path, mask=mask).numpy()
    assert layer.key_kernel.shape == (6, 2) and layer.value_kernel.shape == (6, 2)  # one K/V head

    wq = layer.query_kernel.numpy().reshape(6, 3, 2)
    wo = layer.output_kernel.numpy().reshape(3, 2, 6)
    k, v = x @ layer.key_kernel.numpy(), x @ layer.value_kernel.numpy()  # [b, t, 2]
    expected = np.zeros_like(out)
    for b in range(2):
        for h in range(3):
            q = x[b] @ wq[:, h]  # [t, 2]
            scores = q @ k[b].T / np.sqrt(2) + (1 - mask[b])[None] * -1e9
            weights = np.exp(scores - scores.max(-1, keepdims=True))
            weights /= weights.sum(-1, keepdims=True)
            expected[b] += (weights @ v[b]) @ wo[h]
    np.testing.assert_allclose(out, expected + layer.output_bias.numpy(), atol=1e-5)
    # Padding keys are ignored: changing them changes nothing at real positions.
    changed = x.copy()
    changed[0, 3] += 10.0
    np.testing.assert_allclose(layer(changed, mask=mask).numpy()[0, :3], out[0, :3], atol=1e-5)


def test_kernel_options_reach_the_four_kernels():
    x = np.random.default_rng(0).normal(size=(2, 4, 6)).astype(np.float32)
    # Query, key, value and output kernels; the output bias keeps its zeros.
    check_layer_kernel_knobs(lambda **options: MultiQueryAttention(num_heads=3, head_dim=2, **options), x, 4)
