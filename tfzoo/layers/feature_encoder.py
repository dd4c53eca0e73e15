"""Preprocessed feature dict -> one dense vector per example."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from tfzoo.data.features import DatasetSpec, as_spec


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

    @property
    def output_dim(self) -> int:
        return sum(f.encoded_width(self.embedding_dim) for f in self.feature_spec.features)

    def build(self, input_shape):
        self._embeddings = {}
        for f in self.feature_spec.features:
            if f.embedding_rows:
                self._embeddings[f.name] = tf.keras.layers.Embedding(
                    f.embedding_rows, f.embedding_width(self.embedding_dim), name=f.embedding_table_name
                )
        super().build(input_shape)

    def call(self, features: Mapping[str, tf.Tensor]) -> tf.Tensor:
        # Each feature encodes itself (`tfzoo.data.features`): [batch, its encoded width], in
        # the layer's compute dtype (bfloat16 / float16 under a mixed policy, as the tables).
        parts = [
            f.encode(features[f.name], self._embeddings.get(f.name), dtype=self.compute_dtype)
            for f in self.feature_spec.features
        ]
        return tf.concat(parts, axis=-1)  # [batch, output_dim]

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([None, self.output_dim])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(feature_spec=self.feature_spec.to_config(), embedding_dim=self.embedding_dim)
        return config
