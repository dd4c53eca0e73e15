"""Multi-task rankers (`tfzoo.models.MultiTaskModel`) over tabular datasets."""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from tfzoo.data.features import DatasetSpec
from tfzoo.data.pipeline import dataset_from_columns, make_dataset, model_columns
from tfzoo.data.preprocessing import FeaturePreprocessor
from tfzoo.data.registry import DATASETS, FRIEND_GRAPH_DATASETS
from tfzoo.data.streaming import StreamedSplits
from tfzoo.evaluation.metrics import task_metrics
from tfzoo.evaluation.tabular import MAX_BASELINE_ROWS, TabularBaselines
from tfzoo.export.saved_model import export_saved_model
from tfzoo.export.warmup import example_rows
from tfzoo.training.callbacks import ReportBadRows
from tfzoo.training.config import RunConfig, make_optimizer
from tfzoo.training.task import EVAL_BATCH_SIZE, FitData, ModelTask, Prepared, TaskInputs, constructor_options


@dataclasses.dataclass(frozen=True)
class RankingInputs(TaskInputs):
    """The feature spec fitted on the run's training rows (`DatasetSpec.to_config()`);
    for data streamed from files, the rows of each split counted by the same pass (they
    fix the steps of an epoch; a resumed run need not count them again)."""

    spec: Mapping[str, Any]
    rows: Mapping[str, int] | None = None
    train_file_rows: Mapping[str, int] | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RankingInputs:
        # Runs stored before the inputs were typed hold the spec config itself.
        return super().from_config(config if "spec" in config else {"spec": config})

    @property
    def feature_spec(self) -> DatasetSpec:
        return DatasetSpec.from_config(self.spec)


# Fitted baselines by the content they were fitted on (`_fingerprint`), the most recently
# used last; a few kept, the baselines of large data are not small.
_FITTED_BASELINES: dict[str, TabularBaselines] = {}
_KEPT_BASELINES = 2


def _fingerprint(spec: DatasetSpec, tasks, *columns: Mapping) -> str:
    """A digest of the spec, the tasks and every array of `columns` (model_columns)."""
    digest = hashlib.sha256(json.dumps([spec.to_config(), list(tasks)], sort_keys=True, default=str).encode())
    for leaf in tf.nest.flatten(list(columns)):
        array = np.ascontiguousarray(leaf)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes() if array.dtype != object else repr(array.tolist()).encode())
    return digest.hexdigest()


def _streamed_columns(data: StreamedSplits, spec: DatasetSpec, split: str, *, limit: int) -> dict:
    """The first `limit` rows of a streamed split, preprocessed, as `model_columns` gives them."""
    parts, rows = [], 0
    for features, labels, masks in data.dataset(split, spec, batch_size=EVAL_BATCH_SIZE):
        parts.append(tf.nest.map_structure(np.asarray, {"features": features, "labels": labels, "label_masks": masks}))
        rows += len(next(iter(labels.values())))
        if rows >= limit:
            break
    columns = tf.nest.map_structure(lambda *arrays: np.concatenate(arrays)[:limit], *parts)
    return columns


class RankingTask(ModelTask):
    """A ranker: `model_class(feature_spec=..., tasks=..., **options)` over the rows of a
    tabular dataset, exported behind its preprocessing (raw features in). The baselines
    are logistic regression and gradient-boosted trees per task on the same rows
    (`tfzoo.evaluation.tabular`)."""

    inputs_type = RankingInputs
    # Every dataset of tabular rows; behaviour sequences are read as their flat features.
    accepted_datasets = tuple(name for name in DATASETS if name not in FRIEND_GRAPH_DATASETS)
    data_config_kinds = ("rows",)

    def model_options(self) -> tuple[str, ...]:
        return constructor_options(self.model_class, set_by_task=("feature_spec", "tasks"))

    def prepare(self, config: RunConfig, inputs: RankingInputs | None) -> Prepared:
        data = self.load_data(config)
        if isinstance(data, StreamedSplits):
            if inputs is None:  # one pass over the files: the spec's statistics, the rows of each split
                analysis = data.analyze()
                inputs = RankingInputs(
                    spec=analysis.spec.to_config(), rows=analysis.rows, train_file_rows=analysis.train_file_rows
                )
            train_rows = inputs.rows["train"]
        else:
            if inputs is None:
                inputs = RankingInputs(spec=data.train.spec.fit(data.train.features).to_config())
            train_rows = len(data.train)
        model = self._model(config, inputs, steps_per_epoch=math.ceil(train_rows / config.batch_size))
        return Prepared(model=model, inputs=inputs, data=data, split=data.split)

    def build(self, config: RunConfig, inputs: RankingInputs, directory: Path) -> tf.keras.Model:
        return self._model(config, inputs, steps_per_epoch=1)

    def _model(self, config: RunConfig, inputs: RankingInputs, *, steps_per_epoch: int) -> tf.keras.Model:
        spec = inputs.feature_spec
        model = self.model_class(feature_spec=spec, tasks=config.tasks, **dict(config.model_options))
        model.compile(optimizer=make_optimizer(config, steps_per_epoch))
        # One call on valid example rows builds every variable: a checkpoint restores at once.
        rows = example_rows(spec, num_rows=2)
        model(FeaturePreprocessor(spec)({name: tf.constant(values) for name, values in rows.items()}))
        return model

    def datasets(self, prepared: Prepared, config: RunConfig, *, initial_epoch: int = 0) -> FitData:
        spec = prepared.inputs.feature_spec
        if isinstance(prepared.data, StreamedSplits):
            return self._streamed_datasets(prepared, config, initial_epoch=initial_epoch)
        rows = prepared.data.train
        columns = model_columns(rows, spec)

        def train_fn() -> tf.data.Dataset:
            return dataset_from_columns(
                columns,
                batch_size=config.batch_size,
                shuffle=True,
                seed=config.seed,
                repeat=True,
                first_epoch=initial_epoch,
            )

        validation = make_dataset(prepared.data.validation, spec, batch_size=max(config.batch_size, EVAL_BATCH_SIZE))
        return FitData.epochs_of(train_fn, num_rows=len(rows), batch_size=config.batch_size, validation=validation)

    def _streamed_datasets(self, prepared: Prepared, config: RunConfig, *, initial_epoch: int) -> FitData:
        """Epochs streamed from the files (each a function of the seed and the epoch: a
        resumed run sees the same batches); under a multi-replica or multi-worker strategy
        each worker reads its own files; rows skipped by `on_bad_row=skip` reported after
        each epoch."""
        data, spec = prepared.data, prepared.inputs.feature_spec
        steps = math.ceil(prepared.inputs.rows["train"] / config.batch_size)

        def epoch(number: int) -> tf.data.Dataset:
            return data.dataset(
                "train", spec, batch_size=config.batch_size, shuffle=True, seed=config.seed, epoch=number
            ).take(steps)

        def epochs(make_epoch) -> tf.data.Dataset:
            numbers = range(initial_epoch, max(config.epochs, initial_epoch + 1))
            return functools.reduce(tf.data.Dataset.concatenate, [make_epoch(number) for number in numbers])

        def sharded_steps(pipelines: int, pipeline_batch: int) -> int:
            # Every pipeline reads all of its files each epoch: the epoch lasts as many
            # batches as the pipeline with the most rows needs.
            rows = data.shard_rows(prepared.inputs.train_file_rows, pipelines)
            return max(math.ceil(r / pipeline_batch) for r in rows)

        def log_shards(shard: tuple[int, int]) -> None:
            files = data.files("train")[shard[0] :: shard[1]]
            logging.getLogger("tfzoo.training").info(
                "input pipeline %d of %d reads %d training file(s), %d rows: %s",
                *shard,
                len(files),
                data.shard_rows(prepared.inputs.train_file_rows, shard[1])[shard[0]],
                ", ".join(files),
            )

        def replica_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
            # Each input pipeline (worker) reads its own files (every n-th: `shard`) in
            # per-replica batches; a worker whose files hold fewer rows than the largest
            # share goes round them again to fill the epoch's batches. A parameter-server
            # worker's index is a tensor (only preprocessed rows, read by TensorFlow ops, can
            # be sharded by it): the coordinator logs every worker's share.
            per_replica = context.get_per_replica_batch_size(config.batch_size)
            replicas = max(1, context.num_replicas_in_sync // context.num_input_pipelines)
            shard = (context.input_pipeline_id, context.num_input_pipelines)
            for index in range(shard[1]) if isinstance(shard[0], tf.Tensor) else [shard[0]]:
                log_shards((index, shard[1]))
            batches = sharded_steps(shard[1], per_replica * replicas) * replicas
            return epochs(
                lambda number: data.dataset(
                    "train",
                    spec,
                    batch_size=per_replica,
                    shuffle=True,
                    seed=config.seed,
                    epoch=number,
                    shard=shard,
                    repeat=True,
                ).take(batches)
            )

        validation = data.dataset("validation", spec, batch_size=max(config.batch_size, EVAL_BATCH_SIZE))
        return FitData(
            train=epochs(epoch),
            steps_per_epoch=steps,
            validation=validation,
            replica_fn=replica_fn,
            sharded_steps_per_epoch=sharded_steps,
            callbacks=[ReportBadRows(data.bad_rows)],
        )

    def _streamed_predictions(self, prepared: Prepared, split: str) -> tuple[dict, dict, dict]:
        """(labels, predictions, label_masks) of `split`, streamed in file order."""
        call = prepared.cache.get("predict_function")
        if call is None:  # one function per prepared run; the last batch of a split is smaller
            model = prepared.model
            call = prepared.cache["predict_function"] = tf.function(
                lambda features: model(features, training=False), reduce_retracing=True
            )
        parts = {"labels": collections.defaultdict(list), "masks": collections.defaultdict(list)}
        predictions = collections.defaultdict(list)
        dataset = prepared.data.dataset(split, prepared.inputs.feature_spec, batch_size=EVAL_BATCH_SIZE)
        for features, labels, masks in dataset:
            for task, scores in call(features).items():
                predictions[task].append(np.asarray(scores, np.float32).reshape(-1))
            for task in labels:
                parts["labels"][task].append(labels[task].numpy())
                parts["masks"][task].append(masks[task].numpy())
        joined = lambda columns: {k: np.concatenate(v) for k, v in columns.items()}  # noqa: E731
        return joined(parts["labels"]), joined(predictions), joined(parts["masks"])

    def predictions(self, prepared: Prepared, split: str) -> dict[str, np.ndarray]:
        """{task: probability [rows]} of the prepared model on `split`, in row order."""
        if isinstance(prepared.data, StreamedSplits):
            return self._streamed_predictions(prepared, split)[1]
        rows = getattr(prepared.data, split)
        predictions = prepared.model.predict(
            make_dataset(rows, prepared.inputs.feature_spec, batch_size=EVAL_BATCH_SIZE, with_labels=False), verbose=0
        )
        return {t: np.asarray(p) for t, p in predictions.items()}

    def feature_batch(self, prepared: Prepared, split: str, *, rows: int) -> dict[str, tf.Tensor]:
        spec = prepared.inputs.feature_spec
        if isinstance(prepared.data, StreamedSplits):
            features, _, _ = next(iter(prepared.data.dataset(split, spec, batch_size=rows)))
            return features
        return next(iter(make_dataset(getattr(prepared.data, split), spec, batch_size=rows, with_labels=False)))

    def report(self, prepared: Prepared, split: str) -> dict:
        if isinstance(prepared.data, StreamedSplits):
            labels, predictions, masks = self._streamed_predictions(prepared, split)
            return task_metrics(labels, {t: predictions[t] for t in labels}, masks)
        rows = getattr(prepared.data, split)
        return task_metrics(rows.labels, self.predictions(prepared, split), rows.label_masks)

    def baseline_predictions(self, prepared: Prepared, split: str) -> dict[str, dict[str, np.ndarray]]:
        """{baseline: {task: score [rows]}} of logistic regression and gradient-boosted
        trees on `split`, in row order, fitted on the run's training rows as the model's
        preprocessing gives them; once per process for the same rows, spec and tasks
        (several models trained on one dataset in one process, as the demo and a grid do,
        share one fit)."""
        spec = prepared.inputs.feature_spec
        streamed = isinstance(prepared.data, StreamedSplits)
        fitted = prepared.cache.get("tabular_baselines")
        if fitted is None:
            data = prepared.data
            if streamed:  # the first MAX_BASELINE_ROWS rows of each split, in file order
                train, validation = (
                    _streamed_columns(data, spec, s, limit=MAX_BASELINE_ROWS) for s in ("train", "validation")
                )
            else:
                train, validation = model_columns(data.train, spec), model_columns(data.validation, spec)
            key = _fingerprint(spec, prepared.model.tasks, train, validation)
            fitted = _FITTED_BASELINES.pop(key, None) or TabularBaselines(spec, train, validation, prepared.model.tasks)
            _FITTED_BASELINES[key] = fitted  # the most recent last
            while len(_FITTED_BASELINES) > _KEPT_BASELINES:
                _FITTED_BASELINES.pop(next(iter(_FITTED_BASELINES)))
            prepared.cache["tabular_baselines"] = fitted
        if streamed:  # every row of the split, batch by batch, in the model's row order
            parts = [
                fitted.predictions(tf.nest.map_structure(np.asarray, features))
                for features, _, _ in prepared.data.dataset(split, spec, batch_size=EVAL_BATCH_SIZE)
            ]
            return {
                name: {task: np.concatenate([p[name][task] for p in parts]) for task in parts[0][name]}
                for name in parts[0]
            }
        rows = getattr(prepared.data, split)
        return fitted.predictions(model_columns(rows, spec, with_labels=False)["features"])

    def baselines(self, prepared: Prepared, split: str) -> dict[str, dict]:
        if isinstance(prepared.data, StreamedSplits):
            labels, _, masks = self._streamed_predictions(prepared, split)
        else:
            rows = getattr(prepared.data, split)
            labels, masks = rows.labels, rows.label_masks
        predictions = self.baseline_predictions(prepared, split)
        return {name: task_metrics(labels, scores, masks) for name, scores in predictions.items()}

    def export(self, run, export_base: str | Path, name: str, *, version: int | None = None, **options) -> Path:
        self.check_export_options(options)
        return export_saved_model(run.model, run.inputs.feature_spec, export_base, name, version=version)
