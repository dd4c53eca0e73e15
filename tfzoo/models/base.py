"""The one training step of the zoo's models, over named loss terms.

Every model returns its loss as named terms (`ZooModel.loss_terms`, TFRS's `compute_loss`
contract); this base scales them for `tf.distribute`, sums them, adds the layer losses,
applies the gradients and tracks each term, so that a step on several replicas equals a
step on one device (tested for every model kind in tests/models/test_mirrored_step.py).

Under a synchronous strategy each replica computes its terms on its part of the global
batch and the optimizer sums the replicas' gradients. A term is therefore either
  * already this replica's share of the global-batch loss (`replica_mean=False`): a sum
    over the replica's examples, or such a sum divided by a count summed over the
    replicas (`sum_over_replicas`), so the replicas' shares add up to the global loss; or
  * a mean over the replica's examples (`replica_mean=True`), which the base divides by
    the replica count: the replicas' shares then average to the global-batch mean.
Layer losses (weight decay, routing balance) are per-replica means and are divided alike.
What is logged is what one device would log: each term's global-batch value.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf
import tensorflow_recommenders as tfrs


@dataclasses.dataclass(frozen=True)
class LossTerm:
    """One named term of a model's loss on this replica's batch.

    Attributes:
      value: the scalar term.
      weight: its weight in the loss (a float or a scalar tensor); 0 leaves it out of the
        gradient and only logs it (a term a subclass reads in `before_update`).
      replica_mean: True when `value` is a mean over this replica's examples, False when it
        is already this replica's share of the global-batch loss (see the module docstring).
    """

    value: tf.Tensor
    weight: float | tf.Tensor = 1.0
    replica_mean: bool = False


@contextlib.contextmanager
def dtype_policy(policy: str):
    """Layers made inside it take the Keras dtype policy `policy`; the process's global
    policy is restored afterwards. A layer fixes its policy when it is made, so a model
    built under "mixed_bfloat16" keeps it; TFRS tasks, which take no `dtype`, are made
    under "float32" so that losses and metrics are not computed in 16 bits."""
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)


def num_replicas() -> int:
    """Replicas of the current step (1 outside tf.distribute and under parameter servers)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def sum_over_replicas(value: tf.Tensor) -> tf.Tensor:
    """`value` summed over the replicas of the current step (itself outside tf.distribute)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def replica_rows(size: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(this replica's first row, rows of all replicas) when every replica holds `size` rows
    of a global batch in replica order: what one device would index the rows by."""
    context = tf.distribute.get_replica_context()
    size = tf.reshape(tf.cast(size, tf.int32), [1])
    if context is None or context.num_replicas_in_sync == 1:
        return tf.constant(0), size[0]
    sizes = context.all_gather(size, axis=0)  # [replicas]
    return tf.reduce_sum(sizes[: context.replica_id_in_sync_group]), tf.reduce_sum(sizes)


def with_other_replicas(*tensors: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """Each tensor ([n, ...], this replica's rows) followed by the other replicas' rows:
    [sum of n, ...], own rows first. Gradients flow back to the replica that made a row.

    In-batch negatives then range over the global batch, as on one device, whatever the
    number of replicas; the own rows keep their positions (row i's positive stays at i).
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return tensors
    start, _ = replica_rows(tf.shape(tensors[0])[0])
    size = tf.shape(tensors[0])[0]
    gathered = []
    for tensor in tensors:
        every = context.all_gather(tensor, axis=0)  # [sum of n, ...] in replica order
        gathered.append(tf.concat([tensor, every[:start], every[start + size :]], axis=0))
    return tuple(gathered)


class ZooModel(tfrs.Model):
    """A `tfrs.Model` whose loss is a dict of named `LossTerm`s.

    Subclasses implement `loss_terms(inputs, training)` and name their terms once in
    `__init__` with `track_loss_terms`; `fit` and `evaluate` then log `loss` (the weighted
    sum of the terms, layer losses aside) and `<term>_loss` for each term. A subclass that
    steers something from the step's gradients (e.g. loss weights) overrides
    `before_update`, and sets `persistent_tape` when it takes several gradients.
    """

    persistent_tape = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.loss_trackers = {"loss": tf.keras.metrics.Mean(name="loss")}

    def track_loss_terms(self, names: Sequence[str]) -> None:
        for name in names:
            self.loss_trackers[name] = tf.keras.metrics.Mean(name=f"{name}_loss")

    @property
    def metrics(self):
        # Keras collects a metric when it is assigned to an attribute; trackers added to the
        # dict later are listed here (first, as `fit` logs them).
        trackers = list(self.loss_trackers.values())
        return [*trackers, *(m for m in super().metrics if not any(m is t for t in trackers))]

    def loss_terms(self, inputs, training: bool = False) -> Mapping[str, LossTerm]:
        raise NotImplementedError(f"{type(self).__name__} must implement `loss_terms`.")

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        """This replica's share of the global-batch loss (layer losses aside); tracks the terms."""
        terms = self.loss_terms(inputs, training=training)
        self._track(terms)
        return self._objective(terms, layer_losses=False)

    def train_step(self, inputs):
        with tf.GradientTape(persistent=self.persistent_tape) as tape:
            terms = self.loss_terms(inputs, training=True)
            objective = self._objective(terms, layer_losses=True)
            scaled = objective
            if isinstance(self.optimizer, tf.keras.mixed_precision.LossScaleOptimizer):
                scaled = self.optimizer.get_scaled_loss(objective)  # float16: keeps small gradients above 0
        variables = self.trainable_variables  # after the forward pass, which builds them on the first step
        gradients = tape.gradient(scaled, variables)
        if scaled is not objective:
            gradients = self.optimizer.get_unscaled_gradients(gradients)
        logs = self.before_update(tape, terms, variables)
        del tape
        self.optimizer.apply_gradients(zip(gradients, variables))
        self._track(terms)
        return {**{m.name: m.result() for m in self.metrics}, **logs}

    def test_step(self, inputs):
        self._track(self.loss_terms(inputs, training=False))
        return {m.name: m.result() for m in self.metrics}

    def before_update(self, tape: tf.GradientTape, terms: Mapping[str, LossTerm], variables) -> dict[str, Any]:
        """Runs after the gradients are taken and before they are applied; returns extra logs."""
        return {}

    def _objective(self, terms: Mapping[str, LossTerm], *, layer_losses: bool) -> tf.Tensor:
        replicas = num_replicas()
        shares = [
            term.weight * (term.value / replicas if term.replica_mean else term.value)
            for term in terms.values()
            if not (isinstance(term.weight, (int, float)) and term.weight == 0)
        ]
        # Terms and layer losses are float32 under every dtype policy (losses are not computed
        # in 16 bits); the casts only matter for a layer that adds a 16-bit loss.
        objective = tf.add_n([tf.cast(share, tf.float32) for share in shares]) if shares else tf.constant(0.0)
        if layer_losses and self.losses:
            objective += tf.add_n([tf.cast(loss, tf.float32) for loss in self.losses]) / replicas
        return objective

    def _track(self, terms: Mapping[str, LossTerm]) -> None:
        # Every replica logs each term's global-batch value: the sum of the replicas' shares
        # (for a mean, the mean of their means), which is what one device would log.
        replicas = num_replicas()
        total = []
        for name, term in terms.items():
            value = sum_over_replicas(term.value / replicas if term.replica_mean else term.value)
            self.loss_trackers[name].update_state(value)
            if not (isinstance(term.weight, (int, float)) and term.weight == 0):
                total.append(term.weight * value)
        self.loss_trackers["loss"].update_state(tf.add_n(total))
