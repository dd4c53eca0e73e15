import numpy as np

from tests.harness import check_layer, check_layer_kernel_knobs
from tfzoo.layers import ParallelTransformerBlock


def test_attention_and_feed_forward_read_the_same_normalised_input(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 8)).astype(np.float32)
    mask = np.array([[1, 1, 1], [1, 1, 0]], np.float32)
    block = ParallelTransformerBlock(num_heads=2, ffn_units=16, name="parallel_block")
    out = check_layer(block, x, tmp_path, mask=mask).numpy()
    normed = block.norm(x)
    expected = (
        x + block.attention(normed, mask=mask).numpy() + block.ffn_output(block.ffn_hidden(normed)).numpy()
    )  # eq. 4
    np.testing.assert_allclose(out[mask > 0], expected[mask > 0], atol=1e-5)
    np.testing.assert_allclose(out[1, 2], x[1, 2])  # padding passes through
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    np.testing.assert_allclose(normed.numpy(), (x - mean) / np.sqrt(var + 1e-6), atol=1e-4)  # one LayerNorm


def test_kernel_options_reach_attention_and_feed_forward():
    x = np.random.default_rng(0).normal(size=(2, 3, 8)).astype(np.float32)
    mask = np.array([[1, 1, 1], [1, 1, 0]], np.float32)
    # The attention's four kernels and the feed-forward's two; the layer norm keeps its own.
    check_layer_kernel_knobs(
        lambda **options: ParallelTransformerBlock(num_heads=2, ffn_units=16, **options), x, 6, mask=mask
    )
