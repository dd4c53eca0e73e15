import numpy as np
import pytest

from tfzoo.data.registry import load_dataset


def _row_keys(rows) -> list[tuple]:
    # The numeric columns of the synthetic rows identify them (missing values as -inf).
    columns = [np.nan_to_num(rows.features[f"num_{i}"].astype(float), nan=-np.inf) for i in range(4)]
    return list(zip(*columns, strict=True))


def test_train_rows_keeps_a_seeded_subset_of_the_training_rows_only():
    plain = load_dataset("synthetic")
    small = load_dataset("synthetic", options={"train_rows": 500})
    assert len(small.train) == 500
    assert len(small.validation) == len(plain.validation) and len(small.test) == len(plain.test)
    # Rows of the training split, in their order, the same ones for the same split seed.
    position = {key: i for i, key in enumerate(_row_keys(plain.train))}
    kept = [position[key] for key in _row_keys(small.train)]
    assert kept == sorted(kept) and len(set(kept)) == 500
    again = load_dataset("synthetic", options={"train_rows": 500})
    assert _row_keys(again.train) == _row_keys(small.train)
    assert "trained on 500 of its" in small.split
    # More rows than the split has: all of them; upsampling applies to the subset.
    assert len(load_dataset("synthetic", options={"train_rows": 10**9}).train) == len(plain.train)
    both = load_dataset("synthetic", options={"train_rows": 500, "upsample_tasks": "flow"})
    assert len(both.train) > 500 and "trained on 500" in both.split and "upsampled" in both.split
    with pytest.raises(ValueError, match="Received: train_rows=0"):
        load_dataset("synthetic", options={"train_rows": 0})
