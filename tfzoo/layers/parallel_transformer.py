"""The parallel transformer block of PaLM (GRec eq. 4)."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from tfzoo.layers.backend import keras
from tfzoo.layers.kernel_options import check_kernel_options, kernel_options, kernel_options_config
from tfzoo.layers.multi_query_attention import MultiQueryAttention


@keras.utils.register_keras_serializable(package="tfzoo")
class ParallelTransformerBlock(keras.layers.Layer):
    """y = x + MLP(LayerNorm(x)) + Attention(LayerNorm(x)).

    Attention and feed-forward read the same normalised input and run side by side
    (one LayerNorm, as in PaLM) instead of one after the other (eq. 3), so their input
    projections can be fused and the block has one sequential step less. Attention is
    `MultiQueryAttention`.

    Args:
      num_heads: query heads.
      head_dim: width of each head; default d / num_heads.
      ffn_units: hidden width of the feed-forward; default 4 d.
      activation: feed-forward activation.
      dropout: dropout on the attention weights and on the block's update (both branches).
      kernel_initializer, kernel_regularizer: a Keras initializer / regularizer of every
        dense kernel: the attention's query, key, value and output kernels and both
        feed-forward kernels (None: Glorot uniform, no regularizer); biases and the layer
        norm keep theirs (`tfzoo.layers.kernel_options`).

    Call arguments:
      inputs: [batch, tokens, d].
      mask: optional [batch, tokens] marking real tokens: padding is never attended to,
        and padding positions are passed through unchanged.
      training: enables dropout.

    Returns:
      [batch, tokens, d].
    """

    def __init__(
        self,
        num_heads: int,
        *,
        head_dim: int | None = None,
        ffn_units: int | None = None,
        activation: str = "gelu",
        dropout: float = 0.0,
        kernel_initializer=None,
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_heads < 1:
            raise ValueError(f"`num_heads` must be >= 1. Received: num_heads={num_heads}")
        for name, value in (("head_dim", head_dim), ("ffn_units", ffn_units)):
            if value is not None and value < 1:
                raise ValueError(f"`{name}` must be >= 1 or None. Received: {name}={value}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
        check_kernel_options(kernel_initializer, kernel_regularizer)
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.ffn_units = ffn_units
        self.activation = activation
        self.dropout = dropout
        self.kernel_initializer = kernel_initializer
        self.kernel_regularizer = kernel_regularizer

    def build(self, input_shape):
        width = int(input_shape[-1])
        self.norm = keras.layers.LayerNormalization(epsilon=1e-6, name="norm")
        self.norm.build(input_shape)
        self.attention = MultiQueryAttention(
            self.num_heads,
            self.head_dim or max(1, width // self.num_heads),
            dropout=self.dropout,
            name="attention",
            **kernel_options(self),
        )
        self.attention.build(input_shape)
        self.ffn_hidden = keras.layers.Dense(
            self.ffn_units or 4 * width, activation=self.activation, name="ffn_hidden", **kernel_options(self)
        )
        self.ffn_hidden.build(input_shape)
        self.ffn_output = keras.layers.Dense(width, name="ffn_output", **kernel_options(self))
        self.ffn_output.build(tf.TensorShape(input_shape)[:-1].concatenate([self.ffn_units or 4 * width]))
        self._dropout = keras.layers.Dropout(self.dropout) if self.dropout else None
        super().build(input_shape)

    def call(self, inputs, mask=None, training=None):
        normed = self.norm(inputs)  # [batch, T, d]
        attended = self.attention(normed, mask=mask, training=training)  # [batch, T, d]
        fed = self.ffn_output(self.ffn_hidden(normed))  # [batch, T, d]
        update = attended + fed
        if self._dropout is not None:
            update = self._dropout(update, training=training)
        if mask is not None:
            update *= tf.cast(mask, update.dtype)[:, :, tf.newaxis]
        return inputs + update

    def compute_mask(self, inputs, mask=None):
        # Padding stays padding. A NumPy mask becomes a tensor; a symbolic one (a Keras 3
        # functional model's) is handed on as it is.
        return tf.convert_to_tensor(mask) if isinstance(mask, np.ndarray) else mask

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            head_dim=self.head_dim,
            ffn_units=self.ffn_units,
            activation=self.activation,
            dropout=self.dropout,
            **kernel_options_config(self),
        )
        return config
