"""Writing rows as `tf.train.Example`s: tfzoo's column-wise encoder against one Example built
in Python per row, side by side on the same rows.

    .venv/bin/python bench/tfrecord_writer.py                 # 200,000 rows
    .venv/bin/python bench/tfrecord_writer.py --rows 1000000
    .venv/bin/python bench/tfrecord_writer.py --quick         # 2,000 rows: checks that it runs

The rows are the generated multi-scenario rows of `bench/streaming.py` (4 categorical, 4
numeric with missing values, a 16-d vector, the flow, 3 labels with missing values) and a
text user key. `tfzoo.data.file_writers.serialized_examples` encodes them column by column
with TensorFlow's protobuf encoder (`tf.io.encode_proto`); the reference builds a
`tf.train.Example` per row with the protobuf Python API, as the writer did before. Both
must give the same messages (checked on every row); printed: rows/s of each and the ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import tfzoo  # noqa: F401 - first: it puts Keras 2 behind tf.keras


def _rows(count: int) -> dict[str, np.ndarray]:
    from tfzoo.data.file_writers import _label_values
    from tfzoo.data.synthetic import make_multi_scenario_data

    data = make_multi_scenario_data(num_rows=count, seed=0)
    users = np.char.add("user", np.random.default_rng(1).integers(0, 100_000, count).astype(str))
    return {**data.features, **{n: _label_values(data, n) for n in data.spec.labels}, "user": users}


def per_row_examples(columns: dict[str, np.ndarray]) -> list[bytes]:
    """The reference: one `tf.train.Example` per row, built in Python (missing numbers
    absent; sequences and vectors up to their last present value)."""
    import tensorflow as tf

    def feature(value: np.ndarray):
        if value.dtype.kind == "f":
            return tf.train.Feature(float_list=tf.train.FloatList(value=value.astype(np.float32)))
        if value.dtype.kind in "iu":
            return tf.train.Feature(int64_list=tf.train.Int64List(value=value.astype(np.int64)))
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(v).encode() for v in value]))

    examples = []
    for i in range(len(next(iter(columns.values())))):
        row = {}
        for name, values in columns.items():
            value = np.asarray(values[i])
            if value.ndim == 1:
                present = np.flatnonzero(np.isfinite(value) if value.dtype.kind == "f" else value != "")
                value = value[: present[-1] + 1] if present.size else value[:0]
            elif value.dtype.kind == "f" and not np.isfinite(value):
                continue
            row[name] = feature(np.atleast_1d(value))
        examples.append(tf.train.Example(features=tf.train.Features(feature=row)).SerializeToString())
    return examples


def main(argv: list[str] | None = None) -> dict:
    import tensorflow as tf

    from tfzoo.data.file_writers import serialized_examples

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--quick", action="store_true", help="2,000 rows: checks that the bench runs")
    args = parser.parse_args(argv)
    count = 2_000 if args.quick else args.rows
    columns = _rows(count)
    started = time.perf_counter()
    reference = per_row_examples(columns)
    reference_rate = count / (time.perf_counter() - started)
    started = time.perf_counter()
    encoded = list(serialized_examples(columns))
    encoded_rate = count / (time.perf_counter() - started)
    # The same messages (map entries may be serialized in another order).
    same = all(tf.train.Example.FromString(a) == tf.train.Example.FromString(b) for a, b in zip(encoded, reference))
    if not same or len(encoded) != len(reference):
        raise AssertionError("the column-wise encoder's examples differ from the per-row reference")
    print(f"{count:,} rows, the same {len(encoded):,} examples from both writers")
    print(f"per-row tf.train.Example (reference): {reference_rate:,.0f} rows/s")
    print(f"column-wise encode_proto (tfzoo):     {encoded_rate:,.0f} rows/s ({encoded_rate / reference_rate:.1f}x)")
    return {"rows": count, "reference_rows_per_s": reference_rate, "encoded_rows_per_s": encoded_rate}


if __name__ == "__main__":
    main()
