"""Raw columns -> model inputs, as one Keras layer built from a fitted `DatasetSpec`.

The same layer runs once over the in-memory training data (inside
`tfzoo.data.make_dataset`, vectorised over all rows) and again in front of the model in
every exported serving signature, so training and serving cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from tfzoo.data.features import (
    FLOAT32,
    INT64,
    STRING,
    CategoricalFeature,
    DatasetSpec,
    EmbeddingFeature,
    IdFeature,
    NumericFeature,
    SequenceFeature,
    as_spec,
)


def _lookup_layer(feature: CategoricalFeature) -> tf.keras.layers.Layer:
    name = f"lookup_{feature.name}"
    if feature.hash_buckets is not None:
        return tf.keras.layers.Hashing(num_bins=feature.hash_buckets, name=name)
    if feature.dtype == STRING:
        return tf.keras.layers.StringLookup(
            vocabulary=list(feature.vocabulary),
            num_oov_indices=feature.num_oov_buckets,
            mask_token=None,
            name=name,
        )
    return tf.keras.layers.IntegerLookup(
        vocabulary=list(feature.vocabulary),
        num_oov_indices=feature.num_oov_buckets,
        mask_token=None,
        vocabulary_dtype="int64",
        name=name,
    )


@tf.keras.utils.register_keras_serializable(package="tfzoo")
class FeaturePreprocessor(tf.keras.layers.Layer):
    """Maps a dict of raw feature tensors to the dict of model inputs.

    Args:
      feature_spec: a fitted `DatasetSpec` or its config.

    Call arguments:
      features: dict of raw tensors keyed by feature name (extra keys are ignored), each
        batched along axis 0 with the dtype of `DatasetSpec.serving_signature()`.

    Returns:
      dict of model inputs keyed by feature name: int64 indices for categorical, id and
      categorical-sequence features ([batch] or [batch, max_length]), float32 values for
      numeric, numeric-sequence and embedding features. Never NaN.
    """

    def __init__(self, feature_spec: DatasetSpec | Mapping[str, Any], **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.feature_spec = as_spec(feature_spec)
        if not self.feature_spec.is_fitted:
            unfitted = [f.name for f in self.feature_spec.features if not f.is_fitted]
            raise ValueError(
                "`feature_spec` must be fitted (vocabularies and statistics learned) before "
                f"preprocessing. Call spec.fit(train_columns) first. Unfitted: {unfitted}"
            )
        # Lookup tables are not weights: they are created once, here, from the spec.
        self._lookups = {}
        for feature in self.feature_spec.features:
            element = feature.element if isinstance(feature, SequenceFeature) else feature
            if isinstance(element, CategoricalFeature):
                self._lookups[feature.name] = _lookup_layer(element)

    def _element(self, name: str, feature, values: tf.Tensor) -> tf.Tensor:
        if isinstance(feature, CategoricalFeature):
            return self._lookups[name](values)
        if isinstance(feature, IdFeature):
            in_range = (values >= 0) & (values < feature.num_ids)
            return tf.where(in_range, values, tf.constant(feature.num_ids, tf.int64))
        # NumericFeature
        if feature.log1p:
            values = tf.sign(values) * tf.math.log1p(tf.abs(values))
        standardised = (values - feature.mean) / feature.std
        return tf.where(tf.math.is_finite(standardised), standardised, tf.zeros_like(standardised))

    def _sequence(self, feature: SequenceFeature, values: tf.Tensor) -> tf.Tensor:
        if feature.dtype == FLOAT32:
            valid = tf.math.is_finite(values)
        elif feature.dtype == INT64:
            valid = values >= 0
        else:
            valid = tf.not_equal(values, "")
        # A row's length runs to its last valid element; gaps before it stay in place as
        # missing values, so channels of one behaviour sequence remain aligned.
        positions = tf.range(1, tf.shape(values, out_type=tf.int64)[1] + 1)  # [width]
        lengths = tf.reduce_max(tf.where(valid, positions[tf.newaxis, :], 0), axis=1)  # [batch]
        # Keep the most recent `max_length` positions of each row, left-aligned.
        kept = tf.RaggedTensor.from_tensor(values, lengths=lengths)[:, -feature.max_length :]
        element = self._element(feature.name, feature.element, kept.flat_values)
        if not isinstance(feature.element, NumericFeature):
            element = element + 1  # index 0 is padding
        padded = kept.with_flat_values(element).to_tensor(
            default_value=tf.zeros([], element.dtype), shape=[None, feature.max_length]
        )
        return padded  # [batch, max_length]

    def call(self, features: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        outputs = {}
        for feature in self.feature_spec.features:
            if feature.name not in features:
                raise KeyError(
                    f"Missing feature {feature.name!r}; the model expects {list(self.feature_spec.feature_names)}."
                )
            values = tf.convert_to_tensor(features[feature.name])
            want = {STRING: tf.string, INT64: tf.int64, FLOAT32: tf.float32}[feature.dtype]
            if values.dtype != want:
                if (
                    values.dtype.is_integer
                    and want in (tf.int64, tf.float32)
                    or (values.dtype.is_floating and want == tf.float32)
                ):
                    values = tf.cast(values, want)
                else:
                    raise TypeError(f"Feature {feature.name!r} must be {want.name}; got {values.dtype.name}.")
            if isinstance(feature, SequenceFeature):
                outputs[feature.name] = self._sequence(feature, values)
            elif isinstance(feature, EmbeddingFeature):
                outputs[feature.name] = tf.where(tf.math.is_finite(values), values, tf.zeros_like(values))
            else:
                outputs[feature.name] = self._element(feature.name, feature, values)
        return outputs

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("trainable", None)
        config["feature_spec"] = self.feature_spec.to_config()
        return config
