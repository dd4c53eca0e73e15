"""MoE transformer block of SUPER-MoE (Jiang et al., ICML-W 2022, eqs. 5-7)."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfzoo.layers.moe import MixtureOfExperts
from tfzoo.layers.moe_self_attention import MoEMultiHeadSelfAttention


@tf.keras.utils.register_keras_serializable(package="tfzoo")
class MoETransformerBlock(tf.keras.layers.Layer):
    """x = LN(x + MoE-MSA(x)); y = LN(x + MoE-FFN(x)), padding masked throughout.

    MoE-MSA is `MoEMultiHeadSelfAttention` (eq. 5). MoE-FFN is eq. 6, a token-routed
    `MixtureOfExperts` with top-1 routing (Switch): y = G_e(x) FFN_e(x) with
    FFN_e(x) = w_o relu(w_i x), the kept gate G_e the router probability (not
    renormalised, so the router gets the task gradient) and the load-balancing loss
    E * sum_e f_e P_e added in training. Residuals and post-layer norms as in BERT.

    Args:
      num_heads: attention heads.
      key_dim: width of each head.
      ffn_units: hidden width of each feed-forward expert.
      num_experts: experts of every mixture (attention projections and feed-forward);
        1 gives a dense transformer block.
      attention_top_k: experts per token of the Q / K / V projections.
      load_balance_weight: weight of every mixture's load-balancing loss.
      epsilon: layer-norm epsilon.

    Call arguments:
      inputs: [batch, L, d].
      mask: optional [batch, L], False/0 at padding (padded steps output 0).

    Returns:
      [batch, L, d].
    """

    def __init__(self, num_heads: int, key_dim: int, ffn_units: int, *, num_experts: int = 4,
                 attention_top_k: int = 1, load_balance_weight: float = 0.01, epsilon: float = 1e-6, **kwargs):
        super().__init__(**kwargs)
        if ffn_units < 1:
            raise ValueError(f"`ffn_units` must be >= 1. Received: ffn_units={ffn_units}")
        if num_experts < 1:
            raise ValueError(f"`num_experts` must be >= 1. Received: num_experts={num_experts}")
        self.num_heads = int(num_heads)
        self.key_dim = int(key_dim)
        self.ffn_units = int(ffn_units)
        self.num_experts = int(num_experts)
        self.attention_top_k = int(attention_top_k)
        self.load_balance_weight = float(load_balance_weight)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        width = int(input_shape[-1])
        shape = tf.TensorShape([None, None, width])
        self.attention = MoEMultiHeadSelfAttention(
            self.num_heads, self.key_dim, num_experts=self.num_experts, top_k=self.attention_top_k,
            load_balance_weight=self.load_balance_weight, name="moe_attention")
        self.attention.build(shape)
        self.feed_forward = MixtureOfExperts(
            self.num_experts, (self.ffn_units, width), router="token", top_k=1, normalize_gates=False,
            load_balance_weight=self.load_balance_weight, activate_output=False, name="moe_ffn")
        self.feed_forward.build(shape)
        self.attention_norm = tf.keras.layers.LayerNormalization(epsilon=self.epsilon, name="attention_norm")
        self.attention_norm.build(shape)
        self.ffn_norm = tf.keras.layers.LayerNormalization(epsilon=self.epsilon, name="ffn_norm")
        self.ffn_norm.build(shape)
        super().build(input_shape)

    def call(self, inputs, mask=None, training=None):
        valid = None if mask is None else tf.cast(mask, tf.bool)  # [batch, L]
        x = self.attention_norm(inputs + self.attention(inputs, mask=valid, training=training))  # [batch, L, d]
        y = self.ffn_norm(x + self.feed_forward(x, mask=valid, training=training))  # [batch, L, d]
        if valid is not None:
            y *= tf.cast(valid, y.dtype)[..., tf.newaxis]
        return y

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(num_heads=self.num_heads, key_dim=self.key_dim, ffn_units=self.ffn_units,
                      num_experts=self.num_experts, attention_top_k=self.attention_top_k,
                      load_balance_weight=self.load_balance_weight, epsilon=self.epsilon)
        return config
