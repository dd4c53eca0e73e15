"""Training runs: a directory holding a model's config, checkpoints, logs and metrics.

```
RUN/config.json     what was trained: RunConfig, the model inputs (fitted spec), the split
RUN/checkpoints/    model + optimizer after every epoch (tf.train.CheckpointManager)
RUN/best/           the model of the epoch with the best validation score (early stopping):
                    what `evaluate` and `export` use
RUN/backup/         mid-training state while `fit` runs (BackupAndRestore), for recovery
RUN/logs/           TensorBoard event files
RUN/history.json    per-epoch training and validation logs, written after every epoch
RUN/metrics.json    per-epoch history, and exact metrics on validation and test (with
                    `fused`, those of the model's score fused with a baseline's, as
                    the export serves it: `ModelTask.fused_reports`)
RUN/...             what the model kind keeps for its export (`ModelTask.save_artifacts`:
                    a friend-retrieval run's `graph.npz`, a SUPER-MoE run's `items.npz`)
```

Under a multi-process strategy every process runs `train` with the same arguments; only
the chief writes the run directory (`tfzoo.training.distribute`).

What depends on the kind of model (data, inputs, metrics, artifacts such as a retrieval
run's graph) comes from its `tfzoo.training.task.ModelTask`; everything here is shared by
all of them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from tfzoo import progress
from tfzoo.models.base import dtype_policy
from tfzoo.training import distribute
from tfzoo.training.callbacks import (
    BestEpoch,
    EpochCheckpoint,
    HistoryFile,
    StopOnNaN,
    StopOnNaNPerEpoch,
    TrainingDivergedError,
    restore_best,
)
from tfzoo.training.config import RunConfig
from tfzoo.training.registry import task_for
from tfzoo.training.run_report import write_report
from tfzoo.training.task import Prepared, TaskInputs

logger = logging.getLogger("tfzoo.training")

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
BACKUP_DIR = "backup"
BEST_DIR = "best"
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
    def inputs(self) -> TaskInputs:
        """The model's `TaskInputs` record (for rankers: the fitted feature spec)."""
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


def _open(
    directory: Path,
    config: RunConfig,
    inputs: TaskInputs | None,
    *,
    save_directory: Path | None = None,
    split: str | None = None,
) -> Run:
    """The run's model with its data (`ModelTask.prepare`), or without (`split` given: the
    stored split's description; `ModelTask.build` reads no dataset)."""
    tf.keras.utils.set_random_seed(config.seed)
    task = task_for(config.model)
    with dtype_policy(config.precision):  # the model is built under the run's precision
        if split is None:
            source = (config.data_config or {}).get("source") or config.dataset
            with progress.step(f"reading {source} and building {config.model}"):
                prepared = task.prepare(config, inputs)
        else:
            prepared = Prepared(model=task.build(config, inputs, directory), inputs=inputs, data=None, split=split)
    checkpoint = EpochCheckpoint(directory / "checkpoints", save_directory=save_directory)
    return Run(directory, config, prepared, checkpoint)


def _backup_position(backup_dir: Path) -> tuple[int, int] | None:
    """(epoch, last finished batch) of an interrupted `fit`'s backup, or None without one.

    BackupAndRestore puts the model back to that point itself; the data must follow, so
    the run restarts its (epoch-keyed, deterministic) training stream just after it.
    """
    latest = tf.train.latest_checkpoint(str(backup_dir / "chief"))
    if latest is None:
        return None
    reader = tf.train.load_checkpoint(latest)
    epoch = int(reader.get_tensor("ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE"))
    batch = int(reader.get_tensor("ckpt_saved_batch/.ATTRIBUTES/VARIABLE_VALUE"))
    return (epoch, batch) if batch >= 0 else (epoch + 1, -1)


def _stored_inputs(stored: dict, config: RunConfig) -> TaskInputs:
    return task_for(config.model).inputs_type.from_config(stored["inputs"])


def load_run(directory: str | Path, *, with_data: bool = True) -> Run:
    """Opens an existing run and restores its best epoch (early stopping), or its latest
    checkpoint when it kept none. `with_data=False` builds the model from the run alone
    (its config, inputs and artifacts; no dataset is read): what exporting needs."""
    directory = Path(directory)
    stored = _read_json(directory / CONFIG_FILE)
    config = RunConfig(**stored["run"])
    split = None if with_data else stored.get("split", "")
    run = _open(directory, config, _stored_inputs(stored, config), split=split)
    if run.checkpoint.restore(run.model) == 0:
        raise FileNotFoundError(f"{directory / 'checkpoints'} holds no checkpoint: the run never finished an epoch.")
    restore_best(run.model, directory / BEST_DIR)
    return run


def train(
    config: RunConfig,
    directory: str | Path,
    *,
    resume: bool = False,
    verbose: int | str = "auto",
    strategy: str = "default",
    backup_every: int | None = None,
    min_shard_bytes: int = distribute.MIN_SHARD_BYTES,
    report: bool = False,
) -> dict:
    """Trains `config` into `directory`; returns (and writes) the run's metrics; with
    `report`, writes the run's report too (`tfzoo.training.run_report`: figures and
    `report.md` under `directory/report/`).

    With `resume`, continues an existing run from its last checkpoint up to
    `config.epochs` epochs; the stored config (data, model) is used, only `epochs`
    may grow. Raises `TrainingDivergedError` if the loss becomes NaN or infinite.

    `strategy` is one of `tfzoo.training.distribute.STRATEGIES`; under a multi-process
    strategy every process calls `train` alike, the `worker`/`ps` tasks of a
    `parameter_server` cluster serve steps until killed, and only the chief writes the run
    and returns its metrics (the others return `{}`). The training state is backed up
    every `backup_every` steps (default: every epoch) while `fit` runs: a process killed
    mid-training and started again with the same arguments continues from the last backup.
    Under `parameter_server`, variables of `min_shard_bytes` or more are split across the
    parameter servers; `config.json` records where every variable lives.
    """
    if (
        strategy == "parameter_server"
        and config.data_config is not None
        and config.data_config.get("kind") != "friend_graph"
        and not config.data_config.get("preprocessed")
    ):
        raise ValueError(
            "The files of a data config are read by Python readers, which parameter-server workers (TensorFlow "
            "ops only) cannot run; rows converted by `tfzoo data convert --preprocess` are read by TensorFlow ops "
            "and train under it. Received: strategy='parameter_server'. Accepted: default, mirrored, multi_worker"
        )
    if distribute.is_server_task(strategy):
        distribute.serve_cluster_task()  # returns only when the process is killed
        return {}
    tf_strategy = distribute.make_strategy(strategy, min_shard_bytes=min_shard_bytes)
    chief = distribute.task_info().is_chief
    directory = Path(directory)
    config_path = directory / CONFIG_FILE
    backup_dir = directory / BACKUP_DIR
    recovering = _backup_position(backup_dir)
    if recovering is not None:
        logger.info(
            "recovering %s from its backup at epoch %d, batch %d", directory, recovering[0] + 1, recovering[1] + 1
        )
    with contextlib.ExitStack() as cleanup:
        scratch = None if chief else Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="tfzoo-worker-")))
        with tf_strategy.scope():
            if resume or recovering is not None:
                stored = _read_json(config_path)
                stored_config = RunConfig(**stored["run"])
                config = dataclasses.replace(stored_config, epochs=max(config.epochs, stored_config.epochs))
                run = _open(
                    directory,
                    config,
                    _stored_inputs(stored, stored_config),
                    save_directory=scratch and scratch / "checkpoints",
                )
                initial_epoch = run.checkpoint.restore(run.model)
                logger.info("resuming %s from epoch %d", directory, initial_epoch)
            else:
                if chief and config_path.exists():
                    raise FileExistsError(
                        f"{directory} already holds a run; pass --resume to continue it, or choose another --out."
                    )
                directory.mkdir(parents=True, exist_ok=True)
                run = _open(directory, config, None, save_directory=scratch and scratch / "checkpoints")
                initial_epoch = 0
        if chief:
            if not (resume or recovering is not None):  # a new run
                task_for(config.model).save_artifacts(run.prepared, directory)
            _write_json(
                config_path,
                {
                    "run": dataclasses.asdict(config),
                    "inputs": run.inputs.to_config(),
                    "split": run.prepared.split,
                    "distribute": {
                        "strategy": strategy,
                        "replicas": tf_strategy.num_replicas_in_sync,
                        **(
                            {"placement": distribute.variable_placement(run.model)}
                            if isinstance(tf_strategy, tf.distribute.ParameterServerStrategy)
                            else {}
                        ),
                    },
                },
            )
        history = _fit(run, tf_strategy, directory, scratch, initial_epoch, recovering, backup_every, verbose)
        if not chief:
            return {}

    task = task_for(config.model)
    metrics_path = directory / METRICS_FILE
    # The report runs on one device: a model restored from the final checkpoint outside the
    # strategy (its batches, e.g. merged subgraphs, need not split across replicas).
    reported = load_run(directory) if distribute.feeds_replicas_separately(tf_strategy) else run
    with progress.step("scoring the restored best epoch on validation and test"):
        validation, test = task.report(reported.prepared, "validation"), task.report(reported.prepared, "test")
    with progress.step("fitting and scoring the simple baselines on the same rows"):
        baselines = task.baselines(reported.prepared, "test")
    metrics = {
        "history": history["history"],
        "epochs": config.epochs,
        "epochs_trained": len(next(iter(history["history"].values()), [])),
        "best_epoch": history["best_epoch"],
        "validation_metric": task.validation_metric if config.patience else None,
        "train_seconds": history["seconds"],
        "steps_per_epoch": history["steps_per_epoch"],
        "split": run.prepared.split,
        "validation": validation,
        "test": test,
        "baselines": {"test": baselines},
    }
    with progress.step("choosing the served fusion with a baseline on validation"):
        fused = task.fused_reports(reported.prepared)
    if fused is not None:
        metrics["fused"] = fused  # what the export serves: the model fused with a baseline
    _write_json(metrics_path, metrics)
    if report:
        with progress.step(f"writing the run's report to {directory / 'report'}"):
            write_report(directory, run=reported)
    return metrics


def _fit(
    run: Run,
    tf_strategy,
    directory: Path,
    scratch: Path | None,
    initial_epoch: int,
    recovering: tuple[int, int] | None,
    backup_every: int | None,
    verbose,
) -> dict:
    config = run.config
    task = task_for(config.model)
    first_epoch, skip = (recovering[0], recovering[1] + 1) if recovering is not None else (initial_epoch, 0)
    fit_data = task.datasets(run.prepared, config, initial_epoch=first_epoch)
    validation = fit_data.validation and distribute.shard_by_data(fit_data.validation)
    parameter_server = isinstance(tf_strategy, tf.distribute.ParameterServerStrategy)
    steps_per_epoch = fit_data.steps_per_epoch
    if fit_data.replica_fn is not None and distribute.feeds_replicas_separately(tf_strategy):
        if fit_data.sharded_steps_per_epoch is not None:
            pipelines = distribute.input_pipelines(tf_strategy)
            if parameter_server:
                # Each worker reads its share in whole batches, and the coordinator sends an
                # epoch's steps to whichever worker is free: an epoch is every worker's batches.
                steps_per_epoch = pipelines * fit_data.sharded_steps_per_epoch(pipelines, config.batch_size)
            else:  # synchronous: a step takes a batch from every pipeline
                steps_per_epoch = fit_data.sharded_steps_per_epoch(pipelines, config.batch_size // pipelines)
        train_data = distribute.per_replica_input(tf_strategy, fit_data.replica_fn, skip_steps=skip)
        # Validation batches cannot be split across replicas either: the run's exact
        # validation metrics come from `report` after training.
        validation = None
    elif parameter_server:
        if fit_data.train_fn is None:
            raise ValueError(
                f"{type(task).__name__} gives no `train_fn`: its models cannot train under parameter_server."
            )
        train_data = distribute.fit_input(tf_strategy, lambda: fit_data.train_fn().skip(skip))
    else:
        train_data = distribute.fit_input(tf_strategy, lambda: fit_data.train.skip(skip))
    stop_on_nan = StopOnNaN()
    if parameter_server:
        # The run's exact validation metrics come from `report` after training; per-batch
        # hooks and progress bars would make the coordinator wait for every step.
        validation = None
        stop_on_nan = StopOnNaNPerEpoch()
        verbose = 2 if verbose in (1, "auto") else verbose
    history_file = HistoryFile((scratch or directory) / HISTORY_FILE, first_epoch=first_epoch)
    best_epoch = None
    if config.patience:
        # Before HistoryFile: the validation score it adds to the logs is recorded with the epoch.
        best_epoch = BestEpoch(
            lambda: task.validation_score(run.prepared),
            name=task.validation_metric,
            patience=config.patience,
            directory=directory / BEST_DIR,
            save_directory=scratch and scratch / BEST_DIR,
            previous_scores=history_file.history.get(task.validation_metric, [])[:first_epoch],
        )
    callbacks = [
        *fit_data.callbacks,
        stop_on_nan,
        *([best_epoch] if best_epoch else []),
        history_file,
        tf.keras.callbacks.BackupAndRestore(str(directory / BACKUP_DIR), save_freq=backup_every or "epoch"),
        run.checkpoint,
        tf.keras.callbacks.TensorBoard(str((scratch or directory) / "logs"), write_graph=False, profile_batch=0),
    ]
    started = time.perf_counter()
    run.model.fit(
        train_data,
        steps_per_epoch=steps_per_epoch,
        validation_data=validation,
        epochs=config.epochs,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        verbose=verbose,
    )
    seconds = time.perf_counter() - started
    if stop_on_nan.message:
        raise TrainingDivergedError(f"{directory}: {stop_on_nan.message}")
    return {
        "history": history_file.history,
        "seconds": seconds,
        "steps_per_epoch": steps_per_epoch,
        "best_epoch": None if best_epoch is None or best_epoch.best_epoch is None else best_epoch.best_epoch + 1,
    }


def evaluate(directory: str | Path, *, split: str = "test") -> dict:
    """Exact metrics of a run's latest checkpoint on `split`."""
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
    run = load_run(directory)
    task = task_for(run.config.model)
    report = {
        "model": run.config.model,
        "split": split,
        "split_description": run.prepared.split,
        "tasks": task.report(run.prepared, split),
        "baselines": task.baselines(run.prepared, split),
    }
    fused = task.fused_reports(run.prepared) if split in ("validation", "test") else None
    if fused is not None:
        report["fused"] = {key: value for key, value in fused.items() if key not in ("validation", "test")}
        report["fused"]["report"] = fused[split]
    return report
