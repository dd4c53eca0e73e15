"""Wide & deep encoder of one entity's multi-modal features (GRec sec. 3.1, Fig. 2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from tfzoo.data.features import DatasetSpec, as_spec
from tfzoo.layers.feature_encoder import FeatureEncoder
from tfzoo.layers.kernel_options import check_kernel_options, kernel_options, kernel_options_config


def _part(feature) -> str:
    if feature.modality == "numeric":  # numbers and number sequences
        return "wide"
    if feature.modality == "embedding":
        return "precomputed"
    if feature.modality == "id" and not feature.is_sequence:
        return "id"
    return "deep"  # categorical, categorical / id sequences


@tf.keras.utils.register_keras_serializable(package="tfzoo")
class WideDeepEncoder(tf.keras.layers.Layer):
    """One entity (user, item, query) as the concatenation of its encoded parts.

    - id: each id feature (e.g. the item id) through its own embedding table, as is;
    - deep: categorical features (and categorical sequences such as genres, mean-pooled)
      embedded, concatenated and passed through a dense layer of `units` (the deep tower);
    - wide: numeric features, standardised by the preprocessing, through a feed-forward
      layer to the same `units`;
    - precomputed: embedding features (a CLIP / text-encoder vector) as they are.

    A user encoder is typically deep + wide, an item encoder id + deep + wide +
    precomputed, a search-text encoder a precomputed text embedding alone; the parts
    present in `feature_spec` decide.

    Args:
      feature_spec: the fitted `DatasetSpec` (or its config) of this entity's features.
      units: width of the deep tower and of the wide feed-forward.
      embedding_dim: embedding width of id and categorical features without their own.
      activation: activation of the deep tower and the wide feed-forward.
      kernel_initializer, kernel_regularizer: a Keras initializer / regularizer of the
        deep tower's and the wide feed-forward's kernels (None: Glorot uniform, no
        regularizer); embedding tables and biases keep theirs
        (`tfzoo.layers.kernel_options`).

    Call arguments:
      features: dict of preprocessed inputs (other keys are ignored).

    Returns:
      [batch, output_dim]: id embeddings, deep, wide, precomputed vectors, in that order.
    """

    def __init__(
        self,
        feature_spec: DatasetSpec | Mapping[str, Any],
        *,
        units: int = 32,
        embedding_dim: int = 8,
        activation: str = "relu",
        kernel_initializer=None,
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.feature_spec = as_spec(feature_spec)
        if not self.feature_spec.features:
            raise ValueError(
                "`feature_spec` of a WideDeepEncoder must hold at least one feature. Received: features=()"
            )
        if units < 1:
            raise ValueError(f"`units` must be >= 1. Received: units={units}")
        if embedding_dim < 1:
            raise ValueError(f"`embedding_dim` must be >= 1. Received: embedding_dim={embedding_dim}")
        check_kernel_options(kernel_initializer, kernel_regularizer)
        self.units = units
        self.embedding_dim = embedding_dim
        self.activation = activation
        self.kernel_initializer = kernel_initializer
        self.kernel_regularizer = kernel_regularizer

    def _names(self, part: str) -> list[str]:
        return [f.name for f in self.feature_spec.features if _part(f) == part]

    @property
    def output_dim(self) -> int:
        spec = self.feature_spec
        ids = sum(spec.feature(n).embedding_dim or self.embedding_dim for n in self._names("id"))
        precomputed = sum(spec.feature(n).dim for n in self._names("precomputed"))
        return ids + self.units * (bool(self._names("deep")) + bool(self._names("wide"))) + precomputed

    def build(self, input_shape):
        self._encoders = {}
        for part in ("id", "deep", "wide", "precomputed"):
            names = self._names(part)
            if names:
                self._encoders[part] = FeatureEncoder(
                    self.feature_spec.select(names), embedding_dim=self.embedding_dim, name=f"{part}_features"
                )
        self.deep_tower = (
            tf.keras.layers.Dense(self.units, activation=self.activation, name="deep_tower", **kernel_options(self))
            if "deep" in self._encoders
            else None
        )
        self.wide_feed_forward = (
            tf.keras.layers.Dense(
                self.units, activation=self.activation, name="wide_feed_forward", **kernel_options(self)
            )
            if "wide" in self._encoders
            else None
        )
        super().build(input_shape)

    def call(self, features):
        parts = []
        if "id" in self._encoders:
            parts.append(self._encoders["id"](features))  # [batch, id dims]
        if "deep" in self._encoders:
            parts.append(self.deep_tower(self._encoders["deep"](features)))  # [batch, units]
        if "wide" in self._encoders:
            parts.append(self.wide_feed_forward(self._encoders["wide"](features)))  # [batch, units]
        if "precomputed" in self._encoders:
            parts.append(self._encoders["precomputed"](features))  # [batch, vector dims]
        return tf.concat(parts, axis=-1)  # [batch, output_dim]

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([None, self.output_dim])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            feature_spec=self.feature_spec.to_config(),
            units=self.units,
            embedding_dim=self.embedding_dim,
            activation=self.activation,
            **kernel_options_config(self),
        )
        return config
