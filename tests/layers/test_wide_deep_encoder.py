import numpy as np

from tests.harness import check_layer, check_layer_kernel_knobs
from tfzoo.data import CategoricalFeature, DatasetSpec, EmbeddingFeature, IdFeature, NumericFeature, SequenceFeature
from tfzoo.layers import WideDeepEncoder


def item_spec_and_features():
    spec = DatasetSpec(
        features=(
            IdFeature("item_id", num_ids=5, embedding_dim=3),
            CategoricalFeature("brand", vocabulary=("a", "b")),
            SequenceFeature("genres", CategoricalFeature("genre", vocabulary=("x", "y", "z")), max_length=3),
            NumericFeature("price", mean=0.0, std=1.0),
            NumericFeature("year", mean=0.0, std=1.0),
            EmbeddingFeature("clip", dim=4),
        )
    )
    features = {
        "item_id": np.array([0, 4]),
        "brand": np.array([1, 2]),
        "genres": np.array([[1, 2, 0], [3, 0, 0]]),
        "price": np.array([0.5, -1.0], np.float32),
        "year": np.array([1.0, 2.0], np.float32),
        "clip": np.arange(8, dtype=np.float32).reshape(2, 4),
    }
    return spec, features


def test_item_parts_are_id_deep_wide_and_precomputed_concatenated(tmp_path):
    spec, features = item_spec_and_features()
    encoder = WideDeepEncoder(spec, units=6, embedding_dim=2, name="item_encoder")
    out = check_layer(encoder, features, tmp_path).numpy()
    assert out.shape == (2, encoder.output_dim) == (2, 3 + 6 + 6 + 4)

    ids = encoder._encoders["id"]._embeddings["item_id"].embeddings.numpy()[features["item_id"]]
    np.testing.assert_allclose(out[:, :3], ids)
    deep_in = encoder._encoders["deep"](features).numpy()  # brand and mean-pooled genres embeddings
    deep = np.maximum(deep_in @ encoder.deep_tower.kernel.numpy() + encoder.deep_tower.bias.numpy(), 0)
    np.testing.assert_allclose(out[:, 3:9], deep, atol=1e-5)
    numbers = np.stack([features["price"], features["year"]], 1)
    wide = np.maximum(numbers @ encoder.wide_feed_forward.kernel.numpy() + encoder.wide_feed_forward.bias.numpy(), 0)
    np.testing.assert_allclose(out[:, 9:15], wide, atol=1e-5)
    np.testing.assert_allclose(out[:, 15:], features["clip"])


def test_kernel_options_reach_the_deep_tower_and_the_wide_feed_forward():
    spec, features = item_spec_and_features()
    # The deep tower and the wide feed-forward; the id and category tables keep their own.
    check_layer_kernel_knobs(lambda **options: WideDeepEncoder(spec, units=6, embedding_dim=2, **options), features, 2)
