"""Multi-task rankers (`tfzoo.models.MultiTaskModel`) over tabular datasets."""

from __future__ import annotations

import dataclasses
import hashlib
import json
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
from tfzoo.evaluation.metrics import task_metrics
from tfzoo.evaluation.tabular import TabularBaselines
from tfzoo.export.saved_model import export_saved_model
from tfzoo.export.warmup import example_rows
from tfzoo.training.config import RunConfig, make_optimizer
from tfzoo.training.task import EVAL_BATCH_SIZE, FitData, ModelTask, Prepared, TaskInputs, constructor_options


@dataclasses.dataclass(frozen=True)
class RankingInputs(TaskInputs):
    """The feature spec fitted on the run's training rows (`DatasetSpec.to_config()`)."""

    spec: Mapping[str, Any]

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


class RankingTask(ModelTask):
    """A ranker: `model_class(feature_spec=..., tasks=..., **options)` over the rows of a
    tabular dataset, exported behind its preprocessing (raw features in). The baselines
    are logistic regression and gradient-boosted trees per task on the same rows
    (`tfzoo.evaluation.tabular`)."""

    inputs_type = RankingInputs
    # Every dataset of tabular rows; behaviour sequences are read as their flat features.
    accepted_datasets = tuple(name for name in DATASETS if name not in FRIEND_GRAPH_DATASETS)

    def model_options(self) -> tuple[str, ...]:
        return constructor_options(self.model_class, set_by_task=("feature_spec", "tasks"))

    def prepare(self, config: RunConfig, inputs: RankingInputs | None) -> Prepared:
        data = self.load_data(config)
        if inputs is None:
            inputs = RankingInputs(spec=data.train.spec.fit(data.train.features).to_config())
        model = self._model(config, inputs, steps_per_epoch=math.ceil(len(data.train) / config.batch_size))
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

    def predictions(self, prepared: Prepared, split: str) -> dict[str, np.ndarray]:
        """{task: probability [rows]} of the prepared model on `split`, in row order."""
        rows = getattr(prepared.data, split)
        predictions = prepared.model.predict(
            make_dataset(rows, prepared.inputs.feature_spec, batch_size=EVAL_BATCH_SIZE, with_labels=False), verbose=0
        )
        return {t: np.asarray(p) for t, p in predictions.items()}

    def report(self, prepared: Prepared, split: str) -> dict:
        rows = getattr(prepared.data, split)
        return task_metrics(rows.labels, self.predictions(prepared, split), rows.label_masks)

    def baseline_predictions(self, prepared: Prepared, split: str) -> dict[str, dict[str, np.ndarray]]:
        """{baseline: {task: score [rows]}} of logistic regression and gradient-boosted
        trees on `split`, in row order, fitted on the run's training rows as the model's
        preprocessing gives them; once per process for the same rows, spec and tasks
        (several models trained on one dataset in one process, as the demo and a grid do,
        share one fit)."""
        spec = prepared.inputs.feature_spec
        fitted = prepared.cache.get("tabular_baselines")
        if fitted is None:
            data = prepared.data
            train, validation = model_columns(data.train, spec), model_columns(data.validation, spec)
            key = _fingerprint(spec, prepared.model.tasks, train, validation)
            fitted = _FITTED_BASELINES.pop(key, None) or TabularBaselines(spec, train, validation, prepared.model.tasks)
            _FITTED_BASELINES[key] = fitted  # the most recent last
            while len(_FITTED_BASELINES) > _KEPT_BASELINES:
                _FITTED_BASELINES.pop(next(iter(_FITTED_BASELINES)))
            prepared.cache["tabular_baselines"] = fitted
        rows = getattr(prepared.data, split)
        return fitted.predictions(model_columns(rows, spec, with_labels=False)["features"])

    def baselines(self, prepared: Prepared, split: str) -> dict[str, dict]:
        rows = getattr(prepared.data, split)
        predictions = self.baseline_predictions(prepared, split)
        return {name: task_metrics(rows.labels, scores, rows.label_masks) for name, scores in predictions.items()}

    def export(self, run, export_base: str | Path, name: str, *, version: int | None = None, **options) -> Path:
        self.check_export_options(options)
        return export_saved_model(run.model, run.inputs.feature_spec, export_base, name, version=version)
