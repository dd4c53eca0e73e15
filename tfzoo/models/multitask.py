"""Base class of the zoo's multi-task rankers: binary tasks, label masks, per-task metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfzoo.data.features import DatasetSpec, as_spec
from tfzoo.models.base import LossTerm, ZooModel, dtype_policy, sum_over_replicas

# Evenly spaced thresholds let Keras bucket predictions in O(batch + thresholds); 2,000 keep
# the logged AUC within ~1e-3 of the exact value on Census (exact figures: tfzoo.evaluation).
AUC_THRESHOLDS = 2000


class MultiTaskModel(ZooModel):
    """A `tfrs.Model` with one binary task per label (its training step: `ZooModel`).

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
        with dtype_policy("float32"):  # losses and metrics in float32 under a mixed policy
            self.ranking_tasks = {
                t: tfrs.tasks.Ranking(
                    loss=tf.keras.losses.BinaryCrossentropy(from_logits=True, reduction=tf.keras.losses.Reduction.SUM),
                    metrics=[
                        tf.keras.metrics.AUC(name=f"{t}_auc", from_logits=True, num_thresholds=AUC_THRESHOLDS),
                        tf.keras.metrics.AUC(
                            name=f"{t}_ap", curve="PR", from_logits=True, num_thresholds=AUC_THRESHOLDS
                        ),
                    ],
                    name=f"{t}_task",
                )
                for t in self.tasks
            }
        for task in self.ranking_tasks.values():
            task.build(None)  # weightless; marked built so SavedModel export serialises it quietly
        self.track_loss_terms(self.tasks)

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

    def float32_task_logits(self, features: Mapping[str, tf.Tensor], training: bool = False) -> dict[str, tf.Tensor]:
        """`task_logits` in float32 whatever the dtype policy: sigmoids, losses and the
        served probabilities are never computed in 16 bits."""
        return {t: tf.cast(logit, tf.float32) for t, logit in self.task_logits(features, training=training).items()}

    def call(self, features: Mapping[str, tf.Tensor], training: bool = False) -> dict[str, tf.Tensor]:
        """Probability of every task, each [batch] float32: what the serving signature returns."""
        return {t: tf.sigmoid(logit) for t, logit in self.float32_task_logits(features, training=training).items()}

    def task_losses(self, inputs, training: bool = False) -> dict[str, tf.Tensor]:
        """Each task's cross-entropy summed over the rows where its label is present, over
        the count of such rows in the global batch: this replica's share of the task's mean
        (under tf.distribute the replicas' shares add up to the global-batch mean, whatever
        the split of the masked rows across replicas)."""
        features, labels, label_masks = inputs
        logits = self.float32_task_logits(features, training=training)
        losses = {}
        for task in self.tasks:
            mask = tf.cast(label_masks[task], tf.float32)  # [batch]
            # Keras' cross-entropy reduces a trailing class axis: [batch, 1] -> [batch].
            summed = self.ranking_tasks[task](
                labels=tf.cast(labels[task], tf.float32)[:, tf.newaxis],
                predictions=logits[task][:, tf.newaxis],
                sample_weight=mask,
            )
            losses[task] = summed / tf.maximum(sum_over_replicas(tf.reduce_sum(mask)), 1.0)
        return losses

    def task_loss_weights(self) -> dict[str, float | tf.Tensor]:
        return dict(self.task_weights)

    def loss_terms(self, inputs, training: bool = False) -> dict[str, LossTerm]:
        losses = self.task_losses(inputs, training=training)
        weights = self.task_loss_weights()
        return {task: LossTerm(losses[task], weight=weights[task]) for task in self.tasks}

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
