import numpy as np
import pytest
import tensorflow as tf

from tests.harness import assert_allclose
from tfzoo.data import (
    CategoricalFeature,
    DatasetSpec,
    EmbeddingFeature,
    FeaturePreprocessor,
    IdFeature,
    NumericFeature,
    SequenceFeature,
)


def spec():
    return DatasetSpec(
        features=(
            CategoricalFeature("color", vocabulary=("red", "blue"), num_oov_buckets=1),
            CategoricalFeature("size", vocabulary=(10, 20), dtype="int64"),
            IdFeature("item", num_ids=5),
            NumericFeature("price", mean=2.0, std=4.0),
            NumericFeature("amount", mean=1.0, std=0.5, log1p=True),
            SequenceFeature("history", IdFeature("history", num_ids=5), max_length=3),
            SequenceFeature("gaps", NumericFeature("gaps", mean=0.0, std=2.0), max_length=3),
            EmbeddingFeature("title", dim=2),
        )
    )


def raw():
    return {
        "color": tf.constant(["blue", "red", "purple"]),
        "size": tf.constant([20, 30, 10], tf.int64),
        "item": tf.constant([0, 4, 7], tf.int64),
        "price": tf.constant([6.0, np.nan, np.inf]),
        "amount": tf.constant([np.e - 1.0, 0.0, -(np.e - 1.0)]),
        # Row 0 is longer than max_length: the last 3 valid positions are kept.
        # Row 1 has a gap (-1) before its last element: kept in place as OOV.
        "history": tf.constant([[1, 2, 3, 4], [2, -1, 3, -1], [-1, -1, -1, -1]], tf.int64),
        "gaps": tf.constant([[1.0, 2.0, 3.0, 4.0], [2.0, np.nan, 4.0, np.nan], [np.nan] * 4]),
        "title": tf.constant([[1.0, np.nan], [0.5, 0.5], [np.nan, np.nan]]),
    }


def test_values_derived_by_hand():
    out = FeaturePreprocessor(spec())(raw())
    # StringLookup: OOV bucket 0, then the vocabulary in order.
    np.testing.assert_array_equal(out["color"], [2, 1, 0])
    np.testing.assert_array_equal(out["size"], [2, 0, 1])
    # Ids outside [0, 5) go to the OOV index 5.
    np.testing.assert_array_equal(out["item"], [0, 4, 5])
    # (6 - 2) / 4 = 1; missing and infinite values become 0, never NaN.
    np.testing.assert_allclose(out["price"], [1.0, 0.0, 0.0])
    # log1p(e - 1) = 1 -> (1 - 1) / 0.5 = 0; log1p(0) = 0 -> -2; sign kept: -1 -> -4.
    np.testing.assert_allclose(out["amount"], [0.0, -2.0, -4.0], atol=1e-6)
    # ids shifted by one (0 = padding); gap -1 is OOV (5) + 1 = 6.
    np.testing.assert_array_equal(out["history"], [[3, 4, 5], [3, 6, 4], [0, 0, 0]])
    # numeric sequences stay aligned with the id channel: same kept positions.
    np.testing.assert_allclose(out["gaps"], [[1.0, 1.5, 2.0], [1.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(out["title"], [[1.0, 0.0], [0.5, 0.5], [0.0, 0.0]])


def test_unfitted_spec_is_refused():
    with pytest.raises(ValueError, match="must be fitted.*Unfitted: \\['c'\\]"):
        FeaturePreprocessor(DatasetSpec(features=(CategoricalFeature("c"),)))


def test_wrong_dtype_and_missing_feature_name_the_feature():
    layer = FeaturePreprocessor(spec())
    inputs = raw()
    inputs["color"] = tf.constant([1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="'color' must be string"):
        layer(inputs)
    inputs = raw()
    del inputs["gaps"]
    with pytest.raises(KeyError, match="Missing feature 'gaps'"):
        layer(inputs)


def test_config_and_saved_model_round_trip(tmp_path):
    layer = FeaturePreprocessor(spec())
    expected = layer(raw())
    clone = FeaturePreprocessor.from_config(layer.get_config())
    assert_allclose(clone(raw()), expected)
    module = tf.Module()
    module.pre = layer
    module.call = tf.function(layer.call, input_signature=[spec().serving_signature()])
    tf.saved_model.save(module, str(tmp_path / "pre"))
    loaded = tf.saved_model.load(str(tmp_path / "pre"))
    assert_allclose(loaded.call(raw()), expected)
