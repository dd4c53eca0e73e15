"""Experts with fixed routes: what `MixtureOfExperts.extract` leaves of a task-level MoE."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tfzoo.layers.backend import keras
from tfzoo.layers.experts import Experts


@keras.utils.register_keras_serializable(package="tfzoo")
class ExtractedExperts(keras.layers.Layer):
    """A few experts and, per route (task), which k of them to use and with which gates.

    Task-level routing sends every row of a task to the same k experts with the same
    gates, so the router can be evaluated once, offline, and dropped (Task-MoE,
    Kudugunta et al. 2021). What remains is this layer: the union of the experts the
    kept tasks use, and per task the local indices and gates of its k experts. Its cost
    per row is k expert applications, whatever the number of experts of the model it
    came from. Build it with `MixtureOfExperts.extract`; routes and gates are constants
    of the config, the expert weights are its weights.

    Args:
      expert_units: widths of each expert's layers.
      route_experts: per route, the k local expert indices (into the kept experts).
      route_gates: per route, the k gates.
      activation: expert activation.
      activate_output: apply `activation` after the experts' last layer too.

    Call arguments:
      inputs: [batch, d] or [batch, tokens, d].
      route: a Python int (every row takes this route: the graph holds that route's k
        experts only) or an int tensor [batch] (each row its own route).
      mask: optional [batch, tokens] marking real tokens; padding gets a zero output.

    Returns:
      [batch, (tokens,) expert_units[-1]].
    """

    def __init__(
        self,
        expert_units: Sequence[int],
        *,
        route_experts: Sequence[Sequence[int]],
        route_gates: Sequence[Sequence[float]],
        activation: str = "relu",
        activate_output: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        route_experts = [[int(i) for i in row] for row in route_experts]
        route_gates = [[float(g) for g in row] for row in route_gates]
        widths = {len(row) for row in route_experts} | {len(row) for row in route_gates}
        if not route_experts or len(route_experts) != len(route_gates) or len(widths) != 1:
            raise ValueError(
                "`route_experts` and `route_gates` must list the same non-zero number of experts for every route. "
                f"Received: route_experts={route_experts}, route_gates={route_gates}"
            )
        if min(min(row) for row in route_experts) < 0:
            raise ValueError(f"`route_experts` must be >= 0. Received: route_experts={route_experts}")
        self.expert_units = tuple(int(u) for u in expert_units)
        self.route_experts = route_experts
        self.route_gates = route_gates
        self.activation = activation
        self.activate_output = bool(activate_output)

    @property
    def num_experts(self) -> int:
        """Experts held: the union over routes."""
        return max(max(row) for row in self.route_experts) + 1

    @property
    def num_routes(self) -> int:
        return len(self.route_experts)

    def build(self, input_shape):
        self.experts = Experts(
            self.num_experts,
            self.expert_units,
            activation=self.activation,
            activate_output=self.activate_output,
            name="experts",
        )
        self.experts.build([None, int(input_shape[-1])])
        super().build(input_shape)

    def set_expert_weights(self, kernels: Sequence[tf.Tensor], biases: Sequence[tf.Tensor]) -> None:
        """Copies the kept experts' weights ([num_experts, ...] per expert layer)."""
        for variable, value in zip(self.experts.kernels + self.experts.biases, list(kernels) + list(biases)):
            variable.assign(value)

    def call(self, inputs, route, mask=None):
        rank = inputs.shape.rank
        if rank not in (2, 3):
            raise ValueError(
                f"ExtractedExperts {self.name!r} takes [batch, d] or [batch, tokens, d]. Received: rank={rank}"
            )
        tokens = inputs if rank == 3 else inputs[:, tf.newaxis, :]  # [batch, T, d]
        batch, length = tf.shape(tokens)[0], tf.shape(tokens)[1]
        if isinstance(route, (int, np.integer)):
            if not 0 <= route < self.num_routes:
                raise ValueError(f"`route` must be in [0, {self.num_routes}). Received: route={route}")
            # One route for every row: its k experts see all rows as a single unit.
            indices = tf.constant([self.route_experts[route]], tf.int32)  # [1, k]
            rows = tf.reshape(tokens, [1, -1, tokens.shape[-1]])  # [1, batch*T, d]
            outputs = self.experts(rows, expert_indices=indices)[0]  # [k, batch*T, h]
            gates = tf.constant(self.route_gates[route], outputs.dtype)  # [k]
            combined = tf.einsum("krh,k->rh", outputs, gates)  # [batch*T, h]
            combined = tf.reshape(combined, [batch, length, combined.shape[-1]])  # [batch, T, h]
        else:
            route = tf.cast(route, tf.int32)  # [batch]
            indices = tf.gather(tf.constant(self.route_experts, tf.int32), route)  # [batch, k]
            outputs = self.experts.grouped(tokens, indices)  # [batch, k, T, h]: rows grouped by expert
            gates = tf.gather(tf.constant(self.route_gates, outputs.dtype), route)  # [batch, k]
            combined = tf.einsum("bkth,bk->bth", outputs, gates)  # [batch, T, h]
        if mask is not None and rank == 3:
            combined *= tf.cast(mask, combined.dtype)[..., tf.newaxis]
        return combined if rank == 3 else combined[:, 0]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            expert_units=list(self.expert_units),
            route_experts=[list(r) for r in self.route_experts],
            route_gates=[list(g) for g in self.route_gates],
            activation=self.activation,
            activate_output=self.activate_output,
        )
        return config
