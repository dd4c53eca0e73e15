import numpy as np
import pytest

from tests.harness import check_layer, check_layer_kernel_knobs
from tfzoo.data import CategoricalFeature, DatasetSpec, IdFeature, NumericFeature, SequenceFeature
from tfzoo.layers import BehaviourSequenceEncoder

SPEC = DatasetSpec(
    features=(
        SequenceFeature("history", IdFeature("item", num_ids=6), max_length=3),
        SequenceFeature("history_rating", NumericFeature("rating", mean=0.0, std=1.0), max_length=3),
    )
)
# Row 0: two real steps then padding; row 1: no history at all.
FEATURES = {
    "history": np.array([[2, 5, 0], [0, 0, 0]], np.int64),
    "history_rating": np.array([[0.5, -1.0, 0.0], [0.0, 0.0, 0.0]], np.float32),
}


def test_token_is_the_masked_mean_of_channel_and_position_embeddings(tmp_path):
    # No transformer block: the token is computable by hand from the embedding tables.
    encoder = BehaviourSequenceEncoder(SPEC, model_dim=4, num_heads=2, num_layers=0, name="history_sequence")
    out = check_layer(encoder, FEATURES, tmp_path).numpy()  # [2, 4]
    items = encoder.channel_embeddings["history"].embeddings.numpy()
    rating = encoder.channel_embeddings["history_rating"]
    positions = encoder.position_embedding.embeddings.numpy()
    steps = [
        items[FEATURES["history"][0, t]]
        + FEATURES["history_rating"][0, t] * rating.kernel.numpy()[0]
        + rating.bias.numpy()
        + positions[t]
        for t in (0, 1)
    ]
    np.testing.assert_allclose(out[0], np.mean(steps, axis=0), atol=1e-6)
    np.testing.assert_allclose(out[1], np.zeros(4), atol=1e-7)  # empty sequence -> zeros


def test_padding_does_not_change_the_token(tmp_path):
    encoder = BehaviourSequenceEncoder(SPEC, model_dim=8, num_heads=2, num_layers=1, name="history_sequence")
    out = check_layer(encoder, FEATURES, tmp_path).numpy()
    changed = {k: v.copy() for k, v in FEATURES.items()}
    changed["history_rating"][0, 2] = 9.0  # a value at a padded step is ignored
    np.testing.assert_allclose(encoder(changed).numpy(), out, atol=1e-6)


def test_channels_are_validated():
    with pytest.raises(ValueError, match="sequence features only"):
        BehaviourSequenceEncoder(DatasetSpec(features=(CategoricalFeature("c", vocabulary=("a",)),)))
    numeric_only = DatasetSpec(features=(SPEC.features[1],))
    with pytest.raises(ValueError, match="tell padding apart"):
        BehaviourSequenceEncoder(numeric_only)
    uneven = DatasetSpec(
        features=(
            SPEC.features[0],
            SequenceFeature("history_rating", NumericFeature("rating", mean=0.0, std=1.0), max_length=5),
        )
    )
    with pytest.raises(ValueError, match="share `max_length`"):
        BehaviourSequenceEncoder(uneven)


def test_kernel_options_reach_the_numeric_projection_and_the_blocks():
    # The rating's projection (1) and two blocks' attention (4) and feed-forward (2)
    # kernels; the item and position tables keep their own.
    check_layer_kernel_knobs(
        lambda **options: BehaviourSequenceEncoder(SPEC, model_dim=4, num_heads=2, num_layers=2, **options),
        FEATURES,
        1 + 2 * 6,
    )
