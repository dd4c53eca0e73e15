import numpy as np
import pytest

from tests.harness import check_layer, check_layer_kernel_knobs
from tfzoo.layers import MoESequenceEncoder


def test_projection_then_blocks_with_padding(tmp_path):
    rng = np.random.default_rng(0)
    item = rng.integers(1, 20, size=(3, 5))
    item[0, 3:] = 0  # padding
    inputs = {
        "item": item,
        "rating": rng.integers(1, 6, size=(3, 5)),
        "interval": rng.normal(size=(3, 5, 1)).astype(np.float32),
    }
    encoder = MoESequenceEncoder(
        8,
        id_channels={"item": 20},
        category_channels={"rating": 5},
        dense_channels={"interval": 1},
        num_blocks=2,
        num_heads=2,
        key_dim=4,
        ffn_units=16,
        num_experts=3,
    )
    out = check_layer(encoder, inputs, tmp_path).numpy()
    valid = encoder.padding_mask(inputs).numpy()
    x = encoder.projection(inputs, mask=valid)
    for block in encoder.blocks:
        x = block(x, mask=valid)
    np.testing.assert_allclose(out, x.numpy(), atol=1e-5)
    assert np.all(out[0, 3:] == 0.0) and np.all(np.abs(out[0, :3]).sum(-1) > 0)


def test_validation():
    with pytest.raises(ValueError, match="Received: padding_channel='interval'"):
        MoESequenceEncoder(8, id_channels={"item": 5}, dense_channels={"interval": 1}, padding_channel="interval")
    with pytest.raises(ValueError, match="Received: ffn_gate='top1'"):
        MoESequenceEncoder(8, id_channels={"item": 5}, ffn_gate="top1")


def test_paper_gate_reaches_every_block(tmp_path):
    inputs = {"item": np.array([[1, 2, 0], [3, 4, 5]])}
    encoder = MoESequenceEncoder(
        8, id_channels={"item": 6}, num_blocks=2, num_heads=1, key_dim=4, ffn_units=8, num_experts=2, ffn_gate="paper"
    )
    check_layer(encoder, inputs, tmp_path)
    assert encoder.get_config()["ffn_gate"] == "paper"
    assert all(block.ffn_gate == "paper" and block.feed_forward.normalize_gates for block in encoder.blocks)


def test_kernel_options_reach_the_projection_and_every_block():
    inputs = {"item": np.array([[1, 2, 0], [3, 4, 5]]), "rating": np.array([[1, 2, 0], [3, 4, 1]])}

    def make(**options):
        return MoESequenceEncoder(
            8,
            id_channels={"item": 6},
            category_channels={"rating": 5},
            num_blocks=2,
            num_heads=1,
            key_dim=4,
            ffn_units=8,
            num_experts=2,
            **options,
        )

    # The projection's W (1); per block the Q / K / V expert banks, the attention output and
    # the feed-forward experts' two layers (6). Tables and routers keep their own.
    check_layer_kernel_knobs(make, inputs, 1 + 2 * 6)
