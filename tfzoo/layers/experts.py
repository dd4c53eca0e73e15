"""A bank of feed-forward experts held as batched weights."""

from __future__ import annotations

import math
from typing import Any, Sequence

import tensorflow as tf


def _per_expert_glorot_uniform(shape, dtype=None):
    # Glorot per expert: fans are [d_in, d_out] of one expert, not of the whole bank
    # (Keras' initializers would count the expert axis as a receptive field).
    fan_in, fan_out = shape[-2], shape[-1]
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return tf.random.uniform(shape, -limit, limit, dtype=dtype or tf.float32)


@tf.keras.utils.register_keras_serializable(package="tfzoo")
class Experts(tf.keras.layers.Layer):
    """`num_experts` MLPs of identical shape, stored as [experts, d_in, d_out] kernels.

    Every layer of every expert is one einsum, so E experts cost one batched matmul
    rather than E small ones, and a router can hand each expert only its own rows.

    Args:
      num_experts: number of experts E.
      units: widths of each expert's layers, e.g. `(64,)`.
      activation: activation after every layer.

    Call arguments:
      inputs: [batch, d_in] with `expert_major=False`: every expert sees every row
        (dense, MMoE-style). [E, rows, d_in] with `expert_major=True`: expert e sees only
        `inputs[e]` (rows dispatched to it by a sparse router).
      expert_major: which of the two layouts `inputs` has.

    Returns:
      [batch, E, units[-1]] (dense) or [E, rows, units[-1]] (expert-major).
    """

    def __init__(self, num_experts: int, units: Sequence[int], *, activation: str = "relu", **kwargs):
        super().__init__(**kwargs)
        units = tuple(int(u) for u in units)
        if num_experts < 1:
            raise ValueError(f"`num_experts` must be >= 1. Received: num_experts={num_experts}")
        if not units or any(u < 1 for u in units):
            raise ValueError(f"`units` must be a non-empty list of positive widths. Received: units={units}")
        self.num_experts = num_experts
        self.units = units
        self.activation = activation

    def build(self, input_shape):
        width = int(input_shape[-1])
        self._activation = tf.keras.activations.get(self.activation)
        self.kernels, self.biases = [], []
        for i, out in enumerate(self.units):
            self.kernels.append(self.add_weight(
                name=f"kernel_{i}", shape=(self.num_experts, width, out), initializer=_per_expert_glorot_uniform))
            self.biases.append(self.add_weight(name=f"bias_{i}", shape=(self.num_experts, out), initializer="zeros"))
            width = out
        super().build(input_shape)

    def call(self, inputs: tf.Tensor, expert_major: bool = False) -> tf.Tensor:
        if expert_major:
            x = inputs  # [experts, rows, d_in]
            for kernel, bias in zip(self.kernels, self.biases):
                x = self._activation(tf.einsum("erd,edh->erh", x, kernel) + bias[:, tf.newaxis, :])
            return x  # [experts, rows, d_out]
        x = tf.einsum("bd,edh->beh", inputs, self.kernels[0]) + self.biases[0]  # [batch, experts, h]
        x = self._activation(x)
        for kernel, bias in zip(self.kernels[1:], self.biases[1:]):
            x = self._activation(tf.einsum("beh,ehk->bek", x, kernel) + bias)  # [batch, experts, k]
        return x

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(num_experts=self.num_experts, units=list(self.units), activation=self.activation)
        return config
