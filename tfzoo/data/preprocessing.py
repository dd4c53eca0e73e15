"""Raw columns -> model inputs, as one Keras layer built from a fitted `DatasetSpec`.

The same layer runs once over the in-memory training data (inside
`tfzoo.data.make_dataset`, vectorised over all rows) and again in front of the model in
every exported serving signature, so training and serving cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from tfzoo.data.features import FLOAT32, INT64, STRING, DatasetSpec, as_spec


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
            lookup = feature.lookup_layer()
            if lookup is not None:
                self._lookups[feature.name] = lookup

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
            outputs[feature.name] = feature.preprocess(values, self._lookups.get(feature.name))
        return outputs

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("trainable", None)
        config["feature_spec"] = self.feature_spec.to_config()
        return config
