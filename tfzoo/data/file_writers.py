"""In-memory rows written as the files a data config reads: CSV / TSV, Parquet, or TFRecord
of `tf.train.Example`, in shards (round-robin rows), with the data config that reads them.

For generated data in tests and benchmarks, and for moving a named dataset to files.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tfzoo.data.features import DatasetSpec, feature_to_config
from tfzoo.data.tabular import TabularData

SUFFIXES = {"csv": ".csv", "tsv": ".tsv", "parquet": ".parquet", "tfrecord": ".tfrecord"}


def _label_values(data: TabularData, name: str) -> np.ndarray:
    """The label with NaN where it is missing (what the files hold: an empty field)."""
    return np.where(data.label_masks[name] > 0, data.labels[name], np.nan).astype(np.float32)


def _text(values: np.ndarray, separator: str) -> list[str]:
    if values.ndim == 2:  # a vector or a padded sequence: its values (up to the last present one) joined
        return [separator.join(_text(_trimmed(row), separator)) for row in values]
    if values.dtype.kind == "f":
        return ["" if not np.isfinite(v) else repr(float(v)) for v in values]
    return [str(v) for v in values.tolist()]


def _table(data: TabularData, extra: Mapping[str, np.ndarray], *, typed: bool, separator: str = "|"):
    """The rows as a pyarrow table: typed (Parquet: lists for sequences and vectors), or
    for text files with sequences and vectors joined by `separator`. Missing numbers are
    nulls (empty fields)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = {**data.features, **{name: _label_values(data, name) for name in data.spec.labels}, **extra}
    arrays = {}
    for name, values in columns.items():
        values = np.asarray(values)
        if values.ndim == 1:
            if values.dtype.kind == "f":
                arrays[name] = pa.array(values, mask=~np.isfinite(values))
            else:
                arrays[name] = pa.array(values.tolist())
        elif typed:
            arrays[name] = pa.array([_trimmed(row).tolist() for row in values])
        elif values.dtype.kind == "f" and all(np.isfinite(row).all() or not np.isfinite(row).any() for row in values):
            # Vectors, whole or missing: joined column by column in Arrow (a null row stays null).
            parts = [
                pc.cast(pa.array(values[:, j], mask=~np.isfinite(values[:, j])), pa.string())
                for j in range(values.shape[1])
            ]
            arrays[name] = pc.binary_join_element_wise(*parts, separator)
        else:
            arrays[name] = pa.array(_text(values, separator), pa.string())
    return pa.table(arrays)


def _present(values: np.ndarray) -> np.ndarray:
    """Where a (padded) column holds a value: finite numbers, ids other than -1, text
    other than ""."""
    if values.dtype.kind == "f":
        return np.isfinite(values)
    return values != (-1 if values.dtype.kind in "iu" else "")


def _trimmed(row: np.ndarray) -> np.ndarray:
    """A padded sequence (or a vector) up to its last present value, gaps before it kept:
    a vector missing as a whole (all NaN) is written empty."""
    present = np.flatnonzero(_present(row))
    return row[: present[-1] + 1] if present.size else row[:0]


# Rows serialized per call of the protobuf encoder (bounds the memory of one call).
EXAMPLE_ROWS_PER_CALL = 8192
_LISTS = {"f": ("float_list", "tensorflow.FloatList"), "i": ("int64_list", "tensorflow.Int64List")}


def _present_lengths(values: np.ndarray) -> np.ndarray:
    """Per row of a 2-D column, its length up to the last present value (`_trimmed`)."""
    present = _present(values)
    last = values.shape[1] - np.argmax(present[:, ::-1], axis=1)
    return np.where(present.any(axis=1), last, 0).astype(np.int32)


def _encoded(field_sizes, values, fields: list[str], message: str):
    import tensorflow as tf

    return tf.io.encode_proto(tf.constant(field_sizes, tf.int32), values, fields, message)


def _features_of_column(name: str, values: np.ndarray):
    """[n] serialized `Features.FeatureEntry`s of one column, and [n] whether the row has
    the entry (a missing number is absent; a sequence or vector is there, maybe empty)."""
    import tensorflow as tf

    rows = len(values)
    if values.ndim == 1:
        lengths = np.ones(rows, np.int32)
        present = np.isfinite(values) if values.dtype.kind == "f" else np.ones(rows, bool)
        values = values[:, None]
    else:
        lengths, present = _present_lengths(values), np.ones(rows, bool)
    kind = values.dtype.kind if values.dtype.kind in "fiu" else "S"
    if kind == "f":  # NaN gaps inside a vector are written as NaN (`_trimmed` keeps them)
        tensor = tf.constant(values, tf.float32)
    elif kind in "iu":
        tensor, kind = tf.constant(values, tf.int64), "i"
    else:
        tensor = tf.constant(values.astype(str))
    field, message = _LISTS.get(kind, ("bytes_list", "tensorflow.BytesList"))
    value_list = _encoded(lengths[:, None], [tensor], ["value"], message)  # [n]
    feature = _encoded(np.ones((rows, 1)), [tf.reshape(value_list, [rows, 1])], [field], "tensorflow.Feature")
    keys = tf.fill([rows, 1], name)
    entry = _encoded(
        np.ones((rows, 2)), [keys, tf.reshape(feature, [rows, 1])], ["key", "value"], "tensorflow.Features.FeatureEntry"
    )
    return entry.numpy(), present


def serialized_examples(columns: Mapping[str, np.ndarray]) -> Iterator[bytes]:
    """Each row of raw `columns` as a serialized `tf.train.Example`: sequences and vectors
    as their present values, a missing number (NaN) absent. Encoded column by column by
    TensorFlow's protobuf encoder (`tf.io.encode_proto`), `EXAMPLE_ROWS_PER_CALL` rows at
    a time: no `tf.train.Example` is built in Python."""
    import tensorflow as tf

    columns = {name: np.asarray(values) for name, values in columns.items()}
    num_rows = len(next(iter(columns.values())))
    for start in range(0, num_rows, EXAMPLE_ROWS_PER_CALL):
        part = slice(start, start + EXAMPLE_ROWS_PER_CALL)
        entries, present = zip(*(_features_of_column(name, values[part]) for name, values in columns.items()))
        entries, present = np.stack(entries, axis=1), np.stack(present, axis=1)  # [rows, columns]
        # Each row's present entries first: the encoder takes the first `count` of a row.
        order = np.argsort(~present, axis=1, kind="stable")
        entries = np.take_along_axis(entries, order, axis=1)
        count = present.sum(axis=1, keepdims=True)
        rows = len(entries)
        features = _encoded(count, [tf.constant(entries)], ["feature"], "tensorflow.Features")
        examples = _encoded(np.ones((rows, 1)), [tf.reshape(features, [rows, 1])], ["features"], "tensorflow.Example")
        yield from examples.numpy().tolist()


def write_shards(
    data: TabularData,
    directory: str | Path,
    *,
    file_format: str,
    num_shards: int,
    extra_columns: Mapping[str, np.ndarray] | None = None,
    prefix: str = "part",
) -> list[Path]:
    """Writes `data` (and `extra_columns`, e.g. a split key) as `num_shards` files of
    `file_format` (row i to shard i % num_shards); missing numbers and labels are empty
    fields (CSV), nulls (Parquet) or absent (TFRecord). Returns the files."""
    if file_format not in SUFFIXES:
        raise ValueError(f"`file_format` must be one of {sorted(SUFFIXES)}. Received: file_format={file_format!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    extra = dict(extra_columns or {})
    paths = []
    for shard in range(num_shards):
        part = data.take(np.arange(shard, len(data), num_shards))
        part_extra = {k: np.asarray(v)[shard::num_shards] for k, v in extra.items()}
        path = directory / f"{prefix}-{shard:05d}-of-{num_shards:05d}{SUFFIXES[file_format]}"
        if file_format in ("csv", "tsv"):
            import pyarrow.csv as csv

            csv.write_csv(
                _table(part, part_extra, typed=False),
                path,
                write_options=csv.WriteOptions(delimiter="\t" if file_format == "tsv" else ",", quoting_style="needed"),
            )
        elif file_format == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(_table(part, part_extra, typed=True), path)
        else:
            import tensorflow as tf

            columns = {**part.features, **{n: _label_values(part, n) for n in part.spec.labels}, **part_extra}
            with tf.io.TFRecordWriter(str(path)) as writer:
                for example in serialized_examples(columns):
                    writer.write(example)
        paths.append(path)
    return paths


def data_config_of(spec: DatasetSpec, *, file_format: str, files: Any, split: Mapping | None = None, **extra) -> dict:
    """The data config (as a dict) that reads files written from rows of `spec`: its
    features unfitted, its labels."""
    features = []
    for feature in spec.features:
        config = feature_to_config(feature)
        for fitted in ("vocabulary", "mean", "std", "boundaries"):
            config.pop(fitted, None)
        if feature.kind == "sequence":
            for fitted in ("vocabulary", "mean", "std", "boundaries"):
                config["element"].pop(fitted, None)
        features.append({key: value for key, value in config.items() if value is not None})
    raw = {"format": file_format, "files": files, "features": features, "labels": list(spec.labels), **extra}
    if split is not None:
        raw["split"] = dict(split)
    return raw
