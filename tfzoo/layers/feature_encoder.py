"""Preprocessed feature dict -> one dense vector per example."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from tfzoo.data.features import (
    CategoricalFeature,
    DatasetSpec,
    EmbeddingFeature,
    IdFeature,
    NumericFeature,
    SequenceFeature,
    as_spec,
)


@tf.keras.utils.register_keras_serializable(package="tfzoo")
class FeatureEncoder(tf.keras.layers.Layer):
    """Embeds and concatenates every feature of a `DatasetSpec`.

    Categorical and id features go through their own embedding table (width: the
    feature's `embedding_dim`, else `embedding_dim`); categorical sequences are embedded
    and mean-pooled over their non-padding positions; numeric sequences are averaged;
    numeric and precomputed-embedding features pass through, and a bucketised numeric
    feature (`NumericFeature.boundaries`) also gets an embedding of its bucket.

    Args:
      feature_spec: a fitted `DatasetSpec` (or its config).
      embedding_dim: default embedding width.

    Call arguments:
      features: dict of preprocessed inputs (output of `FeaturePreprocessor`).

    Returns:
      [batch, output_dim] with `output_dim` the sum of the per-feature widths.
    """

    def __init__(self, feature_spec: DatasetSpec | Mapping[str, Any], *, embedding_dim: int = 8, **kwargs):
        super().__init__(**kwargs)
        if embedding_dim < 1:
            raise ValueError(f"`embedding_dim` must be >= 1. Received: embedding_dim={embedding_dim}")
        self.feature_spec = as_spec(feature_spec)
        self.embedding_dim = embedding_dim

    def _width(self, feature) -> int:
        return feature.embedding_dim or self.embedding_dim

    @property
    def output_dim(self) -> int:
        total = 0
        for f in self.feature_spec.features:
            if isinstance(f, EmbeddingFeature):
                total += f.dim
            elif isinstance(f, NumericFeature):
                total += 1 + (self.embedding_dim if f.num_bucket_indices else 0)
            elif isinstance(f, SequenceFeature) and isinstance(f.element, NumericFeature):
                total += 1
            else:
                total += self._width(f)
        return total

    def build(self, input_shape):
        self._embeddings = {}
        for f in self.feature_spec.features:
            if isinstance(f, (CategoricalFeature, IdFeature)) or (
                isinstance(f, SequenceFeature) and not isinstance(f.element, NumericFeature)
            ):
                self._embeddings[f.name] = tf.keras.layers.Embedding(
                    f.cardinality, self._width(f), name=f"embedding_{f.name}"
                )
            elif isinstance(f, NumericFeature) and f.num_bucket_indices:
                self._embeddings[f.name] = tf.keras.layers.Embedding(
                    f.num_bucket_indices, self.embedding_dim, name=f"bucket_embedding_{f.name}"
                )
        super().build(input_shape)

    def call(self, features: Mapping[str, tf.Tensor]) -> tf.Tensor:
        parts = []
        for f in self.feature_spec.features:
            x = features[f.name]
            if isinstance(f, EmbeddingFeature):
                parts.append(tf.cast(x, tf.float32))  # [batch, dim]
            elif isinstance(f, NumericFeature):
                x = tf.cast(x, tf.float32)
                parts.append(x[:, tf.newaxis])  # [batch, 1]
                if f.num_bucket_indices:
                    bucket = tf.raw_ops.Bucketize(input=x, boundaries=list(f.boundaries))  # [batch]
                    parts.append(self._embeddings[f.name](bucket))  # [batch, embedding_dim]
            elif isinstance(f, SequenceFeature) and isinstance(f.element, NumericFeature):
                parts.append(tf.reduce_mean(tf.cast(x, tf.float32), axis=1, keepdims=True))  # [batch, 1]
            elif isinstance(f, SequenceFeature):
                embedded = self._embeddings[f.name](x)  # [batch, length, width]
                mask = tf.cast(x > 0, embedded.dtype)[:, :, tf.newaxis]  # [batch, length, 1]
                total = tf.reduce_sum(embedded * mask, axis=1)  # [batch, width]
                parts.append(total / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0))
            else:
                parts.append(self._embeddings[f.name](x))  # [batch, width]
        return tf.concat(parts, axis=-1)  # [batch, output_dim]

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([None, self.output_dim])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(feature_spec=self.feature_spec.to_config(), embedding_dim=self.embedding_dim)
        return config
