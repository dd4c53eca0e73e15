"""Rows of a data config's files, streamed in batches of NumPy columns, one file at a time.

Each reader yields `RowBatch`es: the raw feature columns in the dtypes of
`tfzoo.data.features` (the same arrays an in-memory reader builds), the labels (float32,
NaN where missing) and the split rule's columns. Text files (CSV / TSV, gzip or not) and
Parquet files are read with pyarrow's streaming readers; TFRecord files of
`tf.train.Example` with `tf.data`. A bad row (wrong number of fields, a value that is not
a number where one is needed, a vector of the wrong width) raises a `DataFormatError`
naming the file and line (record index for Parquet and TFRecord) and the field, or with
`on_bad_row="skip"` is counted in `BadRowCounts` and left out.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import threading
from collections.abc import Iterator, Sequence

import numpy as np

from tfzoo.data.data_config import DataConfig, LabelColumn
from tfzoo.data.errors import BadRows, DataFormatError
from tfzoo.data.features import FLOAT32, INT64, SEQUENCE_PAD, STRING

BAD_ROW_POLICIES = ("raise", "skip")
BATCH_ROWS = 8192  # rows per batch a reader yields (and per pyarrow block, roughly)


# Bytes per block of Arrow's streaming CSV reader. Its input is read ahead on a background
# thread up to 32 blocks, whatever `use_threads` says: with 4 MiB blocks, 128 MiB per open
# file, reached only by files of more than 128 MiB, so peak memory grew with the size of
# the shards (measured: one 83 MB shard peaked 80 MB above one 8 MB shard; 1M -> 10M rows
# in 32 shards, 1.26x the peak; 1.13x with 1 MiB blocks). Small blocks bound the read-ahead
# at 8 MiB per file; the reader joins them into runs of `batch_rows` rows before
# converting, so the per-batch work stays as large as before.
CSV_BLOCK_BYTES = 1 << 18


@dataclasses.dataclass
class RowBatch:
    features: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]  # float32, NaN: missing
    split_columns: dict[str, np.ndarray]  # str

    def __len__(self) -> int:
        return len(next(iter(self.labels.values())))

    def take(self, keep: np.ndarray) -> RowBatch:
        pick = lambda columns: {k: v[keep] for k, v in columns.items()}  # noqa: E731
        return RowBatch(pick(self.features), pick(self.labels), pick(self.split_columns))


class BadRowCounts:
    """Rows skipped by `on_bad_row="skip"`, per file (readers on several threads add to it)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.counts: collections.Counter = collections.Counter()
        self.first: dict[str, str] = {}  # file -> the first skipped row's error

    def add(self, error: DataFormatError) -> None:
        with self._lock:
            self.counts[error.path] += 1
            self.first.setdefault(error.path, str(error))

    def take(self) -> dict[str, int]:
        """The counts so far, reset (one epoch's)."""
        with self._lock:
            counts, self.counts = dict(self.counts), collections.Counter()
        return counts


class _Rows:
    """Applies the bad-row policy to the rows of one file."""

    def __init__(self, path: str, policy: str, counts: BadRowCounts | None):
        if policy not in BAD_ROW_POLICIES:
            raise ValueError(f"`on_bad_row` must be one of {BAD_ROW_POLICIES}. Received: on_bad_row={policy!r}")
        self.path, self.policy, self.counts = path, policy, counts

    def bad(self, reason: str, *, line: int | None, field: str | None = None) -> None:
        error = DataFormatError(reason, path=self.path, line=line, field=field)
        if self.policy == "raise":
            raise error
        if self.counts is not None:
            self.counts.add(error)


def _as_text(values) -> np.ndarray:
    """An object array of str ("" for nulls) from a NumPy or Arrow column."""
    if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):  # Arrow
        values = values.to_numpy(zero_copy_only=False)
    array = np.asarray(values, dtype=object)
    array[np.equal(array, None)] = ""
    return array


def parse_numbers(values, dtype) -> tuple[np.ndarray, np.ndarray]:
    """`values` (text or numbers, NumPy or Arrow) as `dtype` (np.int64 or np.float64;
    missing: "" or null -> NaN, or -1 for integers), and where a value is not a number.
    Parsed by Arrow's casts; only where some value fails is each one tried alone."""
    import pyarrow as pa
    import pyarrow.compute as pc

    missing = -1 if dtype == np.int64 else np.nan
    if isinstance(values, np.ndarray) and values.dtype != object:
        values = pa.array(values)
    elif not isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = pa.array(_as_text(values).tolist(), pa.string())
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        values = pc.if_else(pc.equal(values, ""), pa.scalar(None, values.type), values)
    try:
        parsed = pc.cast(values, pa.int64() if dtype == np.int64 else pa.float64())
        return pc.fill_null(parsed, missing).to_numpy(zero_copy_only=False).astype(dtype), np.zeros(len(values), bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # Some value is not a number: parse each alone to name the rows at fault (the
        # bad-row tests go through here; clean batches never do).
        parsed, bad = np.full(len(values), missing, dtype), np.zeros(len(values), bool)
        for i, value in enumerate(values.to_pylist()):
            if value is None:
                continue
            try:
                number = float(value) if dtype == np.float64 else int(value)
                if dtype == np.int64 and number != float(value):
                    raise ValueError(value)
                parsed[i] = number
            except (ValueError, OverflowError, TypeError):
                bad[i] = True
        return parsed, bad


def _scalar_column(feature, values) -> tuple[np.ndarray, np.ndarray]:
    if feature.dtype == STRING:
        text = _as_text(values)
        return np.array([v if isinstance(v, str) else str(v) for v in text], dtype=object) if len(
            text
        ) and not isinstance(text[0], str) else text, np.zeros(len(text), bool)
    values, bad = parse_numbers(values, np.int64 if feature.dtype == INT64 else np.float64)
    return (values.astype(np.float32) if feature.dtype == FLOAT32 else values), bad


def _split_column(feature, rows, separator: str) -> tuple[np.ndarray, np.ndarray]:
    """Sequence or embedding values of each row (a joined string, or a list) as one array:
    a sequence's last `max_length` values up to its last valid one, right-padded; an
    embedding's `dim` numbers (none: missing, NaN). Vectorised in Arrow and NumPy: the
    values of all rows are parsed at once, then placed by their row and position."""
    import pyarrow as pa
    import pyarrow.compute as pc

    is_sequence = feature.kind == "sequence"
    dtype = feature.dtype
    width = feature.max_length if is_sequence else feature.dim
    num_rows = len(rows)
    if isinstance(rows, pa.Array) and pa.types.is_list(rows.type):  # lists (Parquet)
        lists = rows
    elif isinstance(rows, pa.Array) or all(isinstance(r, str) for r in rows[:1]):  # joined text (text files)
        text = rows if isinstance(rows, pa.Array) else pa.array(_as_text(rows).tolist(), pa.string())
        lists = pc.split_pattern(pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text), separator)
    else:  # lists (TFRecord)
        lists = pa.array([[] if r is None else list(r) for r in rows])
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = lists.flatten()
    row_of = np.repeat(np.arange(num_rows), lengths)  # [values]
    position = np.arange(len(row_of)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    if dtype == STRING:
        values = _as_text(flat.to_numpy(zero_copy_only=False)).astype(object)
        bad_value = np.zeros(len(values), bool)
    elif pa.types.is_string(flat.type) or pa.types.is_large_string(flat.type):  # text: parsed in Arrow
        values, bad_value = parse_numbers(flat, np.int64 if dtype == INT64 else np.float64)
    else:
        raw = flat.to_numpy(zero_copy_only=False)
        numpy_dtype = np.int64 if dtype == INT64 else np.float64
        values, bad_value = (
            parse_numbers(_as_text(raw), numpy_dtype)
            if raw.dtype == object
            else (raw.astype(numpy_dtype), np.zeros(len(raw), bool))
        )
    bad = np.zeros(num_rows, bool)
    bad[row_of[bad_value]] = True
    column = np.full((num_rows, width), SEQUENCE_PAD[dtype], dtype=object if dtype == STRING else np.dtype(dtype))
    if is_sequence:
        valid = np.isfinite(values) if dtype == FLOAT32 else values != SEQUENCE_PAD[dtype]
        length = np.zeros(num_rows, np.int64)  # up to the last valid value (gaps before it stay)
        np.maximum.at(length, row_of[valid], position[valid] + 1)
        first = np.maximum(length - width, 0)  # the last `width` of them kept
        keep = (position < length[row_of]) & (position >= first[row_of]) & ~bad[row_of]
        column[row_of[keep], position[keep] - first[row_of[keep]]] = values[keep]
    else:
        bad |= (lengths != 0) & (lengths != width)
        keep = ~bad[row_of]
        column[row_of[keep], position[keep]] = values[keep]
    return column, bad


def _label_column(label: LabelColumn, values) -> tuple[np.ndarray, np.ndarray]:
    if label.positive is not None:
        text = _as_text(values)
        positive = np.isin(text, np.array(label.positive, dtype=object)).astype(np.float32)
        return np.where(text == "", np.nan, positive).astype(np.float32), np.zeros(len(text), bool)
    values, bad = parse_numbers(values, np.float64)
    bad |= np.isfinite(values) & (values != 0) & (values != 1)  # a binary label: 0, 1 or missing
    return values.astype(np.float32), bad


def _item(values, index: int):
    """Row `index` of a NumPy or Arrow column, as Python."""
    value = values[index]
    return value.as_py() if hasattr(value, "as_py") else value


def convert_columns(
    config: DataConfig, columns: dict[str, list | np.ndarray], rows: _Rows, lines: np.ndarray
) -> RowBatch:
    """Raw text (or typed, from Parquet) columns -> a `RowBatch`, bad rows handled;
    `lines[i]` is row i's line (record index) for messages."""
    num_rows = len(lines)
    bad = np.zeros(num_rows, bool)
    features, labels = {}, {}
    for feature in config.spec.features:
        values = columns[feature.name]
        if feature.kind in ("sequence", "embedding"):
            column, at_fault = _split_column(feature, values, config.separator)
        else:
            column, at_fault = _scalar_column(feature, values)
        for i in np.flatnonzero(at_fault & ~bad):
            rows.bad(f"not a valid {feature.kind} value: {_item(values, i)!r}", line=int(lines[i]), field=feature.name)
        bad |= at_fault
        features[feature.name] = column
    for label in config.label_columns:
        values = columns[label.column]
        column, at_fault = _label_column(label, values)
        for i in np.flatnonzero(at_fault & ~bad):
            rows.bad(
                f"label {label.name!r} is not 0, 1 or empty: {_item(values, i)!r}",
                line=int(lines[i]),
                field=label.column,
            )
        bad |= at_fault
        for option, name in (("times", label.times), ("observed_where", label.observed_where)):
            if name is None:
                continue
            numbers, at_fault = parse_numbers(columns[name], np.float64)
            at_fault |= np.isfinite(numbers) & (numbers != 0) & (numbers != 1)
            for i in np.flatnonzero(at_fault & ~bad):
                rows.bad(
                    f"label {label.name!r} needs 0, 1 or empty in its {option} column: {_item(columns[name], i)!r}",
                    line=int(lines[i]),
                    field=name,
                )
            bad |= at_fault
            if option == "times":  # missing there: the label is missing too
                column = (column * numbers).astype(np.float32)
            else:
                column = np.where(numbers == 1, column, np.nan).astype(np.float32)
        labels[label.name] = column
    split_columns = {name: _as_text(columns[name]) for name in config.split.columns}
    rule = config.split
    if rule.by in ("time", "column"):  # a row that falls in no split is a bad row, not a silent drop
        text = split_columns[rule.column]
        if rule.by == "time":
            times, at_fault = parse_numbers(text, np.float64)
            at_fault |= ~np.isfinite(times)
            reason = "the split's time column needs a number"
        else:
            at_fault = ~np.isin(text, np.array([v for vs in rule.values.values() for v in vs], dtype=object))
            reason = "the split's column holds a value of no split"
        for i in np.flatnonzero(at_fault & ~bad):
            rows.bad(f"{reason}: {text[i]!r}", line=int(lines[i]), field=rule.column)
        bad |= at_fault
    batch = RowBatch(features, labels, split_columns)
    return batch.take(~bad) if bad.any() else batch


@contextlib.contextmanager
def _opened(path: str):
    """`path` as a pyarrow file: natively where it is local, through `tf.io.gfile` where it
    is a URL TensorFlow opens (gs://, hdfs://, ...)."""
    import pyarrow as pa

    if "://" not in path:
        with pa.OSFile(path, "rb") as f:
            yield f
        return
    import tensorflow as tf

    with tf.io.gfile.GFile(path, "rb") as gfile, pa.PythonFile(gfile, mode="r") as f:
        yield f


def _text_batches(config: DataConfig, path: str, rows: _Rows, batch_rows: int) -> Iterator[RowBatch]:
    import pyarrow as pa
    import pyarrow.csv as csv

    needed = config.needed_columns
    invalid_lines: list[int] = []
    raised: list[DataFormatError] = []  # pyarrow turns a handler's exception into its own

    def invalid(row) -> str:
        line = row.number
        try:
            rows.bad(f"{row.actual_columns} fields where the header has {row.expected_columns}", line=line)
        except DataFormatError as error:
            raised.append(error)
            return "error"
        invalid_lines.append(line if line is not None else -1)
        return "skip"

    def failure(error: Exception) -> DataFormatError:
        if raised:
            return raised[0]
        if isinstance(error, KeyError) or "not found" in str(error):  # a column the config reads is not there
            return DataFormatError(f"{error}; the config reads {list(needed)}", path=path, line=1)
        return DataFormatError(str(error), path=path)

    with _opened(path) as raw, pa.CompressedInputStream(raw, "gzip") if path.endswith(".gz") else raw as f:
        try:
            reader = csv.open_csv(
                f,
                read_options=csv.ReadOptions(
                    use_threads=False, block_size=CSV_BLOCK_BYTES, column_names=config.columns
                ),
                parse_options=csv.ParseOptions(
                    delimiter="\t" if config.format == "tsv" else ",", invalid_row_handler=invalid
                ),
                convert_options=csv.ConvertOptions(
                    column_types={name: pa.string() for name in needed},
                    include_columns=list(needed),
                    strings_can_be_null=False,
                ),
            )
            batches = iter(reader)
        except (pa.ArrowInvalid, KeyError) as error:
            raise failure(error) from None
        first_line = 1 if config.columns else 2  # of the first data row
        seen = 0  # data rows converted so far
        pending: list = []  # small blocks, joined into batches of `batch_rows` rows

        def converted(*, last: bool) -> Iterator[RowBatch]:
            nonlocal seen
            table = pa.Table.from_batches(pending)
            pending.clear()
            count = table.num_rows if last else table.num_rows - table.num_rows % batch_rows
            if count < table.num_rows:  # a part batch waits for the next blocks
                pending.extend(table.slice(count).to_batches())
            # Row r's line: skip the invalid lines before it (each is one line of the file).
            lines = np.arange(seen, seen + count) + first_line
            for line in sorted(invalid_lines):
                lines = lines + (lines >= line)
            columns = {name: table.column(name).slice(0, count).combine_chunks() for name in needed}
            seen += count
            for start in range(0, count, batch_rows):
                part = slice(start, start + batch_rows)
                yield convert_columns(config, {k: v[part] for k, v in columns.items()}, rows, lines[part])

        while True:
            try:
                record_batch = next(batches)
            except StopIteration:
                break
            except pa.ArrowInvalid as error:
                raise failure(error) from None
            pending.append(record_batch)
            if sum(b.num_rows for b in pending) >= batch_rows:
                yield from converted(last=False)
        if pending:
            yield from converted(last=True)


def _parquet_batches(config: DataConfig, path: str, rows: _Rows, batch_rows: int) -> Iterator[RowBatch]:
    import pyarrow.parquet as pq

    needed = config.needed_columns
    with _opened(path) as f:
        parquet = pq.ParquetFile(f)
        missing = [c for c in needed if c not in parquet.schema_arrow.names]
        if missing:
            raise DataFormatError(f"no column(s) {missing}; the file has {parquet.schema_arrow.names}", path=path)
        seen = 0
        for record_batch in parquet.iter_batches(batch_size=batch_rows, columns=list(needed)):
            columns = {}
            for name in needed:
                column = record_batch.column(name)
                columns[name] = (
                    column.to_pylist() if hasattr(column.type, "value_type") else column.to_numpy(zero_copy_only=False)
                )
            lines = np.arange(seen, seen + record_batch.num_rows)
            seen += record_batch.num_rows
            yield convert_columns(config, columns, rows, lines)


def _tfrecord_batches(config: DataConfig, path: str, rows: _Rows, batch_rows: int) -> Iterator[RowBatch]:
    import pyarrow as pa
    import tensorflow as tf

    parse = {}
    for feature in config.spec.features:
        if feature.kind in ("sequence", "embedding"):  # a missing vector has no values; a wrong width is a bad row
            parse[feature.name] = tf.io.VarLenFeature(tf.dtypes.as_dtype(feature.dtype))
        else:
            default = SEQUENCE_PAD[feature.dtype]
            parse[feature.name] = tf.io.FixedLenFeature([], tf.dtypes.as_dtype(feature.dtype), default_value=default)
    for label in config.label_columns:
        if label.positive is None:
            parse[label.column] = tf.io.FixedLenFeature([], tf.float32, default_value=np.nan)
        else:
            parse[label.column] = tf.io.FixedLenFeature([], tf.string, default_value="")
        for name in (label.times, label.observed_where):
            if name is not None:
                parse.setdefault(name, tf.io.FixedLenFeature([], tf.float32, default_value=np.nan))
    for name in config.split.columns:
        parse.setdefault(name, tf.io.FixedLenFeature([], tf.string, default_value=""))

    seen = 0
    for records in tf.data.TFRecordDataset(path).batch(batch_rows):
        count = int(records.shape[0])
        lines = np.arange(seen, seen + count)
        seen += count
        try:  # the serialized records stay in TensorFlow: no copy of them in Python
            values = tf.io.parse_example(records, parse)
        except tf.errors.InvalidArgumentError:  # some record is malformed: parse each alone to name it
            records = records.numpy()
            keep = np.ones(len(records), bool)
            for i, record in enumerate(records):
                try:
                    tf.io.parse_example([record], parse)
                except tf.errors.InvalidArgumentError as error:
                    keep[i] = False
                    rows.bad(f"not a tf.train.Example of the config's features: {error.message}", line=int(lines[i]))
            values = tf.io.parse_example(records[keep], parse)
            lines = lines[keep]
        columns = {}
        for name, value in values.items():
            if isinstance(value, tf.SparseTensor):  # a sequence or vector: each row's list, as an Arrow list array
                row_of = value.indices.numpy()[:, 0]  # row-major: each row's values in order
                offsets = np.zeros(len(lines) + 1, np.int32)
                np.cumsum(np.bincount(row_of, minlength=len(lines)), out=offsets[1:])
                columns[name] = pa.ListArray.from_arrays(pa.array(offsets), _arrow_values(value.values.numpy()))
                continue
            value = value.numpy()
            columns[name] = _arrow_values(value) if value.dtype == object else value
        yield convert_columns(config, columns, rows, lines)


def _arrow_values(values: np.ndarray):
    """A NumPy column as Arrow; bytes (TFRecord strings) decoded as UTF-8 in Arrow, not
    one by one in Python."""
    import pyarrow as pa

    if values.dtype == object:
        return pa.array(values, pa.binary()).cast(pa.string())
    return pa.array(values)


_READERS = {"csv": _text_batches, "tsv": _text_batches, "parquet": _parquet_batches, "tfrecord": _tfrecord_batches}


def read_file(
    config: DataConfig,
    path: str,
    *,
    on_bad_row: str = "raise",
    bad_rows: BadRowCounts | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[RowBatch]:
    """The rows of one file of `config`, in batches of at most `batch_rows`."""
    yield from _READERS[config.format](config, path, _Rows(path, on_bad_row, bad_rows), batch_rows)


def read_text_columns(
    path: str,
    file_format: str,
    columns: Sequence[str],
    *,
    bad_rows: BadRows,
    column_names: Sequence[str] | None = None,
    integers: Sequence[str] = (),
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The `columns` of a whole CSV, TSV or Parquet file as text (object arrays; a null is
    ""), with each row's line (text: the header, if any, being line 1) or record index
    (Parquet). `column_names` names the columns of a headerless CSV or TSV file. A row
    with the wrong number of fields goes to `bad_rows`; a missing column raises a
    `DataFormatError` naming the file and the columns it has.

    The columns named in `integers` come as int64 arrays where every value is an integer
    written plainly (its text is the number's: "007" stays text), else as text: an id or
    time column then costs 8 bytes a row, not a Python string."""
    import pyarrow as pa
    import pyarrow.csv as csv
    import pyarrow.parquet as pq

    columns = list(columns)
    if file_format == "parquet":
        with _opened(path) as f:
            parquet = pq.ParquetFile(f)
            missing = [c for c in columns if c not in parquet.schema_arrow.names]
            if missing:
                raise DataFormatError(f"no column(s) {missing}; the file has {parquet.schema_arrow.names}", path=path)
            table = parquet.read(columns=columns)
        lines = np.arange(table.num_rows)
    else:
        invalid_lines: list[int] = []
        raised: list[DataFormatError] = []  # pyarrow turns a handler's exception into its own

        def invalid(row) -> str:
            try:
                bad_rows.handle(
                    DataFormatError(
                        f"{row.actual_columns} fields where the header has {row.expected_columns}",
                        path=path,
                        line=row.number,
                    )
                )
            except DataFormatError as error:
                raised.append(error)
                return "error"
            invalid_lines.append(row.number if row.number is not None else -1)
            return "skip"

        with _opened(path) as raw, pa.CompressedInputStream(raw, "gzip") if path.endswith(".gz") else raw as f:
            try:
                table = csv.read_csv(
                    f,
                    read_options=csv.ReadOptions(
                        use_threads=False, column_names=list(column_names) if column_names else None
                    ),
                    parse_options=csv.ParseOptions(
                        delimiter="\t" if file_format == "tsv" else ",", invalid_row_handler=invalid
                    ),
                    convert_options=csv.ConvertOptions(
                        column_types={name: pa.string() for name in columns},
                        include_columns=columns,
                        strings_can_be_null=False,
                    ),
                )
            except (pa.ArrowInvalid, KeyError) as error:
                if raised:
                    raise raised[0] from None
                message = str(error)
                if isinstance(error, KeyError) or "not found" in message:
                    message = f"{message}; the config reads {columns}"
                raise DataFormatError(message, path=path, line=1) from None
        lines = np.arange(table.num_rows) + (1 if column_names else 2)  # the first data row's line
        for line in sorted(invalid_lines):
            lines = lines + (lines >= line)
    values = {}
    for name in columns:
        column = table.column(name)
        if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
            column = column.cast(pa.string())
        numbers = _plain_integers(column) if name in integers else None
        values[name] = numbers if numbers is not None else np.array(column.fill_null("").to_pylist(), dtype=object)
    return values, lines


def _plain_integers(column) -> np.ndarray | None:
    """A text column as int64 where every value is an integer written plainly (surrounding
    spaces aside), else None."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(column)
    try:
        numbers = pc.cast(text, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # some value is not an integer (or is empty): the caller keeps the text
    if numbers.null_count or not pc.all(pc.equal(pc.cast(numbers, pa.string()), text)).as_py():
        return None
    return numbers.to_numpy()
