"""SUPER-MoE's user behaviour encoder: MoETransformer(MFP(S)) (Jiang et al., ICML-W 2022, eq. 7)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from tfzoo.layers.backend import keras
from tfzoo.layers.kernel_options import check_kernel_options, kernel_options, kernel_options_config
from tfzoo.layers.moe_transformer_block import FFN_GATES, MoETransformerBlock
from tfzoo.layers.multi_channel_projection import MultiChannelProjection


@keras.utils.register_keras_serializable(package="tfzoo")
class MoESequenceEncoder(keras.layers.Layer):
    """A `MultiChannelProjection` followed by `num_blocks` `MoETransformerBlock`s.

    The padding mask comes from `padding_channel` (an ID or single-valued category
    channel): a step is real where its id is not 0 (the [MASK] id counts as real).
    `num_experts=1` gives the dense (BERT-style) encoder of the same shape.

    Args:
      units: model width d.
      category_channels, id_channels, dense_channels, category_dim, id_dim: see
        `MultiChannelProjection`.
      padding_channel: the channel whose zeros mark padding; default the first ID channel.
      num_blocks: transformer blocks.
      num_heads, key_dim, ffn_units, num_experts, attention_top_k, load_balance_weight,
        ffn_gate: see `MoETransformerBlock` ("switch", the default, or "paper": eq. 6's
        gate of 1).
      kernel_initializer, kernel_regularizer: a Keras initializer / regularizer of every
        dense kernel: the projection's W and the blocks' expert banks and attention
        output projections (None: each layer's default, no regularizer); the channels'
        embedding tables, the routers, biases and layer norms keep theirs
        (`tfzoo.layers.kernel_options`). Training choices rather than architecture:
        `SuperMoE` and `MaskedChannelPretrainer` take them as their own options, not in
        their `encoder` options.

    Call arguments:
      inputs: {channel name: tensor} as `MultiChannelProjection` takes them.

    Returns:
      h_o [batch, L, units], 0 at padding. `padding_mask(inputs)` gives the mask.
    """

    def __init__(
        self,
        units: int,
        *,
        category_channels: Mapping[str, int] | None = None,
        id_channels: Mapping[str, int] | None = None,
        dense_channels: Mapping[str, int] | None = None,
        category_dim: int = 8,
        id_dim: int = 16,
        padding_channel: str | None = None,
        num_blocks: int = 1,
        num_heads: int = 2,
        key_dim: int = 16,
        ffn_units: int = 64,
        num_experts: int = 4,
        attention_top_k: int = 1,
        load_balance_weight: float = 0.01,
        ffn_gate: str = "switch",
        kernel_initializer=None,
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_kernel_options(kernel_initializer, kernel_regularizer)
        self.units = int(units)
        # Sorted by name, as the projection concatenates them (any order given builds one model).
        self.category_channels = {str(k): int(v) for k, v in sorted(dict(category_channels or {}).items())}
        self.id_channels = {str(k): int(v) for k, v in sorted(dict(id_channels or {}).items())}
        self.dense_channels = {str(k): int(v) for k, v in sorted(dict(dense_channels or {}).items())}
        self.category_dim = int(category_dim)
        self.id_dim = int(id_dim)
        if padding_channel is None:
            if not self.id_channels:
                raise ValueError("Without ID channels, name the `padding_channel`. Received: padding_channel=None")
            padding_channel = next(iter(self.id_channels))
        if padding_channel not in {**self.category_channels, **self.id_channels}:
            raise ValueError(
                f"`padding_channel` must be an ID or category channel. Received: padding_channel={padding_channel!r}"
            )
        self.padding_channel = padding_channel
        if num_blocks < 1:
            raise ValueError(f"`num_blocks` must be >= 1. Received: num_blocks={num_blocks}")
        self.num_blocks = int(num_blocks)
        self.num_heads = int(num_heads)
        self.key_dim = int(key_dim)
        self.ffn_units = int(ffn_units)
        self.num_experts = int(num_experts)
        self.attention_top_k = int(attention_top_k)
        self.load_balance_weight = float(load_balance_weight)
        if ffn_gate not in FFN_GATES:
            raise ValueError(f"`ffn_gate` must be one of {FFN_GATES}. Received: ffn_gate={ffn_gate!r}")
        self.ffn_gate = ffn_gate
        self.kernel_initializer = kernel_initializer
        self.kernel_regularizer = kernel_regularizer

    def build(self, input_shape):
        self._channel_ranks = {name: len(tf.TensorShape(input_shape[name])) for name in self.category_channels}
        self.projection = MultiChannelProjection(
            self.units,
            category_channels=self.category_channels,
            id_channels=self.id_channels,
            dense_channels=self.dense_channels,
            category_dim=self.category_dim,
            id_dim=self.id_dim,
            name="projection",
            **kernel_options(self),
        )
        self.projection.build(input_shape)
        self.blocks = []
        for index in range(self.num_blocks):
            block = MoETransformerBlock(
                self.num_heads,
                self.key_dim,
                self.ffn_units,
                num_experts=self.num_experts,
                attention_top_k=self.attention_top_k,
                load_balance_weight=self.load_balance_weight,
                ffn_gate=self.ffn_gate,
                name=f"block_{index}",
                **kernel_options(self),
            )
            block.build(tf.TensorShape([None, None, self.units]))
            self.blocks.append(block)
        super().build(input_shape)

    def padding_mask(self, inputs) -> tf.Tensor:
        ids = tf.convert_to_tensor(inputs[self.padding_channel])  # [batch, L] or [batch, L, K]
        if ids.shape.rank == 3:
            ids = ids[:, :, 0]
        return tf.not_equal(ids, tf.zeros([], ids.dtype))  # [batch, L]

    @property
    def channel_ranks(self) -> dict[str, int]:
        """Rank of each category channel's ids as built (2: one id per step, 3: a bag)."""
        return dict(getattr(self, "_channel_ranks", {}))

    def call(self, inputs, training=None):
        valid = self.padding_mask(inputs)  # [batch, L]
        x = self.projection(inputs, mask=valid)  # [batch, L, d]
        for block in self.blocks:
            x = block(x, mask=valid, training=training)
        return x

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            units=self.units,
            category_channels=dict(self.category_channels),
            id_channels=dict(self.id_channels),
            dense_channels=dict(self.dense_channels),
            category_dim=self.category_dim,
            id_dim=self.id_dim,
            padding_channel=self.padding_channel,
            num_blocks=self.num_blocks,
            num_heads=self.num_heads,
            key_dim=self.key_dim,
            ffn_units=self.ffn_units,
            num_experts=self.num_experts,
            attention_top_k=self.attention_top_k,
            load_balance_weight=self.load_balance_weight,
            ffn_gate=self.ffn_gate,
            **kernel_options_config(self),
        )
        return config
