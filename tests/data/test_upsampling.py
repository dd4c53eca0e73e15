import numpy as np
import pytest

from tfzoo.data.features import DatasetSpec, NumericFeature
from tfzoo.data.registry import load_dataset
from tfzoo.data.tabular import TabularData
from tfzoo.data.upsampling import task_counts, upsample_tasks


def _rows():
    # Flow a: 6 rows, flow b: 2 rows. Use case `buy` observed on rows 0, 1 (flow a) and 6 (flow b).
    flows = np.array(["a"] * 6 + ["b"] * 2)
    spec = DatasetSpec(features=(NumericFeature("x"),), labels=("click", "buy"))
    return TabularData(
        features={"x": np.arange(8, dtype=np.float32), "flow": flows},
        labels={"click": np.ones(8), "buy": np.ones(8)},
        label_masks={"click": np.ones(8), "buy": np.array([1, 1, 0, 0, 0, 0, 1, 0])},
        spec=spec,
    )


def test_every_task_reaches_the_largest():
    data = _rows()
    assert task_counts(data, "flow") == {"a/click": 6, "a/buy": 2, "b/click": 2, "b/buy": 1}
    up = upsample_tasks(data, "flow")
    # Factors (largest task: 6 rows): a/buy x3, b/click x3, b/buy x6; a row takes its largest.
    # Rows 0, 1: x3; rows 2-5: x1; row 6: x6; row 7: x3 -- all whole, so exact.
    np.testing.assert_array_equal(up.features["x"], np.repeat(np.arange(8), [3, 3, 1, 1, 1, 1, 6, 3]))
    assert task_counts(up, "flow") == {"a/click": 10, "a/buy": 6, "b/click": 9, "b/buy": 6}
    # Without flows the tasks are the use cases: click 8, buy 3 -> buy rows x8/3 (2 or 3 times).
    by_use_case = upsample_tasks(data, seed=1)
    counts = np.bincount(by_use_case.features["x"].astype(int), minlength=8)
    assert set(counts[[0, 1, 6]]) <= {2, 3} and (counts[[2, 3, 4, 5, 7]] == 1).all()
    np.testing.assert_array_equal(upsample_tasks(data, seed=1).features["x"], by_use_case.features["x"])  # seeded
    capped = upsample_tasks(data, "flow", max_factor=2)
    assert np.bincount(capped.features["x"].astype(int)).max() == 2


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_factor=0.5"):
        upsample_tasks(_rows(), "flow", max_factor=0.5)
    with pytest.raises(ValueError, match="'region' is not a column"):
        upsample_tasks(_rows(), "region")


def test_registry_upsamples_training_rows_only():
    plain = load_dataset("synthetic")
    up = load_dataset("synthetic", options={"upsample_tasks": "flow"})
    assert len(up.validation) == len(plain.validation) and len(up.test) == len(plain.test)
    before, after = task_counts(plain.train, "flow"), task_counts(up.train, "flow")
    largest = max(before.values())
    # The sparse use case (cvr, observed on 10% of rows) reaches about the largest task.
    assert all(abs(count - largest) < 0.1 * largest or count > largest for count in after.values())
    assert min(before.values()) < 0.2 * largest
    assert "upsampled by task (flow x use case)" in up.split and "cvr" in up.split
    with pytest.raises(ValueError, match="Unknown data option"):
        load_dataset("twitch", path="unused", options={"upsample_tasks": True})
