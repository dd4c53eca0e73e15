"""What a training run needs to know about each kind of model.

A `ModelFamily` loads a run's data, builds its model, makes its `tf.data` inputs and
reports its metrics; `tfzoo.training.run` does the rest (run directory, checkpoints,
TensorBoard, NaN stop, resume) the same way for every family. A new kind of model (a
retrieval model over a graph, a pre-trained sequence model) adds a family and maps its
model names to it in `MODEL_FAMILIES`.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import Any, Mapping

import numpy as np
import tensorflow as tf

from tfzoo.data.features import DatasetSpec
from tfzoo.data.pipeline import make_dataset
from tfzoo.data.registry import load_dataset
from tfzoo.evaluation.metrics import task_metrics
from tfzoo.models.registry import MODELS, build_model
from tfzoo.training.config import RunConfig

EVAL_BATCH_SIZE = 4096


@dataclasses.dataclass
class Prepared:
    """A run's model and data, ready to train or evaluate.

    Attributes:
      model: the compiled model, its variables built (so a checkpoint restores at once).
      inputs: JSON-able description of the model inputs (e.g. the fitted feature spec
        config); stored in `config.json` and handed back on resume, so a resumed or
        exported run sees exactly the statistics it was trained with.
      data: the family's splits.
      split: how the rows were split, reported with every result.
    """

    model: tf.keras.Model
    inputs: Mapping[str, Any]
    data: Any
    split: str


@dataclasses.dataclass
class FitData:
    """What `model.fit` consumes.

    `train` repeats forever from the run's first epoch (epoch-keyed shuffling makes a
    resumed run see the same batches as an uninterrupted one); `steps_per_epoch` says
    where each epoch ends.
    """

    train: tf.data.Dataset
    steps_per_epoch: int
    validation: tf.data.Dataset | None = None


class ModelFamily(abc.ABC):
    """Base of the families: `prepare`, `datasets` and `report` are the contract."""

    @abc.abstractmethod
    def prepare(self, config: RunConfig, inputs: Mapping[str, Any] | None) -> Prepared:
        """Loads the data and builds the compiled model; `inputs` as stored by an earlier run."""

    @abc.abstractmethod
    def datasets(self, prepared: Prepared, config: RunConfig, *, initial_epoch: int = 0) -> FitData:
        """Training (from `initial_epoch` on) and validation data for `model.fit`."""

    @abc.abstractmethod
    def report(self, prepared: Prepared, split: str) -> dict:
        """Exact metrics of the prepared model on `split` ("train", "validation", "test")."""


class RankingFamily(ModelFamily):
    """Multi-task rankers (`tfzoo.models.MultiTaskModel`) over tabular datasets."""

    def prepare(self, config: RunConfig, inputs: Mapping[str, Any] | None) -> Prepared:
        data = load_dataset(config.dataset, path=config.data_path, tasks=config.tasks, split_seed=config.split_seed)
        spec = DatasetSpec.from_config(inputs) if inputs is not None else data.train.spec.fit(data.train.features)
        model = build_model(config.model, spec, tasks=config.tasks, options=config.model_options)
        model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
        sample = make_dataset(data.train.take(np.arange(min(2, len(data.train)))), spec, batch_size=2)
        model(next(iter(sample))[0])
        return Prepared(model=model, inputs=spec.to_config(), data=data, split=data.split)

    def datasets(self, prepared: Prepared, config: RunConfig, *, initial_epoch: int = 0) -> FitData:
        spec = DatasetSpec.from_config(prepared.inputs)
        rows = prepared.data.train
        train = make_dataset(rows, spec, batch_size=config.batch_size, shuffle=True, seed=config.seed,
                             repeat=True, first_epoch=initial_epoch)
        validation = make_dataset(prepared.data.validation, spec, batch_size=max(config.batch_size, EVAL_BATCH_SIZE))
        return FitData(train=train, steps_per_epoch=math.ceil(len(rows) / config.batch_size), validation=validation)

    def report(self, prepared: Prepared, split: str) -> dict:
        spec = DatasetSpec.from_config(prepared.inputs)
        rows = getattr(prepared.data, split)
        predictions = prepared.model.predict(make_dataset(rows, spec, batch_size=EVAL_BATCH_SIZE, with_labels=False), verbose=0)
        return task_metrics(rows.labels, {t: np.asarray(p) for t, p in predictions.items()}, rows.label_masks)


FAMILIES: dict[str, ModelFamily] = {"ranking": RankingFamily()}
MODEL_FAMILIES: dict[str, str] = {name: "ranking" for name in MODELS}


def family_for(model: str) -> ModelFamily:
    if model not in MODEL_FAMILIES:
        raise ValueError(f"Unknown model {model!r}; choose one of {sorted(MODEL_FAMILIES)}.")
    return FAMILIES[MODEL_FAMILIES[model]]
