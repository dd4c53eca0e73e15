import numpy as np
import pytest

from tests.harness import check_layer, check_layer_kernel_knobs
from tfzoo.layers import MoEMultiHeadSelfAttention


def softmax(x, axis=-1):
    z = np.exp(x - x.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def moe_projection(moe, x):
    """NumPy top-1 token MoE with linear experts: p_e(x) (x W_e + b_e), e = argmax p."""
    router = moe._router_layer
    p = softmax(x @ router.kernel.numpy() + router.bias.numpy())  # [b, L, E]
    e = p.argmax(-1)  # [b, L]
    kernel, bias = moe.experts.kernels[0].numpy(), moe.experts.biases[0].numpy()
    out = np.einsum("bld,bldh->blh", x, kernel[e]) + bias[e]
    return out * np.take_along_axis(p, e[..., None], -1)


def test_matches_numpy_reference_with_padding(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 6)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], np.float32)
    attention = MoEMultiHeadSelfAttention(2, 3, num_experts=3, top_k=1)
    out = check_layer(attention, x, tmp_path, mask=mask).numpy()
    q, k, v = (
        moe_projection(m, x).reshape(2, 5, 2, 3) for m in (attention.query_moe, attention.key_moe, attention.value_moe)
    )
    scores = np.einsum("bqhk,bshk->bhqs", q, k) / np.sqrt(3) + (1 - mask)[:, None, None, :] * -1e9
    context = np.einsum("bhqs,bshk->bqhk", softmax(scores), v).reshape(2, 5, 6)
    dense = attention.output_dense
    expected = (context @ dense.kernel.numpy() + dense.bias.numpy()) * mask[..., None]
    np.testing.assert_allclose(out, expected, atol=1e-5)
    # Padding changes nothing at the real steps.
    x2 = x.copy()
    x2[0, 3:] = 100.0
    np.testing.assert_allclose(attention(x2, mask=mask).numpy()[0, :3], out[0, :3], atol=1e-4)


def test_one_expert_is_dense_attention_and_training_adds_balance_losses():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 4, 4)).astype(np.float32)
    dense = MoEMultiHeadSelfAttention(1, 4, num_experts=1)
    dense(x)
    kernel = dense.query_moe.experts.kernels[0].numpy()[0]
    np.testing.assert_allclose(
        moe_projection(dense.query_moe, x), x @ kernel + dense.query_moe.experts.biases[0].numpy()[0], atol=1e-5
    )
    sparse = MoEMultiHeadSelfAttention(1, 4, num_experts=4)
    sparse(x, training=True)
    assert len(sparse.losses) == 3  # one load-balancing loss per projection


def test_validation():
    with pytest.raises(ValueError, match="Received: top_k=3"):
        MoEMultiHeadSelfAttention(2, 4, num_experts=2, top_k=3)


def test_kernel_options_reach_the_expert_banks_and_the_output():
    x = np.random.default_rng(0).normal(size=(2, 5, 6)).astype(np.float32)
    # The query, key and value expert banks and the output projection; not the routers.
    check_layer_kernel_knobs(lambda **options: MoEMultiHeadSelfAttention(2, 3, num_experts=3, **options), x, 4)
