import numpy as np

from tests.harness import check_layer, check_layer_kernel_knobs
from tfzoo.data import CategoricalFeature, DatasetSpec, IdFeature, NumericFeature, SequenceFeature
from tfzoo.layers import RowTokens

SPEC = DatasetSpec(
    features=(
        CategoricalFeature("country", vocabulary=("de", "fr")),
        NumericFeature("age", mean=0.0, std=1.0),
        IdFeature("item_id", num_ids=6, embedding_dim=3),
        SequenceFeature("history", IdFeature("item", num_ids=6), max_length=3),
    )
)
FEATURES = {
    "country": np.array([1, 2], np.int64),
    "age": np.array([0.5, -1.0], np.float32),
    "item_id": np.array([0, 5], np.int64),
    "history": np.array([[2, 5, 0], [0, 0, 0]], np.int64),
}


def test_one_token_per_group_then_one_per_behaviour_sequence(tmp_path):
    layer = RowTokens(
        SPEC,
        token_features={"user": ["country", "age"], "item": ["item_id"]},
        behaviour_sequences={"history": ["history"]},
        model_dim=4,
        embedding_dim=2,
        num_heads=2,
        name="row_tokens",
    )
    out = check_layer(layer, FEATURES, tmp_path).numpy()
    assert out.shape == (2, layer.num_tokens, 4) == (2, 3, 4)
    # Token order: the feature groups as given, then the sequences; each is its own encoder.
    np.testing.assert_allclose(out[:, 0], layer.encoders["user"](FEATURES).numpy(), atol=1e-6)
    np.testing.assert_allclose(out[:, 1], layer.encoders["item"](FEATURES).numpy(), atol=1e-6)
    np.testing.assert_allclose(out[:, 2], layer.sequences["history"](FEATURES).numpy(), atol=1e-6)
    # The user token depends on the user's features only.
    other_item = dict(FEATURES, item_id=np.array([3, 1], np.int64))
    np.testing.assert_allclose(layer(other_item).numpy()[:, 0], out[:, 0], atol=1e-6)


def test_kernel_options_reach_every_encoder_and_token_projection():
    def make(**options):
        return RowTokens(
            SPEC,
            token_features={"user": ["country", "age"], "item": ["item_id"]},
            behaviour_sequences={"history": ["history"]},
            model_dim=4,
            embedding_dim=2,
            num_heads=2,
            **options,
        )

    # user: deep tower, wide feed-forward, token projection (3); item: token projection (1);
    # history: one block's attention (4) and feed-forward (2) kernels. Tables keep their own.
    check_layer_kernel_knobs(make, FEATURES, 3 + 1 + 6)
