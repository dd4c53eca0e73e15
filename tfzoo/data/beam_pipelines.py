"""The one-pass analysis of a data config and its conversion to TFRecord shards, as Apache
Beam pipelines: for data beyond one machine (Dataflow, Flink or Spark runners), or to
turn text files into the TFRecord shards of equal size that multi-worker training reads
best.

    tfzoo data analyze --data-config clicks.yaml --out gs://bucket/clicks-analysis \\
        --runner DataflowRunner --project P --region R --temp_location gs://bucket/tmp
    tfzoo data convert --data-config clicks.yaml --out gs://bucket/clicks-tfrecord --num-shards 256

Both read each file with the zoo's readers (`tfzoo.data.file_readers`: the same parsing,
the same bad-row rules; skipped rows are counted in the Beam counter
`tfzoo:skipped_rows`). `analyze` combines the spec's mergeable statistics
(`DatasetSpec.statistics()`) over the training rows of every file, exactly what
`StreamedSplits.analyze()` computes on one machine, and writes `analysis.json` (the fitted
spec, the rows of each split and of each file). `convert` writes each split's rows as
`<split>-NNNNN-of-NNNNN.tfrecord` (`tf.train.Example`) with `data.yaml`, the data config
that reads them (files per split; labels as 0 / 1 numbers). `convert --preprocess` runs
`analyze` first and writes the rows preprocessed by its fitted spec, as model inputs: what
training reads fastest (`tf.data` alone, nothing per batch in Python), the analogue of the
transformed data tensorflow-transform materialises.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tfzoo.data.data_config import SPLITS, DataConfig
from tfzoo.data.features import DatasetSpec
from tfzoo.data.file_readers import BadRowCounts, RowBatch, read_file

ANALYSIS_FILE = "analysis.json"


class _BeamBadRows(BadRowCounts):
    """Skipped rows counted in a Beam counter (workers' counts add up in the job)."""

    def add(self, error) -> None:
        import apache_beam as beam

        beam.metrics.Metrics.counter("tfzoo", "skipped_rows").inc()


def _split_batches(raw: dict[str, Any], source: str, on_bad_row: str, path_and_split) -> Iterator[tuple]:
    """(path, split index per row, batch) of one file."""
    from tfzoo.data.streaming import split_of

    config = DataConfig.from_dict(raw, source=source)
    path, split = path_and_split
    for batch in read_file(config, path, on_bad_row=on_bad_row, bad_rows=_BeamBadRows()):
        which = np.full(len(batch), SPLITS.index(split)) if split else split_of(config, batch)
        yield path, which, batch


def _statistics_fn(spec_config: dict):
    import apache_beam as beam

    class SpecStatisticsFn(beam.CombineFn):
        """`DatasetSpec.statistics()` as a Beam combiner: updates per batch, merges across workers."""

        def create_accumulator(self):
            return DatasetSpec.from_config(spec_config).statistics()

        def add_input(self, statistics, features):
            statistics.update(features)
            return statistics

        def merge_accumulators(self, accumulators):
            accumulators = list(accumulators)
            merged = accumulators[0]
            for other in accumulators[1:]:
                merged.merge(other)
            return merged

        def extract_output(self, statistics):
            return statistics.fitted().to_config()

    return SpecStatisticsFn()


def _files(config: DataConfig) -> list[tuple[str, str | None]]:
    from tfzoo.data.streaming import StreamedSplits

    return [(path, split) for split, path in StreamedSplits(config).file_work()]


def _pipeline(beam_args: Sequence[str]):
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    return beam.Pipeline(options=PipelineOptions(list(beam_args) or ["--runner", "DirectRunner"]))


def _read(pipeline, config: DataConfig, on_bad_row: str):
    """The PCollection of (path, split index per row, batch) of every file of `config`."""
    import apache_beam as beam

    raw, source = config.to_dict(), config.source
    return (
        pipeline
        | "Files" >> beam.Create(_files(config))
        | "Read" >> beam.FlatMap(lambda item: _split_batches(raw, source, on_bad_row, item))
    )


def _write_json(path: str, payload: dict) -> None:
    import tensorflow as tf

    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(payload, indent=2, sort_keys=True))


def _check_raw_rows(config: DataConfig) -> None:
    if config.preprocessed is not None:
        raise ValueError(
            f"{config.source}: holds preprocessed rows (model inputs) already; analyze or convert the config "
            "they were made from"
        )


def analyze(config: DataConfig, out: str, *, on_bad_row: str = "raise", beam_args: Sequence[str] = ()) -> None:
    """Runs the analysis pipeline; writes `<out>/analysis.json`."""
    import apache_beam as beam
    import tensorflow as tf

    _check_raw_rows(config)
    tf.io.gfile.makedirs(out)
    with _pipeline(beam_args) as pipeline:
        batches = _read(pipeline, config, on_bad_row)
        spec = (
            batches
            | "TrainingRows" >> beam.Map(lambda b: b[2].take(b[1] == 0).features)
            | "Statistics" >> beam.CombineGlobally(_statistics_fn(config.spec.to_config()))
        )
        counts = (
            batches
            | "Count"
            >> beam.Map(lambda b: {"split": [int((b[1] == i).sum()) for i in range(3)], b[0]: int((b[1] == 0).sum())})
            | "Sum" >> beam.CombineGlobally(_sum_counts)
        )
        _ = spec | "Write" >> beam.Map(
            lambda fitted, rows: _write_json(f"{out}/{ANALYSIS_FILE}", _analysis(fitted, rows)),
            rows=beam.pvalue.AsSingleton(counts),
        )


def _sum_counts(parts) -> dict:
    total: dict[str, Any] = {"split": [0, 0, 0]}
    for part in parts:
        for key, value in part.items():
            if key == "split":
                total["split"] = [a + b for a, b in zip(total["split"], value)]
            else:
                total[key] = total.get(key, 0) + value
    return total


def _analysis(spec_config: dict, counts: dict) -> dict:
    return {
        "spec": spec_config,
        "rows": dict(zip(SPLITS, counts["split"])),
        "train_file_rows": {k: v for k, v in counts.items() if k != "split"},
    }


def read_analysis(out: str) -> tuple[DatasetSpec, dict, dict]:
    """(fitted spec, rows per split, training rows per file) written by `analyze`."""
    import tensorflow as tf

    with tf.io.gfile.GFile(f"{out}/{ANALYSIS_FILE}") as f:
        payload = json.load(f)
    return DatasetSpec.from_config(payload["spec"]), payload["rows"], payload["train_file_rows"]


def _examples(batch: RowBatch) -> Iterator[bytes]:
    from tfzoo.data.file_writers import serialized_examples

    yield from serialized_examples({**batch.features, **batch.labels})


def _preprocessed_examples_fn(spec_config: dict):
    import apache_beam as beam

    class PreprocessedExamplesFn(beam.DoFn):
        """A batch's rows as model inputs (`FeaturePreprocessor` of the fitted spec, built
        once per worker), serialized with their labels."""

        def setup(self):
            import tensorflow as tf

            from tfzoo.data.preprocessing import FeaturePreprocessor
            from tfzoo.data.streaming import raw_signature

            spec = DatasetSpec.from_config(spec_config)
            self.preprocess = tf.function(FeaturePreprocessor(spec), input_signature=[raw_signature(spec)])

        def process(self, batch: RowBatch) -> Iterator[bytes]:
            from tfzoo.data.file_writers import serialized_examples

            if len(batch):
                features = {name: tensor.numpy() for name, tensor in self.preprocess(batch.features).items()}
                yield from serialized_examples({**features, **batch.labels})

    return PreprocessedExamplesFn()


def _write_shard(out: str, split: str, shard: int, num_shards: int, examples) -> tuple[str, str, int]:
    """Writes one shard; (split, file name, rows)."""
    import tensorflow as tf

    name = f"{split}-{shard:05d}-of-{num_shards:05d}.tfrecord"
    rows = 0
    with tf.io.TFRecordWriter(f"{out}/{name}") as writer:
        for example in examples:
            writer.write(example)
            rows += 1
    return split, name, rows


def convert(
    config: DataConfig,
    out: str,
    *,
    num_shards: int,
    on_bad_row: str = "raise",
    beam_args: Sequence[str] = (),
    spec: DatasetSpec | None = None,
) -> None:
    """Runs the conversion pipeline: `<out>/<split>-*.tfrecord` and `<out>/data.yaml`.

    With `spec` (fitted: `analyze`'s), the rows are written preprocessed, as the model's
    inputs, and `data.yaml` says so (`preprocessed`: the spec, written to
    `<out>/spec.json`, and the rows of each split and training file): training then reads
    them with `tf.data` alone, no parsing or lookups per batch (`StreamedSplits.dataset`)."""
    import apache_beam as beam
    import tensorflow as tf

    if num_shards < 1:
        raise ValueError(f"`num_shards` must be >= 1. Received: num_shards={num_shards}")
    _check_raw_rows(config)
    if spec is not None and not spec.is_fitted:
        raise ValueError("`spec` must be fitted (the spec `analyze` writes) to preprocess the rows")
    tf.io.gfile.makedirs(out)
    converted = {
        "name": config.name,
        "format": "tfrecord",
        "files": {split: f"{split}-*.tfrecord" for split in SPLITS},
        "features": config.to_dict()["features"],
        "labels": list(config.spec.labels),
    }
    if spec is not None:
        _write_json(f"{out}/spec.json", spec.to_config())
    with _pipeline(beam_args) as pipeline:
        rows = _read(pipeline, config, on_bad_row)
        written = []
        for index, split in enumerate(SPLITS):
            batches = rows | f"Rows{split}" >> beam.Map(lambda b, i=index: b[2].take(b[1] == i))
            if spec is None:
                examples = batches | f"Examples{split}" >> beam.FlatMap(_examples)
            else:
                examples = batches | f"Examples{split}" >> beam.ParDo(_preprocessed_examples_fn(spec.to_config()))
            # Rows dealt to shards by a hash of their bytes (deterministic, even); each shard
            # written by TensorFlow's TFRecord writer, which opens any tf.io.gfile path.
            written.append(
                examples
                | f"Deal{split}" >> beam.Map(lambda example: (zlib.crc32(example) % num_shards, example))
                | f"Shard{split}" >> beam.GroupByKey()
                | f"Write{split}"
                >> beam.MapTuple(lambda shard, examples, s=split: _write_shard(out, s, shard, num_shards, examples))
            )
        _ = (
            written
            | "Shards" >> beam.Flatten()
            | "AllShards" >> beam.combiners.ToList()
            | "Config"
            >> beam.Map(lambda shards: _write_config(out, converted, shards, config if spec is not None else None))
        )


def convert_preprocessed(
    config: DataConfig, out: str, *, num_shards: int, on_bad_row: str = "raise", beam_args: Sequence[str] = ()
) -> dict[str, int]:
    """`analyze`, then `convert` with the fitted spec (`tfzoo data convert --preprocess`):
    `<out>/analysis.json`, the preprocessed shards and their `data.yaml`; the rows of each
    split."""
    analyze(config, out, on_bad_row=on_bad_row, beam_args=beam_args)
    spec, rows, _ = read_analysis(out)
    convert(config, out, num_shards=num_shards, on_bad_row=on_bad_row, beam_args=beam_args, spec=spec)
    return rows


def _write_config(out: str, converted: dict, shards: list[tuple[str, str, int]], preprocessed_from) -> None:
    """`<out>/data.yaml`; for preprocessed rows, with what training needs to know of them."""
    import tensorflow as tf
    import yaml

    if preprocessed_from is not None:
        converted = {
            **converted,
            "labels": list(converted["labels"]),
            "preprocessed": {
                "spec": "spec.json",
                "rows": {split: sum(n for s, _, n in shards if s == split) for split in SPLITS},
                "train_file_rows": {name: n for s, name, n in sorted(shards) if s == "train"},
                "split": f"{preprocessed_from.name} ({preprocessed_from.split.describe()})",
            },
        }
    with tf.io.gfile.GFile(f"{out}/data.yaml", "w") as f:
        f.write(yaml.safe_dump(converted, sort_keys=False))
