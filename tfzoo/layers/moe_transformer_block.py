"""MoE transformer block of SUPER-MoE (Jiang et al., ICML-W 2022, eqs. 5-7)."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfzoo.layers.backend import keras
from tfzoo.layers.kernel_options import check_kernel_options, kernel_options, kernel_options_config
from tfzoo.layers.moe import MixtureOfExperts
from tfzoo.layers.moe_self_attention import MoEMultiHeadSelfAttention

# The gates of the MoE-FFN's top expert: Switch's router probability, or eq. 6's 1.
FFN_GATES = ("switch", "paper")


@keras.utils.register_keras_serializable(package="tfzoo")
class MoETransformerBlock(keras.layers.Layer):
    """x = LN(x + MoE-MSA(x)); y = LN(x + MoE-FFN(x)), padding masked throughout.

    MoE-MSA is `MoEMultiHeadSelfAttention` (eq. 5). MoE-FFN is eq. 6, a token-routed
    `MixtureOfExperts` with top-1 routing: y = G_e(x) FFN_e(x) with
    FFN_e(x) = w_o relu(w_i x) for the token's top expert e, and the load-balancing loss
    E * sum_e f_e P_e added in training. The gate G_e (`ffn_gate`):

    - "switch" (default): the router probability p_e(x) = softmax(h(x))_e, not
      renormalised (Fedus et al.'s Switch layer, which the paper cites for its top-1
      choice). The output is scaled by p_e, so the task loss trains the router.
    - "paper": eq. 6 as written, G(x) = softmax(TopK(h(x), 1)): a softmax over the one
      kept logit, so G_e = 1 and y = FFN_e(x). The router then gets no gradient from the
      task loss (argmax has none), only from the load-balancing loss, so it learns to
      spread tokens but not which expert suits them.

    Residuals and post-layer norms as in BERT.

    Args:
      num_heads: attention heads.
      key_dim: width of each head.
      ffn_units: hidden width of each feed-forward expert.
      num_experts: experts of every mixture (attention projections and feed-forward);
        1 gives a dense transformer block.
      attention_top_k: experts per token of the Q / K / V projections.
      load_balance_weight: weight of every mixture's load-balancing loss.
      ffn_gate: "switch" or "paper", the gate of the MoE-FFN's top expert (above).
      epsilon: layer-norm epsilon.
      kernel_initializer, kernel_regularizer: a Keras initializer / regularizer of every
        dense kernel: the attention's Q / K / V expert banks and output projection, and
        the feed-forward experts (None: Glorot uniform, per expert in the banks; no
        regularizer); the routers, biases and layer norms keep theirs
        (`tfzoo.layers.kernel_options`).

    Call arguments:
      inputs: [batch, L, d].
      mask: optional [batch, L], False/0 at padding (padded steps output 0).

    Returns:
      [batch, L, d].
    """

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        ffn_units: int,
        *,
        num_experts: int = 4,
        attention_top_k: int = 1,
        load_balance_weight: float = 0.01,
        ffn_gate: str = "switch",
        epsilon: float = 1e-6,
        kernel_initializer=None,
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if ffn_units < 1:
            raise ValueError(f"`ffn_units` must be >= 1. Received: ffn_units={ffn_units}")
        if ffn_gate not in FFN_GATES:
            raise ValueError(f"`ffn_gate` must be one of {FFN_GATES}. Received: ffn_gate={ffn_gate!r}")
        if num_experts < 1:
            raise ValueError(f"`num_experts` must be >= 1. Received: num_experts={num_experts}")
        check_kernel_options(kernel_initializer, kernel_regularizer)
        self.num_heads = int(num_heads)
        self.key_dim = int(key_dim)
        self.ffn_units = int(ffn_units)
        self.num_experts = int(num_experts)
        self.attention_top_k = int(attention_top_k)
        self.load_balance_weight = float(load_balance_weight)
        self.ffn_gate = ffn_gate
        self.epsilon = float(epsilon)
        self.kernel_initializer = kernel_initializer
        self.kernel_regularizer = kernel_regularizer

    def build(self, input_shape):
        width = int(input_shape[-1])
        shape = tf.TensorShape([None, None, width])
        self.attention = MoEMultiHeadSelfAttention(
            self.num_heads,
            self.key_dim,
            num_experts=self.num_experts,
            top_k=self.attention_top_k,
            load_balance_weight=self.load_balance_weight,
            name="moe_attention",
            **kernel_options(self),
        )
        self.attention.build(shape)
        self.feed_forward = MixtureOfExperts(
            # Renormalising the single kept gate makes it 1: the paper's softmax(TopK(h, 1)).
            self.num_experts,
            (self.ffn_units, width),
            router="token",
            top_k=1,
            normalize_gates=self.ffn_gate == "paper",
            load_balance_weight=self.load_balance_weight,
            activate_output=False,
            expert_options=kernel_options(self),
            name="moe_ffn",
        )
        self.feed_forward.build(shape)
        self.attention_norm = keras.layers.LayerNormalization(epsilon=self.epsilon, name="attention_norm")
        self.attention_norm.build(shape)
        self.ffn_norm = keras.layers.LayerNormalization(epsilon=self.epsilon, name="ffn_norm")
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
        config.update(
            num_heads=self.num_heads,
            key_dim=self.key_dim,
            ffn_units=self.ffn_units,
            num_experts=self.num_experts,
            attention_top_k=self.attention_top_k,
            load_balance_weight=self.load_balance_weight,
            ffn_gate=self.ffn_gate,
            epsilon=self.epsilon,
            **kernel_options_config(self),
        )
        return config
