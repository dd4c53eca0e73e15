import numpy as np
import pytest

from tfzoo.data import (
    CategoricalFeature,
    DatasetSpec,
    NumericFeature,
    TabularData,
    make_dataset,
    make_multi_scenario_data,
    ordered_split,
    random_split,
)


def tiny(n=10):
    spec = DatasetSpec(features=(CategoricalFeature("c"), NumericFeature("x")), labels=("y", "z"))
    return TabularData(
        features={"c": np.array([f"v{i % 3}" for i in range(n)], dtype=object), "x": np.arange(n, dtype=np.float32)},
        labels={"y": np.arange(n) % 2, "z": np.where(np.arange(n) == 1, np.nan, 1.0)},
        label_masks={"z": np.arange(n) < 3},
        spec=spec,
    )


def test_batches_hold_features_labels_and_masks():
    data = tiny()
    spec = data.spec.fit(data.features)
    batches = list(make_dataset(data, spec, batch_size=4))
    assert [len(b[0]["x"]) for b in batches] == [4, 4, 2]
    features, labels, masks = batches[0]
    np.testing.assert_allclose(features["x"], (np.arange(4) - 4.5) / np.arange(10).std(), rtol=1e-6)
    np.testing.assert_array_equal(labels["y"], [0, 1, 0, 1])
    # Missing labels (mask 0, or NaN) are stored as 0 with mask 0: no NaN reaches a loss.
    np.testing.assert_array_equal(labels["z"], [1, 0, 1, 0])
    np.testing.assert_array_equal(masks["z"], [1, 0, 1, 0])
    np.testing.assert_array_equal(masks["y"], [1, 1, 1, 1])


def test_shuffle_is_seeded_and_covers_every_row_once_per_epoch():
    data = tiny(100)
    spec = data.spec.fit(data.features)

    def epoch(seed):
        return np.concatenate(
            [b[0]["x"].numpy() for b in make_dataset(data, spec, batch_size=16, shuffle=True, seed=seed)]
        )

    first, again, other = epoch(1), epoch(1), epoch(2)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert sorted(first.tolist()) == sorted(epoch(None).tolist())


def test_features_only_and_batch_size_validation():
    data = tiny()
    spec = data.spec.fit(data.features)
    batch = next(iter(make_dataset(data, spec, batch_size=3, with_labels=False)))
    assert set(batch) == {"c", "x"}
    with pytest.raises(ValueError, match="batch_size=0"):
        make_dataset(data, spec, batch_size=0)


def test_label_columns_must_match_rows():
    data = tiny()
    with pytest.raises(ValueError, match="Label 'y' has 3 rows"):
        TabularData(features=data.features, labels={"y": np.zeros(3), "z": np.zeros(10)}, spec=data.spec)


def test_random_split_is_deterministic_and_disjoint():
    data = tiny(1000)
    a = random_split(data, (0.8, 0.1, 0.1), seed=3)
    b = random_split(data, (0.8, 0.1, 0.1), seed=3)
    assert [len(p) for p in a] == [800, 100, 100]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.features["x"], y.features["x"])
    together = np.concatenate([p.features["x"] for p in a])
    assert len(np.unique(together)) == 1000
    with pytest.raises(ValueError, match="sum to 1"):
        random_split(data, (0.5, 0.4))


def test_ordered_split_puts_later_rows_last():
    data = tiny(10)
    key = np.array([9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    train, test = ordered_split(data, key, (0.7, 0.3))
    np.testing.assert_array_equal(test.features["x"], [2, 1, 0])
    assert set(train.features["x"]) == set(range(3, 10))


def test_synthetic_tasks_are_sparse_and_related():
    data = make_multi_scenario_data(20_000, seed=0)
    rates = data.positive_rate()
    observed = {k: v.mean() for k, v in data.label_masks.items()}
    assert observed["ctr"] == 1.0 and 0.45 < observed["atc"] < 0.55 and 0.08 < observed["cvr"] < 0.12
    assert rates["ctr"] > rates["atc"] > rates["cvr"] > 0.0
    # Shared latent structure: labels of different use cases are positively correlated.
    both = (data.label_masks["ctr"] > 0) & (data.label_masks["atc"] > 0)
    assert np.corrcoef(data.labels["ctr"][both], data.labels["atc"][both])[0, 1] > 0.1
    assert np.isnan(data.features["num_0"]).mean() == pytest.approx(0.05, abs=0.01)
    again = make_multi_scenario_data(20_000, seed=0)
    np.testing.assert_array_equal(again.labels["cvr"], data.labels["cvr"])
