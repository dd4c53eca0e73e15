import numpy as np
import tensorflow as tf

from tests.harness import check_layer
from tfzoo.data import CategoricalFeature, DatasetSpec, EmbeddingFeature, IdFeature, NumericFeature, SequenceFeature
from tfzoo.layers import FeatureEncoder

SPEC = DatasetSpec(
    features=(
        CategoricalFeature("color", vocabulary=("red", "blue")),
        IdFeature("item", num_ids=4, embedding_dim=3),
        NumericFeature("price", mean=0.0, std=1.0),
        SequenceFeature("history", IdFeature("history", num_ids=4), max_length=3),
        SequenceFeature("gaps", NumericFeature("gaps", mean=0.0, std=1.0), max_length=3),
        EmbeddingFeature("title", dim=2),
    )
)


def inputs():
    return {
        "color": tf.constant([1, 2], tf.int64),
        "item": tf.constant([0, 3], tf.int64),
        "price": tf.constant([0.5, -1.0]),
        "history": tf.constant([[1, 2, 0], [0, 0, 0]], tf.int64),
        "gaps": tf.constant([[3.0, 0.0, 0.0], [0.0, 0.0, 0.0]]),
        "title": tf.constant([[1.0, 2.0], [3.0, 4.0]]),
    }


def test_concatenates_embeddings_pools_sequences_and_passes_numbers(tmp_path):
    layer = FeatureEncoder(SPEC, embedding_dim=2, name="encoder")
    out = check_layer(layer, inputs(), tmp_path).numpy()
    assert layer.output_dim == 2 + 3 + 1 + 2 + 1 + 2 == out.shape[1]
    color = layer._embeddings["color"].embeddings.numpy()
    item = layer._embeddings["item"].embeddings.numpy()
    history = layer._embeddings["history"].embeddings.numpy()
    # Row 0: history [1, 2, pad] -> mean of embeddings 1 and 2; gaps mean (3+0+0)/3 = 1.
    expected0 = np.concatenate([color[1], item[0], [0.5], (history[1] + history[2]) / 2, [1.0], [1.0, 2.0]])
    np.testing.assert_allclose(out[0], expected0, atol=1e-6)
    # Row 1: an all-padding history pools to zeros, not NaN.
    np.testing.assert_allclose(out[1, 6:8], [0.0, 0.0])


def test_bucketised_numbers_also_get_their_bucket_embedding(tmp_path):
    spec = DatasetSpec(features=(NumericFeature("age", mean=0.0, std=1.0, num_buckets=3, boundaries=(-0.5, 0.5)),))
    layer = FeatureEncoder(spec, embedding_dim=2, name="encoder")
    x = {"age": tf.constant([-1.0, 0.0, 2.0])}
    out = check_layer(layer, x, tmp_path).numpy()
    table = layer._embeddings["age"].embeddings.numpy()
    # -1 < -0.5 -> bucket 0; -0.5 <= 0 < 0.5 -> bucket 1; 2 >= 0.5 -> bucket 2.
    np.testing.assert_allclose(out, np.c_[[-1.0, 0.0, 2.0], table[[0, 1, 2]]], atol=1e-6)
    assert layer.output_dim == 3
