"""Multi-query attention: h query heads, one key/value head (Shazeer 2019; PaLM; GRec eq. 1-2)."""

from __future__ import annotations

import math
from typing import Any

import tensorflow as tf

from tfzoo.layers.backend import keras
from tfzoo.layers.kernel_options import check_kernel_options, kernel_options, kernel_options_config


@keras.utils.register_keras_serializable(package="tfzoo")
class MultiQueryAttention(keras.layers.Layer):
    """Scaled dot-product attention whose h query heads share one key and one value head.

    Q is projected to [h, head_dim] per position, K and V to [1, head_dim]:
    head_i = softmax(Q_i K^T / sqrt(head_dim)) V, output = concat(head_1..h) W^O.
    Sharing K/V cuts the K/V projections and the K/V cache by a factor h.

    Args:
      num_heads: number of query heads h.
      head_dim: width of each head (and of the shared key / value).
      output_dim: width of the output; default the query's width.
      dropout: dropout on the attention weights.
      kernel_initializer, kernel_regularizer: a Keras initializer / regularizer of the
        query, key, value and output kernels (None: Glorot uniform, no regularizer); the
        output bias keeps its zeros (`tfzoo.layers.kernel_options`).

    Call arguments:
      query: [batch, T_q, d].
      value: [batch, T_k, d_v] to attend to; default `query` (self-attention).
      mask: optional [batch, T_k] (bool or 0/1), False/0 marking padding keys that no
        query may attend to. A query whose keys are all padding attends uniformly
        (its output is meaningless and should itself be masked downstream).
      training: enables dropout.

    Returns:
      [batch, T_q, output_dim].
    """

    def __init__(
        self,
        num_heads: int,
        head_dim: int,
        *,
        output_dim: int | None = None,
        dropout: float = 0.0,
        kernel_initializer=None,
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_heads < 1:
            raise ValueError(f"`num_heads` must be >= 1. Received: num_heads={num_heads}")
        if head_dim < 1:
            raise ValueError(f"`head_dim` must be >= 1. Received: head_dim={head_dim}")
        if output_dim is not None and output_dim < 1:
            raise ValueError(f"`output_dim` must be >= 1 or None. Received: output_dim={output_dim}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
        check_kernel_options(kernel_initializer, kernel_regularizer)
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.output_dim = output_dim
        self.dropout = dropout
        self.kernel_initializer = kernel_initializer
        self.kernel_regularizer = kernel_regularizer

    def build(self, input_shape):
        width = int(input_shape[-1])
        h, k = self.num_heads, self.head_dim
        out = self.output_dim or width

        # Query and output kernels are stored 2-D so that Glorot (or any fan-based
        # initializer given) sees their true fans.
        def kernel(name, shape):
            # `kernel_options` copies an initializer object at each call: the key and value
            # kernels (one shape) must not start alike.
            initializer = kernel_options(self).get("kernel_initializer", "glorot_uniform")
            return self.add_weight(name=name, shape=shape, initializer=initializer, regularizer=self.kernel_regularizer)

        self.query_kernel = kernel("query_kernel", (width, h * k))
        self.key_kernel = kernel("key_kernel", (width, k))
        self.value_kernel = kernel("value_kernel", (width, k))
        self.output_kernel = kernel("output_kernel", (h * k, out))
        self.output_bias = self.add_weight(name="output_bias", shape=(out,), initializer="zeros")
        self._dropout = keras.layers.Dropout(self.dropout) if self.dropout else None
        super().build(input_shape)

    def attention_weights(self, query, value=None, mask=None):
        """Softmax attention weights, [batch, h, T_q, T_k]."""
        value = query if value is None else value
        query_kernel = tf.reshape(self.query_kernel, [-1, self.num_heads, self.head_dim])  # [d, h, head_dim]
        q = tf.einsum("btd,dhk->bthk", query, query_kernel)  # [batch, T_q, h, head_dim]
        k = tf.einsum("bsd,dk->bsk", value, self.key_kernel)  # [batch, T_k, head_dim]: one head for all queries
        scores = tf.einsum("bthk,bsk->bhts", q, k) / math.sqrt(self.head_dim)  # [batch, h, T_q, T_k]
        # The softmax in float32 under every dtype policy (-1e9 overflows float16).
        scores = tf.cast(scores, tf.float32)
        if mask is not None:
            padding = 1.0 - tf.cast(mask, tf.float32)  # [batch, T_k]
            scores += padding[:, tf.newaxis, tf.newaxis, :] * -1e9
        return tf.cast(tf.nn.softmax(scores, axis=-1), q.dtype)

    def call(self, query, value=None, mask=None, training=None):
        value = query if value is None else value
        weights = self.attention_weights(query, value, mask)  # [batch, h, T_q, T_k]
        if self._dropout is not None:
            weights = self._dropout(weights, training=training)
        v = tf.einsum("bsd,dk->bsk", value, self.value_kernel)  # [batch, T_k, head_dim]
        heads = tf.einsum("bhts,bsk->bthk", weights, v)  # [batch, T_q, h, head_dim]
        output_kernel = tf.reshape(self.output_kernel, [self.num_heads, self.head_dim, -1])  # [h, head_dim, out]
        return tf.einsum("bthk,hko->bto", heads, output_kernel) + self.output_bias  # [batch, T_q, out]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            head_dim=self.head_dim,
            output_dim=self.output_dim,
            dropout=self.dropout,
            **kernel_options_config(self),
        )
        return config
