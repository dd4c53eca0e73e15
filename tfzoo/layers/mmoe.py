"""Multi-gate Mixture-of-Experts (Ma et al., KDD 2018)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf

from tfzoo.layers.backend import keras
from tfzoo.layers.moe import MixtureOfExperts, check_expert_options, expert_options_config


@keras.utils.register_keras_serializable(package="tfzoo")
class MultiGateMixtureOfExperts(keras.layers.Layer):
    """Shared experts, one softmax gate per task: y_t = sum_e softmax(W_t x)_e f_e(x).

    The zoo's one MoE implementation is `tfzoo.layers.MixtureOfExperts`; MMoE is that
    layer with the dense multi-gate router (every expert for every row, one gate per
    task), kept under this name for the MMoE model's config.

    Args:
      num_tasks: number of tasks T (one gate each).
      num_experts: number of experts E, all evaluated for every row.
      expert_units: widths of each expert's layers.
      activation: expert activation.
      expert_options: more arguments of the experts (`MixtureOfExperts(expert_options=...)`:
        `kernel_initializer`, `kernel_regularizer`).

    Call arguments:
      inputs: [batch, d_in].

    Returns:
      [batch, T, expert_units[-1]]: the mixture seen by each task.
    """

    def __init__(
        self,
        num_tasks: int,
        num_experts: int,
        expert_units: Sequence[int],
        *,
        activation: str = "relu",
        expert_options: Mapping[str, Any] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_tasks < 1:
            raise ValueError(f"`num_tasks` must be >= 1. Received: num_tasks={num_tasks}")
        if num_experts < 1:
            raise ValueError(f"`num_experts` must be >= 1. Received: num_experts={num_experts}")
        self.num_tasks = num_tasks
        self.num_experts = num_experts
        self.expert_units = tuple(int(u) for u in expert_units)
        self.activation = activation
        check_expert_options(expert_options)
        self.expert_options = dict(expert_options or {})

    def build(self, input_shape):
        self.mixture = MixtureOfExperts(
            self.num_experts,
            self.expert_units,
            router="dense",
            router_options={"num_gates": self.num_tasks},
            top_k=None,
            activation=self.activation,
            expert_options=self.expert_options,
            name="mixture",
        )
        self.mixture.build(input_shape)
        super().build(input_shape)

    @property
    def experts(self):
        """The shared `Experts` bank."""
        return self.mixture.experts

    @property
    def gate_kernel(self) -> tf.Variable:
        """[T, d_in, E]: task t's gate logits are x @ gate_kernel[t] + gate_bias[t]."""
        return self.mixture.router_layer.kernel

    @property
    def gate_bias(self) -> tf.Variable:
        """[T, E]."""
        return self.mixture.router_layer.bias

    def gates(self, inputs: tf.Tensor) -> tf.Tensor:
        """Each task's expert weights, [batch, T, E]; rows sum to 1."""
        logits = self.mixture.route(inputs)["logits"]  # [batch*T, E]
        return tf.reshape(tf.nn.softmax(logits, axis=-1), [-1, self.num_tasks, self.num_experts])

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        outputs = self.mixture(inputs)  # [batch, T, units] (or [batch, units] for one task)
        return outputs if self.num_tasks > 1 else outputs[:, tf.newaxis, :]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_tasks=self.num_tasks,
            num_experts=self.num_experts,
            expert_units=list(self.expert_units),
            activation=self.activation,
            expert_options=expert_options_config(self.expert_options),
        )
        return config
