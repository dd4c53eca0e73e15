"""Batched `tf.data` pipelines over in-memory `TabularData`.

Preprocessing (lookups, normalisation, sequence padding) runs once, vectorised over all
rows; each epoch then only shuffles row indices and gathers whole batches, so the
pipeline does a handful of ops per batch instead of per-row work.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfzoo.data.features import DatasetSpec
from tfzoo.data.preprocessing import FeaturePreprocessor
from tfzoo.data.tabular import TabularData


def preprocess_columns(data: TabularData, spec: DatasetSpec) -> dict[str, tf.Tensor]:
    """Model inputs for every row of `data`, computed in one vectorised call."""
    preprocessor = FeaturePreprocessor(spec)
    raw = {f.name: tf.constant(data.features[f.name]) for f in spec.features}
    return preprocessor(raw)


def make_dataset(
    data: TabularData,
    spec: DatasetSpec,
    *,
    batch_size: int,
    shuffle: bool = False,
    seed: int | None = None,
    repeat: bool = False,
    first_epoch: int = 0,
    drop_remainder: bool = False,
    with_labels: bool = True,
) -> tf.data.Dataset:
    """A dataset of `(features, labels, label_masks)` batches (or `features` alone).

    Args:
      data: the rows.
      spec: the fitted spec (fit on the training split, then reuse it for every split).
      batch_size: global batch size (under `tf.distribute`, split across replicas).
      shuffle: reshuffle the rows every epoch (seeded by `seed`).
      repeat: repeat forever, epoch after epoch, starting at `first_epoch` (use with
        `fit(steps_per_epoch=ceil(rows / batch_size))`). A shuffled, repeated dataset
        orders epoch e by a permutation keyed on (seed, e) alone, and no batch spans two
        epochs, so a run resumed at epoch e sees exactly the batches it would have seen.
      first_epoch: the first epoch a repeated dataset yields.
      drop_remainder: drop the last partial batch.
      with_labels: yield `(features, labels, label_masks)`; else features only.

    The element layout is Keras' `(x, y, sample_weight)`: `labels` and `label_masks` are
    dicts keyed by label name, a mask of 0 marking a missing label.
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1. Received: batch_size={batch_size}")
    return dataset_from_columns(
        model_columns(data, spec, with_labels=with_labels),
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        repeat=repeat,
        first_epoch=first_epoch,
        drop_remainder=drop_remainder,
    )


def model_columns(data: TabularData, spec: DatasetSpec, *, with_labels: bool = True) -> dict:
    """Every row preprocessed, as NumPy: `{"features": ..., "labels": ..., "label_masks": ...}`.

    What `dataset_from_columns` batches; NumPy so that a dataset function run on another
    machine (`ParameterServerStrategy` workers) can embed the rows.
    """
    columns = {"features": {k: v.numpy() for k, v in preprocess_columns(data, spec).items()}}
    if with_labels:
        columns["labels"] = {k: np.asarray(data.labels[k]) for k in spec.labels}
        columns["label_masks"] = {k: np.asarray(data.label_masks[k]) for k in spec.labels}
    return columns


def dataset_from_columns(
    columns: dict,
    *,
    batch_size: int,
    shuffle: bool = False,
    seed: int | None = None,
    repeat: bool = False,
    first_epoch: int = 0,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """The batches of `make_dataset` from `model_columns` (arguments as there)."""
    with_labels = "labels" in columns
    columns = tf.nest.map_structure(tf.constant, columns)
    num_rows = int(next(iter(columns["features"].values())).shape[0])
    if repeat and shuffle:
        seed = seed if seed is not None else int(tf.random.uniform([], maxval=2**31 - 1, dtype=tf.int64))

        def epoch_batches(epoch):
            order = tf.random.experimental.stateless_shuffle(
                tf.range(num_rows, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch])
            )
            return tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=drop_remainder)

        batches = tf.data.Dataset.range(first_epoch, tf.int64.max).flat_map(epoch_batches)
    else:
        indices = tf.data.Dataset.range(num_rows)
        if shuffle:
            indices = indices.shuffle(num_rows, seed=seed, reshuffle_each_iteration=True)
        batches = indices.batch(batch_size, drop_remainder=drop_remainder)
        if repeat:
            batches = batches.repeat()

    def gather(batch_indices):
        rows = tf.nest.map_structure(lambda column: tf.gather(column, batch_indices), columns)
        if not with_labels:
            return rows["features"]
        return rows["features"], rows["labels"], rows["label_masks"]

    dataset = batches.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)
