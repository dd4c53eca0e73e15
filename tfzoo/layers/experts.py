"""A bank of feed-forward experts held as batched weights."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from tfzoo.layers.backend import keras
from tfzoo.layers.kernel_options import check_kernel_options


def _per_expert_glorot_uniform(shape, dtype=None):
    # Glorot per expert: fans are [d_in, d_out] of one expert, not of the whole bank
    # (Keras' initializers would count the expert axis as a receptive field).
    fan_in, fan_out = shape[-2], shape[-1]
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return tf.random.uniform(shape, -limit, limit, dtype=dtype or tf.float32)


def _per_expert(initializer: keras.initializers.Initializer):
    """`initializer` applied to each expert's [d_in, d_out] kernel, so that its fans are
    one expert's whatever the number of experts. A seeded initializer draws the same
    values at every call: expert e gets seed + e, or the experts would start identical."""
    config = initializer.get_config()

    def of_expert(e: int):
        if config.get("seed") is None:
            return initializer
        return type(initializer).from_config({**config, "seed": config["seed"] + e})

    def initialize(shape, dtype=None):
        return tf.stack([of_expert(e)(shape[1:], dtype=dtype) for e in range(shape[0])])

    return initialize


@keras.utils.register_keras_serializable(package="tfzoo")
class Experts(keras.layers.Layer):
    """`num_experts` MLPs of identical shape, stored as [experts, d_in, d_out] kernels.

    Every layer of every expert is one einsum, so E experts cost one batched matmul
    rather than E small ones, and a router can hand each expert only its own rows.

    Args:
      num_experts: number of experts E.
      units: widths of each expert's layers, e.g. `(64,)`.
      activation: activation after every hidden layer.
      activate_output: also apply `activation` after the last layer (MMoE-style
        experts); False makes the last layer linear (a transformer feed-forward or a
        Q/K/V projection).
      kernel_initializer: a Keras initializer (name, config or object) applied to each
        expert's kernel on its own; None: Glorot uniform per expert.
      kernel_regularizer: a Keras regularizer of every kernel (e.g. "l2"), or None.

    Call arguments:
      inputs: one of three layouts.
        - [batch, d_in], no other argument: every expert sees every row (dense,
          MMoE-style).
        - [E, rows, d_in] with `expert_major=True`: expert e sees only `inputs[e]`
          (rows dispatched to it by a capacity-based router).
        - [units, rows, d_in] with `expert_indices` [units, k]: the rows of unit u go
          through experts `expert_indices[u]` only. Their kernels are gathered per
          unit, so the cost is units * k * rows expert applications whatever E is
          (dropless sparse routing, and extracted experts).
      expert_major: whether `inputs` has the expert-major layout.
      expert_indices: int [units, k], the experts applied to each unit.

    Returns:
      [batch, E, units[-1]] (dense), [E, rows, units[-1]] (expert-major) or
      [units, k, rows, units[-1]] (with `expert_indices`).
    """

    def __init__(
        self,
        num_experts: int,
        units: Sequence[int],
        *,
        activation: str = "relu",
        activate_output: bool = True,
        kernel_initializer=None,
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        units = tuple(int(u) for u in units)
        if num_experts < 1:
            raise ValueError(f"`num_experts` must be >= 1. Received: num_experts={num_experts}")
        if not units or any(u < 1 for u in units):
            raise ValueError(f"`units` must be a non-empty list of positive widths. Received: units={units}")
        check_kernel_options(kernel_initializer, kernel_regularizer)
        self.num_experts = num_experts
        self.units = units
        self.activation = activation
        self.activate_output = bool(activate_output)
        # None: Glorot uniform over each expert's own fans.
        self.kernel_initializer = None if kernel_initializer is None else keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        width = int(input_shape[-1])
        self._activation = keras.activations.get(self.activation)
        self.kernels, self.biases = [], []
        for i, out in enumerate(self.units):
            self.kernels.append(
                self.add_weight(
                    name=f"kernel_{i}",
                    shape=(self.num_experts, width, out),
                    initializer=(
                        _per_expert_glorot_uniform
                        if self.kernel_initializer is None
                        else _per_expert(self.kernel_initializer)
                    ),
                    regularizer=self.kernel_regularizer,
                )
            )
            self.biases.append(self.add_weight(name=f"bias_{i}", shape=(self.num_experts, out), initializer="zeros"))
            width = out
        super().build(input_shape)

    def _activate(self, x: tf.Tensor, layer: int) -> tf.Tensor:
        if layer < len(self.units) - 1 or self.activate_output:
            return self._activation(x)
        return x

    def call(self, inputs: tf.Tensor, expert_major: bool = False, expert_indices: tf.Tensor | None = None) -> tf.Tensor:
        if expert_indices is not None:
            return self._call_selected(inputs, expert_indices)
        if expert_major:
            x = inputs  # [experts, rows, d_in]
            for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
                x = self._activate(tf.einsum("erd,edh->erh", x, kernel) + bias[:, tf.newaxis, :], i)
            return x  # [experts, rows, d_out]
        x = self._activate(tf.einsum("bd,edh->beh", inputs, self.kernels[0]) + self.biases[0], 0)  # [batch, experts, h]
        for i, (kernel, bias) in enumerate(zip(self.kernels[1:], self.biases[1:]), start=1):
            x = self._activate(tf.einsum("beh,ehk->bek", x, kernel) + bias, i)  # [batch, experts, k]
        return x

    def grouped(self, units: tf.Tensor, expert_indices: tf.Tensor, valid: tf.Tensor | None = None) -> tf.Tensor:
        """Dropless sparse dispatch: each unit through its k experts, grouped by expert.

        The unit-expert assignments are sorted by expert and cut into blocks of `b` units
        that all use the same expert (each expert's group padded to a multiple of b, as in
        MegaBlocks); one einsum then runs every block through its expert. The cost is
        (assignments + E * b) expert applications, with b ~ assignments / (4 E), so at
        most ~1.25x the k-per-unit minimum, and one kernel is gathered per block instead
        of per unit. All shapes are static when the number of units is.

        Args:
          units: [units, rows, d_in]; a unit's rows share its experts.
          expert_indices: int [units, k].
          valid: optional bool [units]; invalid units are not computed (zero output).

        Returns:
          [units, k, rows, d_out].
        """
        e = self.num_experts
        k = expert_indices.shape[1]
        static_units = units.shape[0]
        num_units = static_units if static_units is not None else tf.shape(units)[0]
        assignments = num_units * k
        if isinstance(assignments, int):
            block = int(min(64, max(1, assignments // (4 * e))))
            num_blocks = -(-(assignments + e * (block - 1)) // block)
        else:
            block = tf.clip_by_value(assignments // (4 * e), 1, 64)
            num_blocks = (assignments + e * (block - 1) + block - 1) // block
        slots = num_blocks * block

        expert = tf.reshape(tf.cast(expert_indices, tf.int32), [-1])  # [A], unit-major
        if valid is not None:
            expert = tf.where(tf.repeat(valid, k), expert, e)  # id E: not computed
        counts = tf.math.bincount(expert, minlength=e + 1, maxlength=e + 1)[:e]  # [E]
        padded_ends = tf.cumsum((counts + block - 1) // block * block)  # [E]
        order = tf.argsort(expert, stable=True)  # [A]: grouped by expert
        sorted_expert = tf.gather(expert, order)  # [A]
        group_start = tf.concat([[0], tf.cumsum(counts)], axis=0)  # [E+1]
        padded_start = tf.concat([[0], padded_ends], axis=0)  # [E+1]
        rank = tf.range(assignments) - tf.gather(group_start, sorted_expert)  # position in the expert's group
        sorted_slot = tf.where(sorted_expert < e, tf.gather(padded_start, sorted_expert) + rank, slots)  # [A]
        slot = tf.gather(sorted_slot, tf.math.invert_permutation(order))  # [A], unit-major

        block_expert = tf.minimum(
            tf.searchsorted(padded_ends, tf.range(num_blocks) * block, side="right"), e - 1
        )  # [blocks]
        return self.run_in_slots(
            units, tf.reshape(slot, [num_units, k]), slots_per_group=block, group_experts=block_expert
        )  # [units, k, rows, h]

    def run_in_slots(
        self,
        units: tf.Tensor,
        slot: tf.Tensor,
        *,
        slots_per_group: int | tf.Tensor,
        group_experts: tf.Tensor | None = None,
    ) -> tf.Tensor:
        """Runs each unit through experts in the slots it was given, and gathers the outputs back.

        The dispatch that capacity routing (`MixtureOfExperts`) and dropless grouping
        (`grouped`) share: the slots are cut into groups of `slots_per_group` consecutive
        slots, each group run by one expert; every unit is copied into its slots, all
        groups run as one einsum, and each assignment reads its slot's output.

        Args:
          units: [units, rows, d_in]; a unit's rows share their slots.
          slot: int [units, k], the slot of each of a unit's k assignments. A slot holds at
            most one assignment; the index one past the last slot (groups x
            `slots_per_group`) marks an assignment that is not computed (zero output).
          slots_per_group: the slots of one group.
          group_experts: int [groups], the expert of each group; None: expert-major, group
            e is expert e (E groups).

        Returns:
          [units, k, rows, d_out]; empty slots are computed on zero rows and read by no one.
        """
        if group_experts is None:
            num_groups = self.num_experts
        else:
            num_groups = group_experts.shape[0] if group_experts.shape[0] is not None else tf.shape(group_experts)[0]
        num_slots = num_groups * slots_per_group
        k = slot.shape[1]
        num_units = units.shape[0] if units.shape[0] is not None else tf.shape(units)[0]
        rows = units.shape[1] if units.shape[1] is not None else tf.shape(units)[1]
        width = units.shape[-1]

        # Which unit fills each slot (slots are unique; empty slots read a zero row, and
        # everything sent one past the last slot is cut off).
        unit_ids = tf.repeat(tf.range(num_units), k)  # [units*k], unit-major as `slot`
        flat_slot = tf.reshape(slot, [-1, 1])  # [units*k, 1]
        filled = tf.scatter_nd(flat_slot, unit_ids + 1, [num_slots + 1])[:num_slots]  # [slots]
        source = tf.where(filled > 0, filled - 1, num_units)  # [slots]
        flat_units = tf.reshape(units, [num_units, -1])  # [units, rows*d]
        flat_units = tf.concat([flat_units, tf.zeros_like(flat_units[:1])], axis=0)  # [units+1, rows*d]
        groups = tf.reshape(
            tf.gather(flat_units, source), [num_groups, slots_per_group * rows, width]
        )  # [G, S*rows, d]
        if group_experts is None:
            outputs = self(groups, expert_major=True)  # [E, S*rows, h]
        else:
            outputs = self(groups, expert_indices=group_experts[:, tf.newaxis])[:, 0]  # [G, S*rows, h]
        out_width = outputs.shape[-1]
        outputs = tf.reshape(outputs, [num_slots, rows * out_width])  # [slots, rows*h]
        outputs = tf.concat([outputs, tf.zeros_like(outputs[:1])], axis=0)  # [slots+1, rows*h]
        return tf.reshape(tf.gather(outputs, slot), [num_units, k, rows, out_width])  # [units, k, rows, h]

    def _call_selected(self, inputs: tf.Tensor, expert_indices: tf.Tensor) -> tf.Tensor:
        indices = tf.cast(expert_indices, tf.int32)  # [units, k]
        # Rows of the expert-major weights by `embedding_lookup`: a bank sharded over
        # parameter servers (`ShardedVariable`) is read shard by shard (see
        # `tfzoo.graph.encoder`: `gather` on a sharded table stopped a run learning).
        kernel = tf.nn.embedding_lookup(self.kernels[0], indices)  # [units, k, d_in, h]
        bias = tf.nn.embedding_lookup(self.biases[0], indices)  # [units, k, h]
        x = self._activate(tf.einsum("urd,ukdh->ukrh", inputs, kernel) + bias[:, :, tf.newaxis, :], 0)
        for i, (kernel, bias) in enumerate(zip(self.kernels[1:], self.biases[1:]), start=1):
            kernel = tf.nn.embedding_lookup(kernel, indices)  # [units, k, h, h']
            bias = tf.nn.embedding_lookup(bias, indices)  # [units, k, h']
            x = self._activate(tf.einsum("ukrh,ukhg->ukrg", x, kernel) + bias[:, :, tf.newaxis, :], i)
        return x  # [units, k, rows, d_out]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_experts=self.num_experts,
            units=list(self.units),
            activation=self.activation,
            activate_output=self.activate_output,
            kernel_initializer=(
                None if self.kernel_initializer is None else keras.initializers.serialize(self.kernel_initializer)
            ),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer)
            if self.kernel_regularizer
            else None,
        )
        return config
