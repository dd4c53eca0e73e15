"""Sparse mixture of experts with pluggable routing (GRec, Wang et al., CIKM 2023, sec. 3.3)."""

from __future__ import annotations

import contextlib
import math
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tfzoo.layers.backend import keras
from tfzoo.layers.experts import Experts
from tfzoo.layers.extracted_experts import ExtractedExperts
from tfzoo.layers.kernel_options import KERNEL_OPTIONS, check_kernel_options, serializable
from tfzoo.layers.routers import ROUTERS, DenseRouter, Router


def _router_class(router) -> type:
    if isinstance(router, Router):
        return type(router)
    if isinstance(router, str) and router in ROUTERS:
        return ROUTERS[router]
    raise ValueError(f"`router` must be one of {sorted(ROUTERS)} or a Router. Received: router={router!r}")


# The `Experts` arguments `MixtureOfExperts(expert_options=...)` passes on.
EXPERT_OPTIONS = KERNEL_OPTIONS


def check_expert_options(expert_options: Mapping[str, Any] | None) -> None:
    """Fails on an `expert_options` key that `Experts` does not take (`EXPERT_OPTIONS`), or
    a value that is not a Keras initializer / regularizer: when the layer is made, not
    when it builds its experts."""
    unknown = sorted(set(expert_options or {}) - set(EXPERT_OPTIONS))
    if unknown:
        raise ValueError(
            f"Unknown expert options {unknown}. Received: expert_options={dict(expert_options)}. "
            f"Accepted: {', '.join(EXPERT_OPTIONS)}"
        )
    check_kernel_options(**dict(expert_options or {}))


def expert_options_config(expert_options: Mapping[str, Any]) -> dict[str, Any]:
    """`expert_options` as a config holds them (an initializer or regularizer object serialised)."""
    return {name: serializable(value) for name, value in expert_options.items()}


# The layers `recording_routing` listens to: layer -> its list of records. Outside the
# layer's attributes, so that Keras tracks nothing of it.
_ROUTING_RECORDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@contextlib.contextmanager
def recording_routing(model: keras.layers.Layer) -> Iterator[dict[str, list[dict[str, np.ndarray]]]]:
    """Records the routing of every `MixtureOfExperts` in `model` (itself one, or holding
    some) during eager calls inside the block: what the experts were used for, for
    analysis (`tfzoo report`'s expert-usage maps).

    Yields {layer path (from `model`, e.g. "encoder/block_0/moe_ffn"): records}; each call of a mixture appends one record:
    `usage` [units, E] (each routing unit's share per expert: 1 / k on each of its top-k
    experts for sparse routing, the gate probabilities for dense), `valid` [units]
    (bool, which units are real; all of them without a mask) and `gates` (G). Units are
    the tokens ([batch * tokens], row-major) for token routing, the examples otherwise,
    and (example, gate) pairs ([batch * G], row-major) for a multi-gate dense router
    called without routing ids (MMoE: a gate per task).
    """
    layers = {"/".join([*path, layer.name]): layer for path, layer in _moe_layers(model, None)}
    records = {name: [] for name in layers}
    for name, layer in layers.items():
        _ROUTING_RECORDS[layer] = records[name]
    try:
        yield records
    finally:
        for layer in layers.values():
            _ROUTING_RECORDS.pop(layer, None)


def _moe_layers(layer, path: tuple[str, ...] | None):
    """(path, layer) of the mixtures in `layer`; paths name the layers between (the
    outermost, whose path is None, left out)."""
    if isinstance(layer, MixtureOfExperts):
        yield path or (), layer
        return
    for child in layer._flatten_layers(include_self=False, recursive=False):
        yield from _moe_layers(child, () if path is None else (*path, layer.name))


@keras.utils.register_keras_serializable(package="tfzoo")
class MixtureOfExperts(keras.layers.Layer):
    """E experts (`tfzoo.layers.Experts`) behind a router; each unit uses its top-k experts.

    The router (`tfzoo.layers.routers`) gives E gate logits per routing unit (a token, or
    a whole example); gates are softmax(logits), of which each unit keeps its `top_k`
    largest, renormalised to sum to 1 (`normalize_gates`), and the output is the
    gate-weighted sum of those experts' outputs. Compute is sparse: a unit's rows go
    through its k experts only, so the expert cost per example grows with k, not E.

    - Without `capacity_factor` (dropless), the unit-expert assignments are grouped by
      expert into equal blocks (`Experts.grouped`, MegaBlocks-style) and every block
      runs through its expert in one einsum: ~units * k expert applications (at most
      ~1.25x that with the block padding), static shapes, no unit ever dropped.
    - With `capacity_factor` (token and sentence routing), each expert takes at most
      C = ceil(capacity_factor * units * k / E) units per call; units are placed in
      priority order (every unit's first choice before any second choice, as in GShard),
      overflowing assignments are dropped (they add nothing to the output) and counted,
      and the E experts run as one expert-major einsum over [E, C] slots.
    - With `top_k=None` (and always for the `dense` router) every expert sees every row
      and the gates are the full softmax: MMoE.

    Training adds the Switch / GShard load-balancing loss
    `E * sum_e f_e * P_e` (f_e: share of the routed assignments that go to expert e, over
    all k choices; P_e: mean gate probability of expert e; 1 when balanced) times
    `load_balance_weight`, and the router z-loss `mean(logsumexp(logits)^2)` (ST-MoE)
    times `z_loss_weight`, with `add_loss`. It also updates the metrics
    `<name>_expert_usage` (share of experts that received a unit in the batch),
    `<name>_max_load` (max_e f_e * E: 1 when balanced, E when one expert takes all) and,
    with a capacity, `<name>_dropped_fraction` (share of assignments dropped).

    Token sequences: inputs [batch, tokens, d] with `mask` [batch, tokens] route only
    the real tokens: padding takes no capacity, counts in no statistic and gets a zero
    output. For a Switch-style top-1 feed-forward set `top_k=1, normalize_gates=False`
    (with renormalisation a single gate is always 1 and the router would learn from
    the auxiliary losses only) and `activate_output=False`.

    Args:
      num_experts: number of experts E.
      expert_units: widths of each expert's layers.
      router: "token", "sentence", "task", "task_sentence", "dense", or a `Router`.
      router_options: constructor arguments of a named router (e.g.
        `{"num_tasks": 8}` for "task", `{"vocabulary_size": 7}` for "task_sentence",
        `{"num_gates": 2}` for "dense").
      top_k: experts per unit; None means all E (dense). Must be None for "dense".
      capacity_factor: expert capacity for token / sentence routing (see above); None is
        dropless. Task-level routing is always dropless: dropping rows by task would make
        the extracted per-task experts differ from the model.
      normalize_gates: renormalise the k kept gates to sum to 1.
      load_balance_weight: weight of the load-balancing loss (sparse routing only).
      z_loss_weight: weight of the router z-loss.
      activation: expert activation.
      activate_output: apply `activation` after the experts' last layer too.
      expert_options: more arguments of the `Experts` bank: `kernel_initializer`,
        `kernel_regularizer` (e.g. `{"kernel_regularizer": "l2"}`).

    Call arguments:
      inputs: [batch, d] or [batch, tokens, d].
      mask: optional [batch, tokens] (bool or 0/1) marking real tokens.
      routing_ids: int ids of task-level routers ("task": [batch] task ids;
        "task_sentence": [batch, S] task tokens) or, for "dense", optional [batch] gate
        ids.

    Returns:
      [batch, (tokens,) expert_units[-1]]; for a multi-gate dense router called without
      `routing_ids`, [batch, num_gates, (tokens,) expert_units[-1]] (one mixture per gate).
    """

    def __init__(
        self,
        num_experts: int,
        expert_units: Sequence[int],
        *,
        router: str | Router | Mapping[str, Any] = "token",
        router_options: Mapping[str, Any] | None = None,
        top_k: int | None = 2,
        capacity_factor: float | None = None,
        normalize_gates: bool = True,
        load_balance_weight: float = 0.01,
        z_loss_weight: float = 0.0,
        activation: str = "relu",
        activate_output: bool = True,
        expert_options: Mapping[str, Any] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_expert_options(expert_options)
        if num_experts < 1:
            raise ValueError(f"`num_experts` must be >= 1. Received: num_experts={num_experts}")
        if isinstance(router, Mapping):  # a serialised custom router, from get_config
            router = keras.layers.deserialize(dict(router))
        router_class = _router_class(router)
        if top_k is not None and not 1 <= top_k <= num_experts:
            raise ValueError(f"`top_k` must be in [1, num_experts={num_experts}] or None. Received: top_k={top_k}")
        if issubclass(router_class, DenseRouter) and top_k not in (None, num_experts):
            raise ValueError(f"The dense router mixes every expert: `top_k` must be None. Received: top_k={top_k}")
        if capacity_factor is not None:
            if not capacity_factor > 0:
                raise ValueError(f"`capacity_factor` must be > 0 or None. Received: capacity_factor={capacity_factor}")
            if router_class.task_level or top_k in (None, num_experts):
                raise ValueError(
                    "`capacity_factor` applies to sparse token and sentence routing; task-level and dense "
                    f"routing are dropless. Received: capacity_factor={capacity_factor}, router={router!r}"
                )
        if load_balance_weight < 0 or z_loss_weight < 0:
            raise ValueError(
                "Loss weights must be >= 0. Received: "
                f"load_balance_weight={load_balance_weight}, z_loss_weight={z_loss_weight}"
            )
        if isinstance(router, Router) and router.num_experts != num_experts:
            raise ValueError(
                f"The router has {router.num_experts} experts, the layer {num_experts}. Received: router={router.name!r}"
            )
        self.num_experts = num_experts
        self.expert_units = tuple(int(u) for u in expert_units)
        self.router = router
        self.router_options = dict(router_options or {})
        if isinstance(self.router, Router) and self.router_options:
            raise ValueError(
                f"`router_options` are for named routers only. Received: router_options={self.router_options}"
            )
        self.top_k = top_k
        self.capacity_factor = capacity_factor
        self.normalize_gates = bool(normalize_gates)
        self.load_balance_weight = float(load_balance_weight)
        self.z_loss_weight = float(z_loss_weight)
        self.activation = activation
        self.activate_output = bool(activate_output)
        self.expert_options = dict(expert_options or {})

    # ----------------------------------------------------------------------------- build

    @property
    def k(self) -> int:
        """Experts per unit (E when dense)."""
        return self.num_experts if self.top_k is None else self.top_k

    @property
    def is_dense(self) -> bool:
        return self.k == self.num_experts

    @property
    def is_task_level(self) -> bool:
        """Routing depends on the task only, so `extract` applies."""
        return self._router_layer.task_level

    @property
    def router_layer(self) -> Router:
        """The built router (the `router` argument, or the layer its name stands for)."""
        return self._router_layer

    def build(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        self._input_width = int(input_shape[-1])
        if isinstance(self.router, Router):
            self._router_layer = self.router
        else:
            # Routing in float32 under every dtype policy (Switch Transformer): 16-bit logits
            # flip top-k choices and blow up the softmax and the z-loss.
            self._router_layer = ROUTERS[self.router](
                self.num_experts, name="router", dtype="float32", **self.router_options
            )
        self._router_layer.build(input_shape)
        self.experts = Experts(
            self.num_experts,
            self.expert_units,
            activation=self.activation,
            activate_output=self.activate_output,
            name="experts",
            **self.expert_options,
        )
        self.experts.build([None, self._input_width])
        if not self.is_dense:
            self.expert_usage = keras.metrics.Mean(name=f"{self.name}_expert_usage")
            self.max_load = keras.metrics.Mean(name=f"{self.name}_max_load")
        if self.capacity_factor is not None:
            self.dropped_fraction = keras.metrics.Mean(name=f"{self.name}_dropped_fraction")
        super().build(input_shape)

    # ----------------------------------------------------------------------------- routing

    def _router_logits(self, inputs, valid, routing_ids):
        if self._router_layer.needs_routing_ids and routing_ids is None:
            raise ValueError(f"MixtureOfExperts {self.name!r} routes by task: pass `routing_ids`.")
        return tf.cast(self._router_layer(inputs, mask=valid, routing_ids=routing_ids), tf.float32)

    def _top_k(self, logits):
        probabilities = tf.nn.softmax(logits, axis=-1)  # [units, E]
        top_probabilities, expert_indices = tf.math.top_k(probabilities, k=self.k)  # [units, k]
        gates = top_probabilities
        if self.normalize_gates:
            gates = gates / tf.reduce_sum(gates, axis=-1, keepdims=True)
        return probabilities, expert_indices, gates

    def route(self, inputs, mask=None, routing_ids=None) -> dict[str, tf.Tensor]:
        """The routing decisions, for analysis and tests.

        Returns a dict of `logits`, `probabilities` ([units, E]), `expert_indices` and
        `gates` ([units, k]), with units the tokens ([batch * tokens], row-major) for
        token routing and the examples otherwise.
        """
        if not self.built:
            self.build(tf.TensorShape(inputs.shape))
        inputs = tf.convert_to_tensor(inputs)
        valid = None if mask is None or inputs.shape.rank == 2 else tf.cast(mask, tf.bool)
        logits = self._router_logits(inputs, valid, routing_ids)
        logits = tf.reshape(logits, [-1, self.num_experts])
        probabilities, expert_indices, gates = self._top_k(logits)
        return {"logits": logits, "probabilities": probabilities, "expert_indices": expert_indices, "gates": gates}

    def capacity(self, num_units) -> int | tf.Tensor:
        """Slots per expert for `num_units` routing units: ceil(factor * units * k / E)."""
        if isinstance(num_units, int):
            return max(1, math.ceil(self.capacity_factor * num_units * self.k / self.num_experts))
        slots = tf.math.ceil(self.capacity_factor * tf.cast(num_units * self.k, tf.float32) / self.num_experts)
        return tf.maximum(tf.cast(slots, tf.int32), 1)

    # ----------------------------------------------------------------------------- call

    def call(self, inputs, mask=None, routing_ids=None, training=None):
        rank = inputs.shape.rank
        if rank not in (2, 3):
            raise ValueError(
                f"MixtureOfExperts {self.name!r} takes [batch, d] or [batch, tokens, d]. Received: rank={rank}"
            )
        tokens = inputs if rank == 3 else inputs[:, tf.newaxis, :]  # [batch, T, d]
        valid = None if mask is None or rank == 2 else tf.cast(mask, tf.bool)  # [batch, T]
        logits = self._router_logits(inputs, valid, routing_ids)
        records = _ROUTING_RECORDS.get(self)
        if records is not None and tf.executing_eagerly():
            records.append(self._routing_record(logits, valid))
        if self.is_dense:
            outputs = self._dense(tokens, logits, valid, training)
        else:
            outputs = self._sparse(tokens, logits, valid, training)  # [batch, T, h]
        if valid is not None and outputs.shape.rank == 3:
            outputs *= tf.cast(valid, outputs.dtype)[..., tf.newaxis]
        return outputs if rank == 3 else tf.squeeze(outputs, axis=-2)

    def _routing_record(self, logits, valid) -> dict[str, np.ndarray]:
        """`recording_routing`'s record of one call (see there)."""
        # A multi-gate dense router without routing ids: [batch, G, E], one mixture per gate.
        gates = logits.shape[1] if logits.shape.rank == 3 and self._router_layer.granularity != "token" else 1
        logits = tf.reshape(logits, [-1, self.num_experts])  # [units, E]
        if self.is_dense:
            usage = tf.nn.softmax(logits, axis=-1)
        else:
            _, expert_indices, _ = self._top_k(logits)  # [units, k]
            usage = tf.reduce_sum(tf.one_hot(expert_indices, self.num_experts), axis=1) / self.k  # [units, E]
        if valid is None:
            unit_valid = tf.ones([tf.shape(usage)[0]], tf.bool)
        elif self._router_layer.granularity == "token":
            unit_valid = tf.reshape(valid, [-1])  # [batch * T]
        else:
            unit_valid = tf.repeat(tf.reduce_any(valid, axis=1), gates)  # [batch * G]
        return {"usage": usage.numpy(), "valid": unit_valid.numpy(), "gates": gates}

    def _dense(self, tokens, logits, valid, training):
        batch, length = tf.shape(tokens)[0], tf.shape(tokens)[1]
        every = self.experts(tf.reshape(tokens, [-1, self._input_width]))  # [batch*T, E, h]
        every = tf.reshape(every, [batch, length, self.num_experts, every.shape[-1]])  # [batch, T, E, h]
        probabilities = tf.nn.softmax(logits, axis=-1)  # float32
        if training and self.z_loss_weight:
            self._add_z_loss(tf.reshape(logits, [-1, self.num_experts]), None)
        probabilities = tf.cast(probabilities, every.dtype)
        if self._router_layer.granularity == "token":
            probabilities = tf.reshape(probabilities, [batch, length, self.num_experts])  # [batch, T, E]
            return tf.einsum("bteh,bte->bth", every, probabilities)  # [batch, T, h]
        if probabilities.shape.rank == 3:
            outputs = tf.einsum("bteh,bge->bgth", every, probabilities)  # [batch, G, T, h]
            return (
                outputs * tf.cast(valid, outputs.dtype)[:, tf.newaxis, :, tf.newaxis] if valid is not None else outputs
            )
        return tf.einsum("bteh,be->bth", every, probabilities)  # [batch, T, h]

    def _sparse(self, tokens, logits, valid, training):
        batch, length = tf.shape(tokens)[0], tf.shape(tokens)[1]
        if self._router_layer.granularity == "token":
            units = tf.reshape(tokens, [-1, 1, self._input_width])  # [batch*T, 1, d]: one unit per token
            unit_logits = tf.reshape(logits, [-1, self.num_experts])  # [batch*T, E]
            unit_valid = None if valid is None else tf.reshape(valid, [-1])  # [batch*T]
        else:
            units = tokens  # [batch, T, d]: one unit per example
            unit_logits = logits  # [batch, E]
            unit_valid = None if valid is None else tf.reduce_any(valid, axis=1)  # [batch]
        probabilities, expert_indices, gates = self._top_k(unit_logits)
        if self.capacity_factor is None:
            expert_outputs = self.experts.grouped(units, expert_indices, unit_valid)  # [units, k, rows, h]
            kept = None
        else:
            expert_outputs, kept = self._dispatch_with_capacity(units, expert_indices, unit_valid)
            gates *= tf.cast(kept, gates.dtype)  # a dropped assignment adds nothing
        combined = tf.einsum("ukrh,uk->urh", expert_outputs, tf.cast(gates, expert_outputs.dtype))  # [units, rows, h]
        if training:
            self._routing_losses_and_metrics(unit_logits, probabilities, expert_indices, unit_valid, kept)
        return tf.reshape(combined, [batch, length, combined.shape[-1]])  # [batch, T, h]

    def _dispatch_with_capacity(self, units, expert_indices, unit_valid):
        """Places units in [E, C] expert slots in priority order; returns outputs and kept."""
        e, k = self.num_experts, self.k
        num_units = units.shape[0] if units.shape[0] is not None else tf.shape(units)[0]
        capacity = self.capacity(num_units)
        choice_major = tf.transpose(expert_indices)  # [k, units]: all first choices come first
        one_hot = tf.one_hot(choice_major, e, dtype=tf.int32)  # [k, units, E]
        if unit_valid is not None:
            one_hot *= tf.cast(unit_valid, tf.int32)[tf.newaxis, :, tf.newaxis]  # padding takes no slot
        one_hot = tf.reshape(one_hot, [-1, e])  # [k*units, E]
        earlier = tf.math.cumsum(one_hot, axis=0, exclusive=True)  # [k*units, E]: same-expert assignments before
        position = tf.reduce_sum(earlier * one_hot, axis=-1)  # [k*units]
        routed = tf.reduce_sum(one_hot, axis=-1) > 0  # [k*units]
        kept = routed & (position < capacity)  # [k*units]
        not_computed = e * capacity  # one past the last slot: everything not kept
        slot = tf.where(kept, tf.reshape(choice_major, [-1]) * capacity + position, not_computed)  # [k*units]
        slot = tf.transpose(tf.reshape(slot, [k, num_units]))  # [units, k]
        expert_outputs = self.experts.run_in_slots(units, slot, slots_per_group=capacity)  # [units, k, rows, h]
        return expert_outputs, tf.transpose(tf.reshape(kept, [k, num_units]))  # [units, k, rows, h], [units, k]

    # ----------------------------------------------------------------------------- aux losses

    def _add_z_loss(self, logits, valid_weights):
        z = tf.square(tf.reduce_logsumexp(logits, axis=-1))  # [units]
        if valid_weights is None:
            z_loss = tf.reduce_mean(z)
        else:
            z_loss = tf.reduce_sum(z * valid_weights) / tf.maximum(tf.reduce_sum(valid_weights), 1.0)
        self.add_loss(self.z_loss_weight * z_loss)

    def _routing_losses_and_metrics(self, logits, probabilities, expert_indices, unit_valid, kept):
        e, k = self.num_experts, self.k
        weights = tf.ones_like(logits[:, 0]) if unit_valid is None else tf.cast(unit_valid, logits.dtype)  # [units]
        count = tf.maximum(tf.reduce_sum(weights), 1.0)
        assigned = tf.reduce_sum(tf.one_hot(expert_indices, e, dtype=logits.dtype), axis=1) / k  # [units, E]
        load = tf.reduce_sum(assigned * weights[:, tf.newaxis], axis=0) / count  # [E]: f_e, sums to 1
        importance = tf.reduce_sum(probabilities * weights[:, tf.newaxis], axis=0) / count  # [E]: P_e
        if self.load_balance_weight:
            self.add_loss(self.load_balance_weight * e * tf.reduce_sum(load * importance))
        if self.z_loss_weight:
            self._add_z_loss(logits, weights)
        self.expert_usage.update_state(tf.reduce_mean(tf.cast(load > 0, tf.float32)))
        self.max_load.update_state(tf.reduce_max(load) * e)
        if kept is not None:
            kept_share = tf.reduce_sum(tf.cast(kept, logits.dtype) * weights[:, tf.newaxis]) / (count * k)
            self.dropped_fraction.update_state(1.0 - kept_share)

    # ----------------------------------------------------------------------------- extraction

    def extract(self, routing_ids, *, name: str | None = None) -> ExtractedExperts:
        """The experts and fixed gates of each task, as a layer without router (Task-MoE).

        Only for task-level routers. `routing_ids` lists the tasks to keep, in the
        layout `call` takes: [n] task ids ("task") or [n, S] task tokens
        ("task_sentence"). Route r of the returned layer is task `routing_ids[r]`: it
        holds the union of the chosen experts (at most n * k, whatever E is) and gives
        the same outputs as this layer for that task.
        """
        if not self.built:
            raise ValueError(f"MixtureOfExperts {self.name!r} must be built (called once) before extraction.")
        if not self.is_task_level:
            raise ValueError(
                f"Only task-level routing can be extracted; {self.name!r} routes with "
                f"{type(self._router_layer).__name__}, which depends on the input."
            )
        if self.is_dense:
            raise ValueError(
                f"A dense MixtureOfExperts uses every expert; there is nothing to extract. Received: top_k={self.top_k}"
            )
        logits = self._router_layer.task_logits(tf.constant(np.asarray(routing_ids)))
        _, expert_indices, gates = self._top_k(logits)
        expert_indices, gates = expert_indices.numpy(), gates.numpy()
        union = sorted(set(expert_indices.ravel().tolist()))
        local = {expert: i for i, expert in enumerate(union)}
        extracted = ExtractedExperts(
            self.expert_units,
            route_experts=[[local[int(x)] for x in row] for row in expert_indices],
            route_gates=[[float(g) for g in row] for row in gates],
            activation=self.activation,
            activate_output=self.activate_output,
            name=name or f"{self.name}_extracted",
        )
        extracted.build(tf.TensorShape([None, self._input_width]))
        extracted.set_expert_weights(
            [tf.gather(kernel, union) for kernel in self.experts.kernels],
            [tf.gather(bias, union) for bias in self.experts.biases],
        )
        return extracted

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        router = self.router if isinstance(self.router, str) else keras.layers.serialize(self.router)
        config.update(
            num_experts=self.num_experts,
            expert_units=list(self.expert_units),
            router=router,
            router_options=dict(self.router_options),
            top_k=self.top_k,
            capacity_factor=self.capacity_factor,
            normalize_gates=self.normalize_gates,
            load_balance_weight=self.load_balance_weight,
            z_loss_weight=self.z_loss_weight,
            activation=self.activation,
            activate_output=self.activate_output,
            expert_options=expert_options_config(self.expert_options),
        )
        return config
