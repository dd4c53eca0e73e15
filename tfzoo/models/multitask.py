"""Base class of the zoo's multi-task rankers: binary tasks, label masks, per-task metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfzoo.data.features import DatasetSpec, as_spec

# Evenly spaced thresholds let Keras bucket predictions in O(batch + thresholds); 2,000 keep
# the logged AUC within ~1e-3 of the exact value on Census (exact figures: tfzoo.evaluation).
AUC_THRESHOLDS = 2000


class MultiTaskModel(tfrs.Model):
    """A `tfrs.Model` with one binary task per label.

    Subclasses build `encoder`, `trunk` and `towers` in `__init__` (see `task_logits`), or
    override `task_logits` when their structure is different.
    Training data are `(features, labels, label_masks)` batches from
    `tfzoo.data.make_dataset`: a task's loss is the mean binary cross-entropy over the rows
    where its label is present (mask 1), so a missing label contributes nothing and a
    sparse task is not diluted by the rows that lack it. The total loss is the
    `task_weights`-weighted sum of the task losses.

    `fit` and `evaluate` report `loss` and, per task, `<task>_loss`, `<task>_auc` (ROC) and
    `<task>_ap` (area under the precision-recall curve, i.e. average precision).

    Args:
      feature_spec: the fitted `DatasetSpec` (or its config) of the model inputs.
      tasks: task (label) names; default: the spec's labels.
      task_weights: loss weight per task; default 1 for every task.
    """

    def __init__(
        self,
        *,
        feature_spec: DatasetSpec | Mapping[str, Any],
        tasks: Sequence[str] | None = None,
        task_weights: Mapping[str, float] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.feature_spec = as_spec(feature_spec)
        self.tasks = tuple(tasks if tasks is not None else self.feature_spec.labels)
        if not self.tasks:
            raise ValueError("A multi-task model needs at least one task. Received: tasks=()")
        unknown = sorted(set(task_weights or {}) - set(self.tasks))
        if unknown:
            raise ValueError(f"`task_weights` names unknown tasks {unknown}; tasks are {list(self.tasks)}.")
        self.task_weights = {t: float((task_weights or {}).get(t, 1.0)) for t in self.tasks}
        self.ranking_tasks = {
            t: tfrs.tasks.Ranking(
                loss=tf.keras.losses.BinaryCrossentropy(from_logits=True, reduction=tf.keras.losses.Reduction.SUM),
                metrics=[
                    tf.keras.metrics.AUC(name=f"{t}_auc", from_logits=True, num_thresholds=AUC_THRESHOLDS),
                    tf.keras.metrics.AUC(name=f"{t}_ap", curve="PR", from_logits=True, num_thresholds=AUC_THRESHOLDS),
                ],
                name=f"{t}_task",
            )
            for t in self.tasks
        }
        for task in self.ranking_tasks.values():
            task.build(None)  # weightless; marked built so SavedModel export serialises it quietly
        self.task_loss_trackers = {t: tf.keras.metrics.Mean(name=f"{t}_loss") for t in self.tasks}
        self.loss_tracker = tf.keras.metrics.Mean(name="loss")

    def compile(self, optimizer="adam", **kwargs):
        # Label masks travel as Keras sample weights and compute_loss applies them; no
        # compiled (weighted) metrics are involved, so say so instead of warning about it.
        kwargs.setdefault("weighted_metrics", [])
        super().compile(optimizer=optimizer, **kwargs)

    def task_logits(self, features: Mapping[str, tf.Tensor], training: bool = False) -> dict[str, tf.Tensor]:
        """Logits of every task, each [batch].

        The default composes the blocks that subclasses create in `__init__`:
        `self.encoder` (features -> [batch, d]), `self.trunk` ([batch, d] -> [batch, T, h],
        or [batch, h] shared by all tasks) and `self.towers` (task -> [batch, h] -> [batch, 1]).
        """
        shared = self.trunk(self.encoder(features), training=training)
        per_task = [shared] * len(self.tasks) if shared.shape.rank == 2 else tf.unstack(shared, axis=1)
        return {
            task: tf.squeeze(self.towers[task](x, training=training), axis=-1)  # [batch]
            for task, x in zip(self.tasks, per_task)
        }

    def call(self, features: Mapping[str, tf.Tensor], training: bool = False) -> dict[str, tf.Tensor]:
        """Probability of every task, each [batch]: what the serving signature returns."""
        return {t: tf.sigmoid(logit) for t, logit in self.task_logits(features, training=training).items()}

    def task_losses(self, inputs, training: bool = False) -> dict[str, tf.Tensor]:
        """Each task's mean cross-entropy over the rows where its label is present."""
        features, labels, label_masks = inputs
        logits = self.task_logits(features, training=training)
        losses = {}
        for task in self.tasks:
            mask = tf.cast(label_masks[task], tf.float32)  # [batch]
            # Keras' cross-entropy reduces a trailing class axis: [batch, 1] -> [batch].
            summed = self.ranking_tasks[task](
                labels=tf.cast(labels[task], tf.float32)[:, tf.newaxis],
                predictions=logits[task][:, tf.newaxis],
                sample_weight=mask,
            )
            count = tf.reduce_sum(mask)
            # Under tf.distribute each replica sees part of the global batch: dividing by
            # the global count of present labels makes the replicas' losses sum to the
            # global-batch mean, whatever the split of the (masked) rows across replicas.
            losses[task] = summed / tf.maximum(_sum_over_replicas(count), 1.0)
            self.task_loss_trackers[task].update_state(summed / tf.maximum(count, 1.0), sample_weight=count)
        return losses

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        losses = self.task_losses(inputs, training=training)
        return tf.add_n([self.task_weights[task] * losses[task] for task in self.tasks])

    def _step(self, inputs, training: bool):
        loss = self.compute_loss(inputs, training=training)
        # Layer losses (weight decay, MoE balancing) are computed per replica; their
        # replica mean is what one device would add.
        regularization = tf.add_n(self.losses) / _num_replicas() if self.losses else tf.constant(0.0)
        return loss, loss + regularization

    def train_step(self, inputs):
        with tf.GradientTape() as tape:
            loss, total = self._step(inputs, training=True)
        # Optimizers sum gradients over replicas: `total` is this replica's share of the
        # global-batch loss, so the sum is the gradient of the global-batch mean.
        gradients = tape.gradient(total, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        self._track_loss(loss)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, inputs):
        loss, _ = self._step(inputs, training=False)
        self._track_loss(loss)
        return {m.name: m.result() for m in self.metrics}

    def _track_loss(self, replica_share: tf.Tensor) -> None:
        # The tracker averages over replicas; a share times the replica count averages to
        # the global-batch loss, the number a single device would log.
        self.loss_tracker.update_state(replica_share * _num_replicas())

    def predict_step(self, data):
        features = data[0] if isinstance(data, tuple) else data
        return self(features, training=False)

    def get_config(self) -> dict[str, Any]:
        return {
            "feature_spec": self.feature_spec.to_config(),
            "tasks": list(self.tasks),
            "task_weights": dict(self.task_weights),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


def _num_replicas() -> float:
    return float(tf.distribute.get_strategy().num_replicas_in_sync)


def _sum_over_replicas(value: tf.Tensor) -> tf.Tensor:
    """`value` summed over the replicas of the current step (itself outside tf.distribute)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)
