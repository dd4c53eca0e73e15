"""MoE multi-head self-attention of SUPER-MoE (Jiang et al., ICML-W 2022, eq. 5)."""

from __future__ import annotations

import math
from typing import Any

import tensorflow as tf

from tfzoo.layers.backend import keras
from tfzoo.layers.kernel_options import check_kernel_options, kernel_options, kernel_options_config
from tfzoo.layers.moe import MixtureOfExperts


@keras.utils.register_keras_serializable(package="tfzoo")
class MoEMultiHeadSelfAttention(keras.layers.Layer):
    """softmax((q w^q G_q(q)) (k w^k G_k(k))^T / sqrt(d_k)) (v w^v G_v(v)), per head.

    The query, key and value projections are each a token-routed `MixtureOfExperts`
    whose experts are linear maps d -> heads * key_dim: every token picks its own top-k
    projection of each kind. The heads are concatenated and mapped back to d by an
    output projection (as in any multi-head attention). With `num_experts=1` the gates
    are softmax of one logit, i.e. 1, and the layer is a dense multi-head attention
    (the BERT baseline).

    With `top_k=1` the kept gate is the router probability itself (Switch Transformer,
    no renormalisation), so the router learns from the task loss as well as from the
    load-balancing loss that each mixture adds in training.

    Args:
      num_heads: attention heads.
      key_dim: width of each head.
      num_experts: experts per projection.
      top_k: experts per token.
      load_balance_weight: weight of each mixture's load-balancing loss.
      kernel_initializer, kernel_regularizer: a Keras initializer / regularizer of every
        dense kernel: the query, key and value expert banks and the output projection
        (None: Glorot uniform, per expert in the banks; no regularizer); the routers and
        biases keep theirs (`tfzoo.layers.kernel_options`).

    Call arguments:
      inputs: [batch, L, d].
      mask: optional [batch, L] (bool or 0/1), False/0 at padding: padded keys get no
        attention, padded queries output 0, and padding takes no part in routing.

    Returns:
      [batch, L, d].
    """

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        *,
        num_experts: int = 4,
        top_k: int = 1,
        load_balance_weight: float = 0.01,
        kernel_initializer=None,
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_heads < 1 or key_dim < 1:
            raise ValueError(
                f"`num_heads` and `key_dim` must be >= 1. Received: num_heads={num_heads}, key_dim={key_dim}"
            )
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"`top_k` must be in [1, num_experts={num_experts}]. Received: top_k={top_k}")
        check_kernel_options(kernel_initializer, kernel_regularizer)
        self.num_heads = int(num_heads)
        self.key_dim = int(key_dim)
        self.num_experts = int(num_experts)
        self.top_k = int(top_k)
        self.load_balance_weight = float(load_balance_weight)
        self.kernel_initializer = kernel_initializer
        self.kernel_regularizer = kernel_regularizer

    def build(self, input_shape):
        width = int(input_shape[-1])

        def projection(name):
            moe = MixtureOfExperts(
                self.num_experts,
                (self.num_heads * self.key_dim,),
                router="token",
                top_k=self.top_k,
                normalize_gates=self.top_k > 1,
                load_balance_weight=self.load_balance_weight,
                activate_output=False,
                expert_options=kernel_options(self),
                name=name,
            )
            moe.build(tf.TensorShape([None, None, width]))
            return moe

        self.query_moe, self.key_moe, self.value_moe = (
            projection("query_moe"),
            projection("key_moe"),
            projection("value_moe"),
        )
        self.output_dense = keras.layers.Dense(width, name="output", **kernel_options(self))
        self.output_dense.build([None, None, self.num_heads * self.key_dim])
        super().build(input_shape)

    def _heads(self, x):
        shape = tf.shape(x)
        return tf.reshape(x, [shape[0], shape[1], self.num_heads, self.key_dim])  # [batch, L, H, k]

    def call(self, inputs, mask=None, training=None):
        valid = None if mask is None else tf.cast(mask, tf.bool)  # [batch, L]
        q = self._heads(self.query_moe(inputs, mask=valid, training=training))  # [batch, L, H, k]
        k = self._heads(self.key_moe(inputs, mask=valid, training=training))
        v = self._heads(self.value_moe(inputs, mask=valid, training=training))
        scores = tf.einsum("bqhk,bshk->bhqs", q, k) / math.sqrt(self.key_dim)  # [batch, H, L, L]
        # The softmax in float32 under every dtype policy (-1e9 overflows float16).
        scores = tf.cast(scores, tf.float32)
        if valid is not None:
            scores += (1.0 - tf.cast(valid, tf.float32))[:, tf.newaxis, tf.newaxis, :] * -1e9
        weights = tf.cast(tf.nn.softmax(scores, axis=-1), v.dtype)  # [batch, H, L, L]
        context = tf.einsum("bhqs,bshk->bqhk", weights, v)  # [batch, L, H, k]
        shape = tf.shape(context)
        context = tf.reshape(context, [shape[0], shape[1], self.num_heads * self.key_dim])  # [batch, L, H*k]
        outputs = self.output_dense(context)  # [batch, L, d]
        if valid is not None:
            outputs *= tf.cast(valid, outputs.dtype)[..., tf.newaxis]
        return outputs

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            key_dim=self.key_dim,
            num_experts=self.num_experts,
            top_k=self.top_k,
            load_balance_weight=self.load_balance_weight,
            **kernel_options_config(self),
        )
        return config
