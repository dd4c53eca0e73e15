"""Customized Gate Control: one extraction level of PLE (Tang et al., RecSys 2020)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf

from tfzoo.layers.backend import keras
from tfzoo.layers.experts import Experts
from tfzoo.layers.moe import check_expert_options, expert_options_config


@keras.utils.register_keras_serializable(package="tfzoo")
class CustomizedGateControl(keras.layers.Layer):
    """Task-specific and shared experts, gated separately for each task.

    Task t's gate mixes its own `num_task_experts` experts with the shared ones, so
    tasks share what helps and keep apart what conflicts. In a multi-level PLE every
    level but the last also emits a shared stream, gated over all experts, which feeds
    the next level's shared experts.

    Args:
      num_tasks: number of tasks T.
      num_task_experts: experts owned by each task.
      num_shared_experts: experts shared by all tasks (may be 0).
      expert_units: widths of each expert's layers.
      shared_output: also return the shared stream (every level but the last).
      activation: expert activation.
      expert_options: more arguments of the expert banks (`Experts`): `kernel_initializer`,
        `kernel_regularizer`.

    Call arguments:
      inputs: [batch, d] (first level: every stream starts from the same input) or
        [batch, T + 1, d]: the T task streams, then the shared stream.

    Returns:
      [batch, T, units], or [batch, T + 1, units] with `shared_output`.
    """

    def __init__(
        self,
        num_tasks: int,
        num_task_experts: int,
        num_shared_experts: int,
        expert_units: Sequence[int],
        *,
        shared_output: bool = False,
        activation: str = "relu",
        expert_options: Mapping[str, Any] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_tasks < 1:
            raise ValueError(f"`num_tasks` must be >= 1. Received: num_tasks={num_tasks}")
        if num_task_experts < 1:
            raise ValueError(f"`num_task_experts` must be >= 1. Received: num_task_experts={num_task_experts}")
        if num_shared_experts < 0:
            raise ValueError(f"`num_shared_experts` must be >= 0. Received: num_shared_experts={num_shared_experts}")
        self.num_tasks = num_tasks
        self.num_task_experts = num_task_experts
        self.num_shared_experts = num_shared_experts
        self.expert_units = tuple(int(u) for u in expert_units)
        self.shared_output = shared_output
        self.activation = activation
        check_expert_options(expert_options)
        self.expert_options = dict(expert_options or {})

    def build(self, input_shape):
        width = int(input_shape[-1])
        t, m, s = self.num_tasks, self.num_task_experts, self.num_shared_experts
        self.task_experts = Experts(
            t * m, self.expert_units, activation=self.activation, name="task_experts", **self.expert_options
        )
        self.task_experts.build([t * m, None, width])
        if s:
            self.shared_experts = Experts(
                s, self.expert_units, activation=self.activation, name="shared_experts", **self.expert_options
            )
            self.shared_experts.build([None, width])
        self.gate_kernel = self.add_weight(name="gate_kernel", shape=(t, width, m + s), initializer="glorot_uniform")
        self.gate_bias = self.add_weight(name="gate_bias", shape=(t, m + s), initializer="zeros")
        if self.shared_output:
            self.shared_gate = keras.layers.Dense(t * m + s, activation="softmax", name="shared_gate", dtype="float32")
            self.shared_gate.build([None, width])
        super().build(input_shape)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        t, m, s = self.num_tasks, self.num_task_experts, self.num_shared_experts
        if inputs.shape.rank == 2:
            streams = tf.repeat(inputs[:, tf.newaxis, :], t + 1, axis=1)  # [batch, T+1, d]
        else:
            streams = inputs
        task_streams, shared_stream = streams[:, :t], streams[:, t]  # [batch, T, d], [batch, d]
        batch = tf.shape(inputs)[0]

        # Expert e of task t sees only stream t: expert-major layout [T*m, batch, d].
        task_inputs = tf.repeat(tf.transpose(task_streams, [1, 0, 2]), m, axis=0)
        task_out = self.task_experts(task_inputs, expert_major=True)  # [T*m, batch, h]
        units = task_out.shape[-1]
        task_out = tf.transpose(tf.reshape(task_out, [t, m, batch, units]), [2, 0, 1, 3])  # [batch, T, m, h]
        candidates = task_out
        if s:
            shared_out = self.shared_experts(shared_stream)  # [batch, s, h]
            candidates = tf.concat(
                [task_out, tf.repeat(shared_out[:, tf.newaxis], t, axis=1)], axis=2
            )  # [batch, T, m+s, h]

        # Gate softmaxes in float32 under every dtype policy, applied in the compute dtype.
        logits = tf.einsum("btd,tde->bte", task_streams, self.gate_kernel) + self.gate_bias  # [batch, T, m+s]
        gates = tf.cast(tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1), candidates.dtype)
        outputs = tf.einsum("bte,bteh->bth", gates, candidates)  # [batch, T, h]
        if not self.shared_output:
            return outputs
        every_expert = tf.reshape(task_out, [batch, t * m, units])  # [batch, T*m, h]
        if s:
            every_expert = tf.concat([every_expert, shared_out], axis=1)  # [batch, T*m+s, h]
        shared_gates = tf.cast(self.shared_gate(shared_stream), every_expert.dtype)  # [batch, T*m+s]
        shared = tf.einsum("be,beh->bh", shared_gates, every_expert)  # [batch, h]
        return tf.concat([outputs, shared[:, tf.newaxis]], axis=1)  # [batch, T+1, h]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_tasks=self.num_tasks,
            num_task_experts=self.num_task_experts,
            num_shared_experts=self.num_shared_experts,
            expert_units=list(self.expert_units),
            shared_output=self.shared_output,
            activation=self.activation,
            expert_options=expert_options_config(self.expert_options),
        )
        return config
