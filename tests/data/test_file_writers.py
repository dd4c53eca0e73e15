"""Rows written as `tf.train.Example`s: each column's present values, read back as written."""

import numpy as np
import pytest
import tensorflow as tf

from tfzoo.data import file_writers
from tfzoo.data.file_writers import serialized_examples

COLUMNS = {
    "price": np.array([1.5, np.nan, 3.0], np.float32),
    "count": np.array([1, 2, 3]),
    "city": np.array(["a", "b, c", "é"], dtype=object),
    "tags": np.array([["x", "", ""], ["", "", ""], ["y", "", "z"]], dtype=object),
    "items": np.array([[4, -1], [-1, -1], [5, 6]]),
    "vector": np.array([[0.5, 1.0], [np.nan, np.nan], [np.nan, 2.0]], np.float32),
}


def _read(example: bytes) -> dict:
    features = tf.train.Example.FromString(example).features.feature
    return {name: list(f.float_list.value or f.int64_list.value or f.bytes_list.value) for name, f in features.items()}


@pytest.mark.parametrize("rows_per_call", [2, 8192])
def test_each_row_holds_its_present_values(monkeypatch, rows_per_call):
    # Encoded in calls of `rows_per_call` rows: the same examples however they are cut.
    monkeypatch.setattr(file_writers, "EXAMPLE_ROWS_PER_CALL", rows_per_call)
    rows = [_read(example) for example in serialized_examples(COLUMNS)]
    assert rows[0] == {"price": [1.5], "count": [1], "city": [b"a"], "tags": [b"x"], "items": [4], "vector": [0.5, 1.0]}
    # A missing number is absent; an empty sequence or a missing vector is present and empty.
    assert rows[1] == {"count": [2], "city": [b"b, c"], "tags": [], "items": [], "vector": []}
    # Gaps before the last present value stay (an empty tag, a NaN component).
    assert rows[2]["tags"] == [b"y", b"", b"z"] and rows[2]["items"] == [5, 6]
    assert np.isnan(rows[2]["vector"][0]) and rows[2]["vector"][1] == 2.0
    assert rows[2]["city"] == ["é".encode()] and rows[2]["price"] == [3.0]
    # What the TFRecord reader's parser makes of them.
    parsed = tf.io.parse_example(
        list(serialized_examples(COLUMNS)),
        {"price": tf.io.FixedLenFeature([], tf.float32, default_value=np.nan), "items": tf.io.VarLenFeature(tf.int64)},
    )
    np.testing.assert_array_equal(parsed["price"].numpy(), COLUMNS["price"])
    assert tf.sparse.to_dense(parsed["items"], default_value=-1).numpy().tolist() == [[4, -1], [-1, -1], [5, 6]]
