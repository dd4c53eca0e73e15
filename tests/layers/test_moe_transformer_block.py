import numpy as np
import pytest

from tests.harness import check_layer
from tfzoo.layers import MoETransformerBlock


def softmax(x):
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def layer_norm(x, norm):
    y = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + norm.epsilon)
    return y * norm.gamma.numpy() + norm.beta.numpy()


def switch_ffn(moe, x):
    """Eq. 6 with top-1: p_e(x) * w_o relu(w_i x) for e = argmax p (Switch, gate not renormalised)."""
    router = moe._router_layer
    p = softmax(x @ router.kernel.numpy() + router.bias.numpy())  # [b, L, E]
    e = p.argmax(-1)
    (wi, wo), (bi, bo) = [k.numpy() for k in moe.experts.kernels], [b.numpy() for b in moe.experts.biases]
    hidden = np.maximum(np.einsum("bld,bldh->blh", x, wi[e]) + bi[e], 0.0)
    return (np.einsum("blh,blhd->bld", hidden, wo[e]) + bo[e]) * np.take_along_axis(p, e[..., None], -1)


def test_matches_numpy_reference(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 6)).astype(np.float32)
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], np.float32)
    block = MoETransformerBlock(2, 3, 8, num_experts=3)
    out = check_layer(block, x, tmp_path, mask=mask).numpy()
    attended = block.attention(x, mask=mask).numpy()  # its own NumPy check: test_moe_self_attention
    h = layer_norm(x + attended, block.attention_norm)
    expected = layer_norm(h + switch_ffn(block.feed_forward, h) * mask[..., None], block.ffn_norm) * mask[..., None]
    np.testing.assert_allclose(out, expected, atol=1e-4)
    assert np.all(out[0, 2:] == 0.0)


def test_training_adds_load_balancing_losses():
    block = MoETransformerBlock(2, 3, 8, num_experts=4, load_balance_weight=0.5)
    x = np.random.default_rng(0).normal(size=(2, 4, 6)).astype(np.float32)
    block(x, training=True)
    assert len(block.losses) == 4  # Q, K, V and FFN mixtures
    # Each is 0.5 * E * sum_e f_e P_e >= 0.5 (equality when perfectly balanced).
    assert all(float(loss) >= 0.5 - 1e-6 for loss in block.losses)


def test_validation():
    with pytest.raises(ValueError, match="Received: ffn_units=0"):
        MoETransformerBlock(2, 3, 0)
