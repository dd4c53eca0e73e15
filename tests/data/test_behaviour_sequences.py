import numpy as np
import pytest

from tfzoo.data.behaviour_sequences import (
    RATING_VOCABULARY,
    ChannelSizes,
    bag_features,
    build_behaviour_sequences,
    channel_columns,
    channel_sizes,
    example_channels,
    make_behaviour_sequences,
    movielens_behaviour_sequences,
)
from tfzoo.data.readers.movielens import read_movielens_100k
from tfzoo.data.registry import load_dataset


def test_examples_hold_history_then_masked_target():
    # User 1 rates items 3, 1, 2 at t = 0, 2 days, 3 days; user 2 rates item 2 once.
    data, sizes = build_behaviour_sequences(
        user_id=np.array([1, 1, 2, 1]),
        item_id=np.array([3, 1, 2, 2]),
        rating=np.array([5, 2, 4, 4]),
        timestamp=np.array([0, 2 * 86400, 0, 3 * 86400]),
        item_genres=np.array([[0, 0], [1, 0], [2, 1], [3, 0]]),
        item_titles=np.eye(4, 2, dtype=np.float32),
        user_female=np.array([0, 1, 0]),
        user_over_34=np.array([0, 0, 1]),
        length=3,
    )
    assert len(data) == 2  # first behaviours have no history
    order = np.argsort(data.features["timestamp"])
    np.testing.assert_array_equal(data.features["item"][order], [[0, 3, 1], [3, 1, 2]])
    np.testing.assert_array_equal(
        data.features["rating"][order], [[0, 5, RATING_VOCABULARY], [5, 2, RATING_VOCABULARY]]
    )
    np.testing.assert_allclose(data.features["interval"][order][1, :, 0], np.log1p([0.0, 2.0, 1.0]), atol=1e-6)
    np.testing.assert_array_equal(data.features["genres"][order][1, 2], [2, 1])
    np.testing.assert_array_equal(data.labels["like"][order], [0, 1])
    np.testing.assert_array_equal(data.labels["female"], [1, 1])
    assert sizes.id_channels == {"item": 4} and sizes.category_channels == {"genres": 4, "rating": 6}


def test_generated_sequences_hide_some_attributes():
    data, _ = make_behaviour_sequences(50, events_per_user=10, length=6)
    assert 0.4 < data.label_masks["female"].mean() < 0.95
    assert data.label_masks["like"].min() == 1.0


def test_movielens_sequences(shared_data):
    movielens = read_movielens_100k(
        shared_data / "movielens_100k" / "ml-100k", embeddings_dir=shared_data / "movielens_100k" / "derived"
    )
    data, sizes = movielens_behaviour_sequences(movielens, length=5, stride=20)
    assert sizes.num_items == 1682 and sizes.title_dim == 16
    assert data.features["title"].shape[1:] == (5, 16)
    assert 0.4 < data.positive_rate()["like"] < 0.7
    with pytest.raises(ValueError, match="title embeddings"):
        movielens_behaviour_sequences(read_movielens_100k(shared_data / "movielens_100k" / "ml-100k"))


def test_bag_features_by_hand():
    # One example of 3 steps: history items 3 (rated 5) and 1 (rated 2), target item 2.
    data, sizes = build_behaviour_sequences(
        user_id=np.array([1, 1, 1]),
        item_id=np.array([3, 1, 2]),
        rating=np.array([5, 2, 4]),
        timestamp=np.array([0, 86400, 2 * 86400]),
        item_genres=np.array([[0, 0], [1, 0], [2, 1], [3, 1]]),
        item_titles=np.eye(4, 2, dtype=np.float32),
        user_female=np.array([0, 1]),
        user_over_34=np.array([0, 0]),
        length=3,
    )
    last = data.take(np.array([int(np.argmax(data.features["timestamp"]))]))
    x = bag_features(last, sizes).toarray()[0]
    # Blocks: window items [0, 4), liked items [4, 8), target [8, 12), window genres [12, 16),
    # target genres [16, 20).
    expected = np.zeros(20)
    expected[[3, 1]] = 1  # window: items 3 and 1
    expected[4 + 3] = 1  # liked: item 3 (rating 5); item 1 (rating 2) is not
    expected[8 + 2] = 1  # target item 2
    expected[[12 + 3, 12 + 1]] = [1, 2]  # genres of items 3 (3, 1) and 1 (1)
    expected[[16 + 2, 16 + 1]] = 1  # the target's genres (2, 1)
    np.testing.assert_array_equal(x, expected)
    with pytest.raises(ValueError, match="sizes"):
        bag_features(last, ChannelSizes(num_items=2, num_genres=3, title_dim=2))


def test_user_level_folds_test_every_user_once():
    tested = []
    for fold in range(5):
        splits = load_dataset("generated_sequences", options={"fold": fold})
        users = {
            part: set(getattr(splits, part).features["user_id"].tolist()) for part in ("train", "validation", "test")
        }
        assert not (users["train"] & users["test"]) and not (users["train"] & users["validation"])
        assert not (users["validation"] & users["test"])
        assert 55 <= len(users["test"]) <= 65 and len(users["validation"]) == 30  # 300 users: 60 per fold
        assert f"fold {fold}" in splits.split and "seed 0" in splits.split
        tested += sorted(users["test"])
    assert sorted(tested) == list(range(1, 301))  # every user tested exactly once
    # Seeded: the same seed deals the same folds, another seed others.
    again = load_dataset("generated_sequences", options={"fold": 0}).test.features["user_id"]
    other = load_dataset("generated_sequences", split_seed=1, options={"fold": 0}).test.features["user_id"]
    first = load_dataset("generated_sequences", options={"fold": 0}).test.features["user_id"]
    np.testing.assert_array_equal(first, again)
    assert set(first.tolist()) != set(other.tolist())
    with pytest.raises(ValueError, match="fold=5"):
        load_dataset("generated_sequences", options={"fold": 5})
    with pytest.raises(ValueError, match="Unknown data option"):
        load_dataset("generated_sequences", options={"stride": 2})


def test_flat_view_for_the_tabular_baselines():
    # User 1 rates items 3 (5 stars), 1 (2 stars), 2 (4 stars) at days 0, 2, 3; length 4.
    data, _ = build_behaviour_sequences(
        user_id=np.array([1, 1, 1]),
        item_id=np.array([3, 1, 2]),
        rating=np.array([5, 2, 4]),
        timestamp=np.array([0, 2 * 86400, 3 * 86400]),
        item_genres=np.array([[0, 0], [1, 0], [2, 1], [3, 1]]),
        item_titles=np.arange(8, dtype=np.float32).reshape(4, 2),
        user_female=np.array([0, 1]),
        user_over_34=np.array([0, 0]),
        length=4,
    )
    last = int(np.argmax(data.features["timestamp"]))
    f = {k: v[last] for k, v in data.features.items()}
    # Window (history) items 3, 1, left-aligned, then padding; the flat spec's sequences.
    np.testing.assert_array_equal(f["history"], [3, 1, -1])
    np.testing.assert_array_equal(f["history_rating"][:2], [5, 2])
    assert np.isnan(f["history_rating"][2])
    np.testing.assert_array_equal(f["liked_history"], [3, -1, -1])
    np.testing.assert_array_equal(f["history_genres"][:3], [3, 1, 1])
    assert (f["history_genres"][3:] == -1).all()
    np.testing.assert_allclose(f["history_title"], ([6, 7] + np.array([2, 3])) / 2)  # mean of items 3 and 1
    np.testing.assert_array_equal(f["item_genres"], [2, 1])
    assert f["item_id"] == 2 and f["target_interval"] == pytest.approx(np.log1p(1.0))
    assert f["history_interval"] == pytest.approx(np.log1p(2.0) / 2)  # gaps 0 and 2 days
    spec = data.spec.fit(data.features)
    assert set(spec.feature_names) >= {"history", "liked_history", "history_genres", "history_title", "item_genres"}


def test_example_channels_have_the_layout_of_real_rows():
    data, _ = make_behaviour_sequences(30, seed=0)
    real = channel_columns(data)
    sizes = channel_sizes(data)
    example = example_channels(sizes, num_rows=3, length=4)
    assert set(example) == set(real)
    for name, values in example.items():
        assert values.dtype == real[name].dtype and values.ndim == real[name].ndim, name
        assert values.shape[:2] == (3, 4) and values.shape[3:] == real[name].shape[3:], name
    assert example["title"].shape[-1] == sizes.title_dim
    # Left-padded: row i holds 4 - i steps; ids stay inside each vocabulary; the target's rating is unknown.
    np.testing.assert_array_equal((example["item"] > 0).sum(axis=1), [4, 3, 2])
    assert example["item"].max() <= sizes.num_items and example["genres"].max() <= sizes.num_genres
    assert np.all(example["rating"][:, -1] == RATING_VOCABULARY)
    assert np.all(example["rating"][:, :-1] < RATING_VOCABULARY)
