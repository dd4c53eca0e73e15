"""Training runs: a directory holding a model's config, checkpoints, logs and metrics.

```
RUN/config.json     what was trained: RunConfig, the fitted feature spec, the split
RUN/checkpoints/    model + optimizer after every epoch (tf.train.CheckpointManager)
RUN/logs/           TensorBoard event files
RUN/metrics.json    per-epoch history, and exact AUC / AP per task on validation and test
```
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from tfzoo.data.features import DatasetSpec
from tfzoo.data.pipeline import make_dataset
from tfzoo.data.registry import DatasetSplits, load_dataset
from tfzoo.data.tabular import TabularData
from tfzoo.evaluation.metrics import task_metrics
from tfzoo.models.registry import build_model
from tfzoo.training.callbacks import EpochCheckpoint, StopOnNaN, TrainingDivergedError

logger = logging.getLogger("tfzoo.training")

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"


@dataclasses.dataclass
class RunConfig:
    """Everything needed to rebuild a run's data and model.

    Attributes:
      model: a name of `tfzoo.models.registry.MODELS`.
      dataset: a name of `tfzoo.data.registry.DATASETS`.
      data_path: where the dataset's files are, for datasets that are not bundled.
      tasks: the labels to train on (default: the dataset's).
      epochs, batch_size, learning_rate: optimisation (Adam).
      seed: seeds weights initialisation and shuffling.
      split_seed: seeds the train / validation / test split (kept fixed across seeds so
        that runs with different `seed` are comparable).
      model_options: constructor arguments of the model (hyper-parameters).
    """

    model: str
    dataset: str
    data_path: str | None = None
    tasks: list[str] | None = None
    epochs: int = 5
    batch_size: int = 512
    learning_rate: float = 1e-3
    seed: int = 0
    split_seed: int = 0
    model_options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1. Received: {name}={getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"`learning_rate` must be > 0. Received: learning_rate={self.learning_rate}")


@dataclasses.dataclass
class Run:
    """A run directory with its config, data and (restored) model."""

    directory: Path
    config: RunConfig
    spec: DatasetSpec
    data: DatasetSplits
    model: tf.keras.Model
    checkpoint: EpochCheckpoint


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} not found: is {path.parent} a tfzoo run directory?") from None


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=_json_default) + "\n")
    tmp.replace(path)


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"not JSON serialisable: {value!r}")


def _open(directory: Path, config: RunConfig, spec: DatasetSpec | None) -> Run:
    tf.keras.utils.set_random_seed(config.seed)
    data = load_dataset(config.dataset, path=config.data_path, tasks=config.tasks, split_seed=config.split_seed)
    spec = spec or data.train.spec.fit(data.train.features)
    model = build_model(config.model, spec, tasks=config.tasks, options=config.model_options)
    model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
    # Build the variables now so that a checkpoint restores into them at once.
    sample = make_dataset(data.train.take(np.arange(min(2, len(data.train)))), spec, batch_size=2)
    model(next(iter(sample))[0])
    checkpoint = EpochCheckpoint(directory / "checkpoints")
    return Run(directory, config, spec, data, model, checkpoint)


def load_run(directory: str | Path) -> Run:
    """Opens an existing run and restores its latest checkpoint."""
    directory = Path(directory)
    stored = _read_json(directory / CONFIG_FILE)
    run = _open(directory, RunConfig(**stored["run"]), DatasetSpec.from_config(stored["feature_spec"]))
    if run.checkpoint.restore(run.model) == 0:
        raise FileNotFoundError(f"{directory / 'checkpoints'} holds no checkpoint: the run never finished an epoch.")
    return run


def _exact_metrics(model: tf.keras.Model, data: TabularData, spec: DatasetSpec, batch_size: int) -> dict:
    predictions = model.predict(make_dataset(data, spec, batch_size=batch_size, with_labels=False), verbose=0)
    return task_metrics(data.labels, {t: np.asarray(p) for t, p in predictions.items()}, data.label_masks)


def train(config: RunConfig, directory: str | Path, *, resume: bool = False, verbose: int | str = "auto") -> dict:
    """Trains `config` into `directory`; returns (and writes) the run's metrics.

    With `resume`, continues an existing run from its last checkpoint up to
    `config.epochs` epochs; the stored config (data, model) is used, only `epochs`
    may grow. Raises `TrainingDivergedError` if the loss becomes NaN or infinite.
    """
    directory = Path(directory)
    config_path = directory / CONFIG_FILE
    if resume:
        stored = _read_json(config_path)
        stored_config = RunConfig(**stored["run"])
        config = dataclasses.replace(stored_config, epochs=max(config.epochs, stored_config.epochs))
        run = _open(directory, config, DatasetSpec.from_config(stored["feature_spec"]))
        initial_epoch = run.checkpoint.restore(run.model)
        logger.info("resuming %s from epoch %d", directory, initial_epoch)
    else:
        if config_path.exists():
            raise FileExistsError(f"{directory} already holds a run; pass --resume to continue it, or choose another --out.")
        directory.mkdir(parents=True, exist_ok=True)
        run = _open(directory, config, None)
        initial_epoch = 0
    _write_json(config_path, {"run": dataclasses.asdict(config), "feature_spec": run.spec.to_config(),
                              "split": run.data.split})

    train_ds = make_dataset(run.data.train, run.spec, batch_size=config.batch_size, shuffle=True, seed=config.seed)
    validation_ds = make_dataset(run.data.validation, run.spec, batch_size=max(config.batch_size, 4096))
    stop_on_nan = StopOnNaN()
    callbacks = [
        stop_on_nan,
        run.checkpoint,
        tf.keras.callbacks.TensorBoard(str(directory / "logs"), write_graph=False, profile_batch=0),
    ]
    started = time.perf_counter()
    history = run.model.fit(
        train_ds, validation_data=validation_ds, epochs=config.epochs, initial_epoch=initial_epoch,
        callbacks=callbacks, verbose=verbose,
    )
    seconds = time.perf_counter() - started
    if stop_on_nan.message:
        raise TrainingDivergedError(f"{directory}: {stop_on_nan.message}")

    previous = _read_json(directory / METRICS_FILE).get("history", {}) if resume and (directory / METRICS_FILE).exists() else {}
    merged = {k: list(previous.get(k, []))[:initial_epoch] + [float(v) for v in values] for k, values in history.history.items()}
    metrics = {
        "history": merged,
        "epochs": config.epochs,
        "train_seconds": seconds,
        "split": run.data.split,
        "validation": _exact_metrics(run.model, run.data.validation, run.spec, 4096),
        "test": _exact_metrics(run.model, run.data.test, run.spec, 4096),
    }
    _write_json(directory / METRICS_FILE, metrics)
    return metrics


def evaluate(directory: str | Path, *, split: str = "test") -> dict:
    """Exact AUC / AP per task of a run's latest checkpoint on `split`."""
    if split not in ("train", "validation", "test"):
        raise ValueError(f"`split` must be train, validation or test. Received: split={split!r}")
    run = load_run(directory)
    data = getattr(run.data, split)
    report = _exact_metrics(run.model, data, run.spec, 4096)
    keras_metrics = run.model.evaluate(make_dataset(data, run.spec, batch_size=4096), verbose=0, return_dict=True)
    return {"split": split, "rows": len(data), "tasks": report, "keras": {k: float(v) for k, v in keras_metrics.items()}}

