"""A data config's splits as streams: `tf.data` pipelines that read the files in parallel
and never hold more than a shuffle buffer of rows, and the spec fitted in one pass.

    splits = StreamedSplits(read_data_config("clicks.yaml"))
    analysis = splits.analyze()                     # one pass: spec statistics, row counts
    train = splits.dataset("train", analysis.spec, batch_size=512, shuffle=True, seed=0, epoch=3)

Each epoch reads the split's files in an order drawn from (seed, epoch), a few open at a
time, and shuffles rows in a NumPy buffer seeded the same way: the batches of epoch e are a
function of (seed, e) alone, so a run resumed at epoch e sees the batches it would have
seen. `shard=(index, count)` gives worker `index` of `count` every count-th file (of the
sorted file list): workers read disjoint rows whose union is the split.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import zlib
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow as tf

from tfzoo.data.data_config import SPLITS, DataConfig
from tfzoo.data.features import DatasetSpec
from tfzoo.data.file_readers import BadRowCounts, RowBatch, parse_numbers, read_file
from tfzoo.data.preprocessing import FeaturePreprocessor
from tfzoo.data.tabular import TabularData

SHUFFLE_BUFFER_ROWS = 100_000
FILES_READ_AT_ONCE = 4
ROWS_PER_YIELD = 8192
PREPARED_CHUNK_ROWS = 4096  # records per element of the preprocessed rows' pipeline


@dataclasses.dataclass(frozen=True)
class Analysis:
    """What one pass over the data learns: the spec fitted on the training rows and the
    rows of each split (which fixes the steps of an epoch)."""

    spec: DatasetSpec
    rows: dict[str, int]
    train_file_rows: dict[str, int]  # the training rows of each file (workers read files)


def split_of(config: DataConfig, batch: RowBatch) -> np.ndarray:
    """Each row's split index (0 train, 1 validation, 2 test; -1 none) by the split rule."""
    rule = config.split
    if rule.by == "hash":
        buckets = 1_000_000
        hashed = tf.strings.to_hash_bucket_fast(batch.split_columns[rule.key], buckets).numpy() / buckets
        bounds = np.cumsum(rule.shares)[:2]
        return np.searchsorted(bounds, hashed, side="right")
    values = batch.split_columns[rule.column]
    if rule.by == "column":
        index = np.full(len(values), -1)
        for i, split in enumerate(SPLITS):
            index[np.isin(values, rule.values[split])] = i
        return index
    times, _ = parse_numbers(values, np.float64)  # every one a number (a row without is a bad row)
    return np.searchsorted([rule.validation_from, rule.test_from], times, side="right")


def raw_signature(spec: DatasetSpec) -> dict[str, tf.TensorSpec]:
    """The raw columns of a batch of rows as the readers give them (sequences padded to
    their `max_length`), by name."""
    raw = {}
    for name, tensor_spec in spec.serving_signature().items():
        feature = spec.feature(name)
        width = feature.max_length if feature.kind == "sequence" else None
        raw[name] = tf.TensorSpec([None, width] if width is not None else tensor_spec.shape, tensor_spec.dtype)
    return raw


def model_input_signature(spec: DatasetSpec) -> dict[str, tf.TensorSpec]:
    """The model inputs `FeaturePreprocessor(spec)` makes of a batch, by name."""
    outputs = tf.function(FeaturePreprocessor(spec)).get_concrete_function(raw_signature(spec)).structured_outputs
    return {name: tf.TensorSpec(tensor.shape, tensor.dtype) for name, tensor in outputs.items()}


def _preprocessed_dataset(
    files: list[str] | tf.Tensor,
    spec: DatasetSpec,
    model_inputs_signature: dict[str, tf.TensorSpec],
    *,
    batch_size: int,
    seed: int | tf.Tensor | None,
    repeat: bool,
) -> tf.data.Dataset:
    """Batches of preprocessed rows (`tfzoo data convert --preprocess`), in `tf.data` alone.

    `tf.data` pays per element of every stage, so no stage handles single records: each
    file is read in chunks of `PREPARED_CHUNK_ROWS` records, `FILES_READ_AT_ONCE` files
    interleaved (a fixed order); with a `seed`, the chunks are joined into windows of
    `SHUFFLE_BUFFER_ROWS` records, each permuted as a whole (a stateless shuffle seeded by
    `seed` and the window's number), then cut into batches and parsed a batch at a time on
    `tf.data`'s threads. Measured on 2 cores, pipeline alone: 6.5 us of CPU per row
    against 18 us for records shuffled one by one (docs/benchmarks.md).

    `files` may be a string tensor ([n], empty strings skipped) and `seed` a tensor: what
    a parameter-server worker picks by its index inside the dataset function."""
    parse = {
        name: tf.io.FixedLenFeature(tensor_spec.shape[1:], tensor_spec.dtype)
        for name, tensor_spec in model_inputs_signature.items()
    }
    for name in spec.labels:  # a missing label is absent from its record
        parse[name] = tf.io.FixedLenFeature([], tf.float32, default_value=np.nan)

    def model_inputs(records):
        values = tf.io.parse_example(records, parse)
        labels = {name: values.pop(name) for name in spec.labels}
        masks = {name: tf.cast(tf.math.is_finite(v), tf.float32) for name, v in labels.items()}
        labels = {name: tf.where(masks[name] > 0, v, 0.0) for name, v in labels.items()}
        return values, labels, masks

    paths = tf.data.Dataset.from_tensor_slices(files)
    if isinstance(files, tf.Tensor):
        paths = paths.filter(lambda path: tf.strings.length(path) > 0)
    records = paths.interleave(
        lambda path: tf.data.TFRecordDataset(path).batch(PREPARED_CHUNK_ROWS),
        cycle_length=min(FILES_READ_AT_ONCE, int(files.shape[0]) if isinstance(files, tf.Tensor) else len(files)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if repeat:  # each pass every row once; a batch may span two passes, as in `_shuffled_batches`
        records = records.repeat()
    if seed is not None:
        seed = tf.cast(seed, tf.int64)
        records = (
            records.rebatch(SHUFFLE_BUFFER_ROWS)
            .enumerate()
            .map(
                lambda number, window: tf.random.experimental.stateless_shuffle(window, seed=tf.stack([seed, number])),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
        )
    batches = records.rebatch(batch_size, drop_remainder=repeat)
    return batches.map(model_inputs, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


def _concatenated(batches: list[RowBatch]) -> RowBatch:
    if len(batches) == 1:
        return batches[0]
    join = lambda part: {k: np.concatenate([getattr(b, part)[k] for b in batches]) for k in getattr(batches[0], part)}  # noqa: E731
    return RowBatch(join("features"), join("labels"), join("split_columns"))


class StreamedSplits:
    """The train / validation / test rows of a data config, read from its files."""

    def __init__(self, config: DataConfig, *, on_bad_row: str = "raise"):
        self.config = config
        self.on_bad_row = on_bad_row
        self.bad_rows = BadRowCounts()
        self._files: dict[str, list[str]] = {}
        self._model_inputs: tuple[DatasetSpec, dict[str, tf.TensorSpec]] | None = None

    @property
    def split(self) -> str:
        if self.config.preprocessed is not None:
            source = self.config.preprocessed.split
            return f"{self.config.name}: preprocessed by `tfzoo data convert --preprocess` from {source}"
        return f"{self.config.name}: {self.config.split.describe()}"

    def files(self, split: str) -> list[str]:
        """The sorted files of `split` (every file where a rule splits the rows)."""
        group = self.config.file_group(split)
        if group not in self._files:
            found = sorted({path for pattern in self.config.files[group] for path in tf.io.gfile.glob(pattern)})
            if not found:
                raise FileNotFoundError(
                    f"{self.config.source}: `files`: no file matches {list(self.config.files[group])}"
                )
            self._files[group] = found
        return self._files[group]

    def batches(self, split: str, *, files: Sequence[str] | None = None) -> Iterator[RowBatch]:
        """The rows of `split`, file by file in `files` order (default: all of the split's)."""
        if self.config.preprocessed is not None:
            raise ValueError(
                f"{self.config.source}: holds preprocessed rows (model inputs, `tfzoo data convert --preprocess`), not raw "
                "rows: read it with `dataset`, or read the config it was prepared from"
            )
        index = SPLITS.index(split)
        dealt = self.config.dealt(self.config.file_group(split))
        for path in self.files(split) if files is None else files:
            for batch in read_file(self.config, path, on_bad_row=self.on_bad_row, bad_rows=self.bad_rows):
                if dealt:
                    batch = batch.take(split_of(self.config, batch) == index)
                if len(batch):
                    yield batch

    def in_memory(self, split: str) -> TabularData:
        """Every row of `split` read into memory, the spec unfitted: what `--dataset NAME`
        makes of a shipped config (small data; options that need every row at once, such as
        upsampling by task or a random subset of the training rows)."""
        batches = list(self.batches(split))
        if not batches:
            raise ValueError(f"{self.config.source}: no {split} rows in {self.files(split)}")
        rows = _concatenated(batches)
        skipped = sum(self.bad_rows.take().values())
        return TabularData(rows.features, rows.labels, self.config.spec, source=self.split, skipped_rows=skipped)

    def analyze(self) -> Analysis:
        """One pass over every file: the spec fitted on the training rows, rows per split.

        Files are read on a thread per core (the parsing runs in Arrow and NumPy, outside
        the GIL), each into its own statistics, merged in file order as they finish: the
        result does not depend on the number of threads, and at most a few files'
        statistics (their quantile samples) are held at once, whatever the number of files."""
        prepared = self.config.preprocessed
        if prepared is not None:  # counted and fitted when the rows were prepared
            with tf.io.gfile.GFile(prepared.spec) as file:
                spec = DatasetSpec.from_config(json.load(file))
            return Analysis(spec=spec, rows=dict(prepared.rows), train_file_rows=dict(prepared.train_file_rows))
        work = self.file_work()
        statistics = self.config.spec.statistics()
        rows = dict.fromkeys(SPLITS, 0)
        train_file_rows: dict[str, int] = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(work), os.cpu_count() or 1)) as pool:
            # `map` yields in order and lets go of each result once yielded.
            parts = pool.map(lambda item: self._analyze_file(*item), work)
            for (split, path), (file_statistics, file_rows) in zip(work, parts):
                statistics.merge(file_statistics)
                for name, count in file_rows.items():
                    rows[name] += count
                if split in (None, "train"):
                    train_file_rows[path] = train_file_rows.get(path, 0) + file_rows["train"]
        if rows["train"] == 0:
            raise ValueError(f"{self.config.source}: no training rows in {self.files('train')}")
        return Analysis(spec=statistics.fitted(), rows=rows, train_file_rows=train_file_rows)

    def file_work(self) -> list[tuple[str | None, str]]:
        """Every file once, with the split all its rows belong to, or None where the split
        rule deals its rows among splits."""
        groups = dict.fromkeys(self.config.file_group(split) for split in SPLITS)
        return [(None if self.config.dealt(group) else group, path) for group in groups for path in self.files(group)]

    def _analyze_file(self, split: str | None, path: str):
        """The statistics of one file's training rows and its rows per split (`split`: the
        split the file belongs to; None: the split rule deals its rows)."""
        statistics = self.config.spec.statistics(seed=zlib.crc32(path.encode()))
        rows = dict.fromkeys(SPLITS, 0)
        for batch in read_file(self.config, path, on_bad_row=self.on_bad_row, bad_rows=self.bad_rows):
            which = np.full(len(batch), SPLITS.index(split)) if split else split_of(self.config, batch)
            for i, name in enumerate(SPLITS):
                rows[name] += int((which == i).sum())
            train = batch.take(which == 0) if split != "train" else batch
            if len(train):
                statistics.update(train.features)
        return statistics, rows

    def shard_rows(self, file_rows: dict[str, int], count: int) -> list[int]:
        """The training rows each of `count` shards (`dataset(shard=...)`) reads."""
        files = self.files("train")
        return [sum(file_rows.get(path, 0) for path in files[index::count]) for index in range(count)]

    def dataset(
        self,
        split: str,
        spec: DatasetSpec,
        *,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        epoch: int = 0,
        shard: tuple[int | tf.Tensor, int] = (0, 1),
        with_labels: bool = True,
        preprocess: bool = True,
        repeat: bool = False,
    ) -> tf.data.Dataset:
        """One epoch of `split` as batches of `(features, labels, label_masks)` (or
        features alone), features preprocessed by `spec` (raw with `preprocess=False`);
        with `repeat`, its rows again and again (every batch full).

        `shard=(index, count)` reads every count-th file from the index-th. For
        preprocessed rows the index may be a scalar tensor (a parameter-server worker's
        `experimental_get_current_worker_index()`): every shard's files are laid out and
        the index picks one inside the graph."""
        index, count = shard
        every = self.files(split)
        for i in range(count) if isinstance(index, tf.Tensor) else [index]:
            if not every[i::count]:
                raise ValueError(f"Shard {i} of {count} has no file: {split} has {len(every)} file(s).")

        def shard_files(i: int) -> tuple[list[str], int | None]:
            # The shard's files, permuted by (seed, epoch), and its window shuffle's seed.
            files = every[i::count]
            if not shuffle:
                return files, None
            rng = np.random.default_rng([seed, epoch])
            files = [files[j] for j in rng.permutation(len(files))]
            return files, int(rng.integers(2**31))

        if self.config.preprocessed is not None:
            # The parse spec once per spec (tracing the preprocessor builds its lookup
            # tables), not once per epoch and split.
            if self._model_inputs is None or self._model_inputs[0] is not spec:
                self._model_inputs = (spec, model_input_signature(spec))
            inputs = self._model_inputs[1]
            if isinstance(index, tf.Tensor):
                shards = [shard_files(i) for i in range(count)]
                width = max(len(files) for files, _ in shards)
                files = tf.gather(tf.constant([f + [""] * (width - len(f)) for f, _ in shards]), index)
                shard_seed = None if not shuffle else tf.gather(tf.constant([s for _, s in shards], tf.int64), index)
            else:
                files, shard_seed = shard_files(index)
            return _preprocessed_dataset(files, spec, inputs, batch_size=batch_size, seed=shard_seed, repeat=repeat)
        if isinstance(index, tf.Tensor):
            raise ValueError(
                "Only preprocessed rows (`tfzoo data convert --preprocess`) can be sharded by a tensor index: "
                "other files are read by Python readers."
            )
        files = every[index::count]
        rng = np.random.default_rng([seed, epoch]) if shuffle else None
        if rng is not None:
            files = [files[i] for i in rng.permutation(len(files))]

        def batches():
            for batch in self._shuffled_batches(split, files, batch_size, rng, repeat=repeat):
                yield batch.features, batch.labels

        dataset = tf.data.Dataset.from_generator(batches, output_signature=self._signature(spec))
        if preprocess:
            preprocessor = FeaturePreprocessor(spec)

            def model_inputs(features, labels):
                masks = {k: tf.cast(tf.math.is_finite(v), tf.float32) for k, v in labels.items()}
                labels = {k: tf.where(masks[k] > 0, v, 0.0) for k, v in labels.items()}
                return preprocessor(features), labels, masks

            dataset = dataset.map(model_inputs, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            if not with_labels:
                dataset = dataset.map(lambda features, labels, masks: features)
        # The generator's runs of whole batches, cut into the batches (the same rows in the
        # same order as one batch per yield).
        return dataset.rebatch(batch_size).prefetch(tf.data.AUTOTUNE)

    def _chunks(self, split: str, files: list[str]) -> Iterator[RowBatch]:
        """The rows of `files`, `FILES_READ_AT_ONCE` files open at a time, their chunks taken
        in turn (a fixed order); each file's next chunk is parsed on a thread meanwhile."""
        pending = list(files)
        open_files: list[list] = []  # [iterator, future of its next chunk]
        with concurrent.futures.ThreadPoolExecutor(max_workers=FILES_READ_AT_ONCE) as pool:

            def advance(iterator):
                return pool.submit(next, iterator, None)

            while pending or open_files:
                while pending and len(open_files) < FILES_READ_AT_ONCE:
                    iterator = self.batches(split, files=[pending.pop(0)])
                    open_files.append([iterator, advance(iterator)])
                for entry in list(open_files):
                    chunk = entry[1].result()
                    if chunk is None:
                        open_files.remove(entry)
                        continue
                    entry[1] = advance(entry[0])
                    yield chunk

    def _shuffled_batches(
        self, split: str, files: list[str], batch_size: int, rng: np.random.Generator | None, *, repeat: bool
    ) -> Iterator[RowBatch]:
        """Runs of whole batches of `batch_size` rows of `files`, about `ROWS_PER_YIELD`
        rows each (the last batch partial, unless `repeat`: then the files again and again,
        each pass every row once, every batch full). With
        `rng`, rows are shuffled in a buffer of `SHUFFLE_BUFFER_ROWS`: whenever it is full,
        it is permuted and its first half goes out as batches, and at the end of a pass the
        rest. Every batch is a copy: no chunk stays alive for one of its rows, so memory is
        the buffer's, whatever the data's size."""
        carry: list[RowBatch] = []  # the last partial batch of a pass (`repeat`): out first in the next
        held: list[RowBatch] = []
        rows = 0  # in `held`
        keep = SHUFFLE_BUFFER_ROWS // 2 if rng is not None else 0
        # Rows per yield: whole batches, several at once (`dataset` cuts them), so that the
        # per-element costs of the generator and the preprocessing are paid per 8k rows.
        step = batch_size * max(1, ROWS_PER_YIELD // batch_size)

        def queued() -> RowBatch | None:
            parts = list(carry)
            if held:
                buffer = _concatenated(held)
                parts.append(buffer.take(rng.permutation(len(buffer)) if rng is not None else np.arange(len(buffer))))
            return _concatenated(parts) if parts else None

        while True:
            for chunk in self._chunks(split, files):
                held.append(chunk)
                rows += len(chunk)
                if rows < (SHUFFLE_BUFFER_ROWS if rng is not None else batch_size):
                    continue
                queue = queued()
                out = (len(queue) - keep) // batch_size * batch_size
                for start in range(0, out, step):
                    yield queue.take(np.arange(start, min(start + step, out)))
                carry, held = [], [queue.take(np.arange(out, len(queue)))]
                rows = len(held[0])
            # The end of a pass: the rows held go out too (with `repeat`, a partial last
            # batch goes first in the next pass), so each pass yields every row once.
            queue = queued()
            if queue is None:
                if repeat:
                    raise ValueError(f"{split} has no rows in {files}: nothing to repeat.")
                return
            out = len(queue) // batch_size * batch_size if repeat else len(queue)
            for start in range(0, out, step):
                yield queue.take(np.arange(start, min(start + step, out)))
            carry, held, rows = [queue.take(np.arange(out, len(queue)))], [], 0
            if not repeat:
                return

    def _signature(self, spec: DatasetSpec):
        labels = {name: tf.TensorSpec([None], tf.float32) for name in spec.labels}
        return raw_signature(spec), labels
