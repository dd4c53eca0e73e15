"""Multi-gate Mixture-of-Experts (Ma et al., KDD 2018)."""

from __future__ import annotations

from typing import Any, Sequence

import tensorflow as tf

from tfzoo.layers.experts import Experts


@tf.keras.utils.register_keras_serializable(package="tfzoo")
class MultiGateMixtureOfExperts(tf.keras.layers.Layer):
    """Shared experts, one softmax gate per task: y_t = sum_e softmax(W_t x)_e f_e(x).

    Args:
      num_tasks: number of tasks T (one gate each).
      num_experts: number of experts E, all evaluated for every row.
      expert_units: widths of each expert's layers.
      activation: expert activation.

    Call arguments:
      inputs: [batch, d_in].

    Returns:
      [batch, T, expert_units[-1]]: the mixture seen by each task.
    """

    def __init__(self, num_tasks: int, num_experts: int, expert_units: Sequence[int], *, activation: str = "relu", **kwargs):
        super().__init__(**kwargs)
        if num_tasks < 1:
            raise ValueError(f"`num_tasks` must be >= 1. Received: num_tasks={num_tasks}")
        if num_experts < 1:
            raise ValueError(f"`num_experts` must be >= 1. Received: num_experts={num_experts}")
        self.num_tasks = num_tasks
        self.num_experts = num_experts
        self.expert_units = tuple(int(u) for u in expert_units)
        self.activation = activation

    def build(self, input_shape):
        width = int(input_shape[-1])
        self.experts = Experts(self.num_experts, self.expert_units, activation=self.activation, name="experts")
        self.experts.build(input_shape)
        self.gate_kernel = self.add_weight(
            name="gate_kernel", shape=(self.num_tasks, width, self.num_experts), initializer="glorot_uniform")
        self.gate_bias = self.add_weight(name="gate_bias", shape=(self.num_tasks, self.num_experts), initializer="zeros")
        super().build(input_shape)

    def gates(self, inputs: tf.Tensor) -> tf.Tensor:
        """Each task's expert weights, [batch, T, E]; rows sum to 1."""
        logits = tf.einsum("bd,tde->bte", inputs, self.gate_kernel) + self.gate_bias  # [batch, tasks, experts]
        return tf.nn.softmax(logits, axis=-1)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        expert_outputs = self.experts(inputs)  # [batch, experts, units]
        return tf.einsum("bte,beh->bth", self.gates(inputs), expert_outputs)  # [batch, tasks, units]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_tasks=self.num_tasks, num_experts=self.num_experts,
            expert_units=list(self.expert_units), activation=self.activation,
        )
        return config
