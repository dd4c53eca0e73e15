"""Training runs: a directory holding a model's config, checkpoints, logs and metrics.

```
RUN/config.json     what was trained: RunConfig, the model inputs (fitted spec), the split
RUN/checkpoints/    model + optimizer after every epoch (tf.train.CheckpointManager)
RUN/logs/           TensorBoard event files
RUN/metrics.json    per-epoch history, and exact metrics on validation and test
```

What depends on the kind of model (data, inputs, metrics) comes from its
`tfzoo.training.families.ModelFamily`; everything here is shared by all of them.
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

from tfzoo.training.callbacks import EpochCheckpoint, StopOnNaN, TrainingDivergedError
from tfzoo.training.config import RunConfig
from tfzoo.training.families import Prepared, family_for

logger = logging.getLogger("tfzoo.training")

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class Run:
    """A run directory with its config, and its model and data ready to use."""

    directory: Path
    config: RunConfig
    prepared: Prepared
    checkpoint: EpochCheckpoint

    @property
    def model(self) -> tf.keras.Model:
        return self.prepared.model

    @property
    def inputs(self):
        """The model inputs description (for rankers: the fitted `DatasetSpec` config)."""
        return self.prepared.inputs


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} not found: is {path.parent} a tfzoo run directory?") from None


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=_json_default) + "\n")
    tmp.replace(path)


def _json_default(value: Any):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"not JSON serialisable: {value!r}")


def _open(directory: Path, config: RunConfig, inputs) -> Run:
    tf.keras.utils.set_random_seed(config.seed)
    prepared = family_for(config.model).prepare(config, inputs)
    return Run(directory, config, prepared, EpochCheckpoint(directory / "checkpoints"))


def load_run(directory: str | Path) -> Run:
    """Opens an existing run and restores its latest checkpoint."""
    directory = Path(directory)
    stored = _read_json(directory / CONFIG_FILE)
    run = _open(directory, RunConfig(**stored["run"]), stored["inputs"])
    if run.checkpoint.restore(run.model) == 0:
        raise FileNotFoundError(f"{directory / 'checkpoints'} holds no checkpoint: the run never finished an epoch.")
    return run


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
        run = _open(directory, config, stored["inputs"])
        initial_epoch = run.checkpoint.restore(run.model)
        logger.info("resuming %s from epoch %d", directory, initial_epoch)
    else:
        if config_path.exists():
            raise FileExistsError(f"{directory} already holds a run; pass --resume to continue it, or choose another --out.")
        directory.mkdir(parents=True, exist_ok=True)
        run = _open(directory, config, None)
        initial_epoch = 0
    _write_json(config_path, {"run": dataclasses.asdict(config), "inputs": run.inputs, "split": run.prepared.split})

    family = family_for(config.model)
    fit_data = family.datasets(run.prepared, config, initial_epoch=initial_epoch)
    stop_on_nan = StopOnNaN()
    callbacks = [
        stop_on_nan,
        run.checkpoint,
        tf.keras.callbacks.TensorBoard(str(directory / "logs"), write_graph=False, profile_batch=0),
    ]
    started = time.perf_counter()
    history = run.model.fit(
        fit_data.train, steps_per_epoch=fit_data.steps_per_epoch, validation_data=fit_data.validation,
        epochs=config.epochs, initial_epoch=initial_epoch, callbacks=callbacks, verbose=verbose,
    )
    seconds = time.perf_counter() - started
    if stop_on_nan.message:
        raise TrainingDivergedError(f"{directory}: {stop_on_nan.message}")

    metrics_path = directory / METRICS_FILE
    previous = _read_json(metrics_path).get("history", {}) if resume and metrics_path.exists() else {}
    merged = {k: list(previous.get(k, []))[:initial_epoch] + [float(v) for v in values] for k, values in history.history.items()}
    metrics = {
        "history": merged,
        "epochs": config.epochs,
        "train_seconds": seconds,
        "split": run.prepared.split,
        "validation": family.report(run.prepared, "validation"),
        "test": family.report(run.prepared, "test"),
    }
    _write_json(metrics_path, metrics)
    return metrics


def evaluate(directory: str | Path, *, split: str = "test") -> dict:
    """Exact metrics of a run's latest checkpoint on `split`."""
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
    run = load_run(directory)
    return {"model": run.config.model, "split": split, "split_description": run.prepared.split, "tasks": family_for(run.config.model).report(run.prepared, split)}
