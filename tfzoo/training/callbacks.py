"""Keras callbacks of a training run."""

from __future__ import annotations

import concurrent.futures
import json
import math
import time
from pathlib import Path

import tensorflow as tf


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; training was stopped."""


class ReportBadRows(tf.keras.callbacks.Callback):
    """After each epoch, the rows that `on_bad_row="skip"` left out of it, per file (read
    from `BadRowCounts`), logged and printed: nothing is dropped silently."""

    def __init__(self, bad_rows):
        super().__init__()
        self.bad_rows = bad_rows
        self.skipped: list[dict[str, int]] = []  # per epoch

    def on_epoch_end(self, epoch, logs=None):
        counts = self.bad_rows.take()
        self.skipped.append(counts)
        if counts:
            files = ", ".join(f"{path}: {count}" for path, count in sorted(counts.items()))
            print(f"epoch {epoch + 1}: skipped {sum(counts.values())} bad row(s) ({files})", flush=True)
            if logs is not None:
                logs["skipped_rows"] = float(sum(counts.values()))


class StopOnNaN(tf.keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite, and says where.

    Unlike Keras' `TerminateOnNaN`, it records the epoch, the batch and every logged
    value (which per-task loss went bad), so that `message` can tell the user what
    happened; the run raises `TrainingDivergedError` with it after `fit` returns.
    """

    def __init__(self):
        super().__init__()
        self.message: str | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, f"batch {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, "its end")

    def _check(self, logs, where: str) -> None:
        logs = logs or {}
        loss = logs.get("loss")
        if self.message is None and loss is not None and not math.isfinite(float(loss)):
            values = ", ".join(f"{k}={float(v):.4g}" for k, v in sorted(logs.items()) if k.endswith("loss"))
            self.message = (
                f"training stopped: the loss became {float(loss)} at epoch {self._epoch + 1}, {where} "
                f"({values}). Lower the learning rate, or look for extreme inputs."
            )
            self.model.stop_training = True


class StopOnNaNPerEpoch(StopOnNaN):
    """`StopOnNaN` checking at epoch ends only, for strategies that forbid batch hooks.

    (`ParameterServerStrategy` runs steps asynchronously on workers; a batch hook would
    make the coordinator wait for every step.)
    """

    on_train_batch_end = tf.keras.callbacks.Callback.on_train_batch_end


class EpochCheckpoint(tf.keras.callbacks.Callback):
    """Saves model, optimizer and the number of finished epochs after every epoch.

    `restore()` puts a run back to its last saved epoch, which `fit(initial_epoch=...)`
    continues from (`tfzoo train --resume`).
    """

    def __init__(self, directory: str | Path, *, max_to_keep: int = 3, save_directory: str | Path | None = None):
        super().__init__()
        self.directory = str(directory)
        self.max_to_keep = max_to_keep
        # Under multi-worker training every worker must save (saving is collective), but only
        # the chief's checkpoints count: the others save to a scratch `save_directory` and
        # restore from the chief's `directory`.
        self.save_directory = str(save_directory) if save_directory is not None else self.directory
        self.epochs_done = tf.Variable(0, dtype=tf.int64, trainable=False, name="epochs_done")
        self._manager: tf.train.CheckpointManager | None = None

    def manager_for(self, model: tf.keras.Model) -> tf.train.CheckpointManager:
        if self._manager is None:
            checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epochs_done=self.epochs_done)
            self._manager = tf.train.CheckpointManager(checkpoint, self.save_directory, max_to_keep=self.max_to_keep)
        return self._manager

    def restore(self, model: tf.keras.Model) -> int:
        """Restores the latest checkpoint into `model`; returns the epochs it had finished."""
        checkpoint = self.manager_for(model).checkpoint
        latest = tf.train.latest_checkpoint(self.directory)
        if latest is None:
            return 0
        checkpoint.restore(latest).expect_partial()
        return int(self.epochs_done.numpy())

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training and logs and not all(math.isfinite(float(v)) for v in logs.values()):
            return  # never overwrite a good checkpoint with diverged weights
        self.epochs_done.assign(epoch + 1)
        self.manager_for(self.model).save(checkpoint_number=epoch + 1)


class HistoryFile(tf.keras.callbacks.Callback):
    """Keeps a run's per-epoch logs in a JSON file, rewritten after every epoch.

    Besides Keras' logs it records `epoch_seconds`. The file survives interruptions, so a resumed or recovered run continues the history
    of the epochs it had finished (from `first_epoch` on, entries are replaced) instead of
    starting a new one.
    """

    def __init__(self, path: str | Path, *, first_epoch: int):
        super().__init__()
        self.path = Path(path)
        self.first_epoch = first_epoch
        previous = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.history: dict[str, list[float]] = {k: list(v)[:first_epoch] for k, v in previous.items()}

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        # Wall time of the epoch (training and validation): throughput without tracing
        # and start-up, which the first epoch alone pays.
        logs = {**(logs or {}), "epoch_seconds": time.perf_counter() - self._started}
        for key, value in logs.items():
            values = self.history.setdefault(key, [])
            del values[epoch:]
            values.append(float(value))
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.history, indent=1) + "\n")
        tmp.replace(self.path)


class BestEpoch(tf.keras.callbacks.Callback):
    """Early stopping on a validation score, with the best epoch's weights kept.

    After every epoch `score()` (higher is better) is computed and logged as `name`, so
    the history records it. An epoch that beats the best so far by more than `min_delta`
    is saved to `directory` (the model's weights only); after `patience` epochs without
    one, training stops (0: never). When training ends, the best epoch's weights are put
    back into the model, so that what the run reports and exports is its best epoch.

    A resumed run passes the scores of its earlier epochs (`previous_scores`), so that
    the best and the patience count carry on.
    """

    def __init__(
        self,
        score,
        *,
        name: str,
        patience: int,
        directory: str | Path,
        save_directory: str | Path | None = None,
        min_delta: float = 0.0,
        previous_scores: list[float] | None = None,
    ):
        super().__init__()
        if patience < 0:
            raise ValueError(f"`patience` must be >= 0. Received: patience={patience}")
        self.score = score
        self.name = name
        self.patience = patience
        self.directory = str(directory)
        self.save_directory = str(save_directory) if save_directory is not None else self.directory
        self.min_delta = min_delta
        self.best = -math.inf
        self.best_epoch: int | None = None
        self.wait = 0
        for epoch, value in enumerate(previous_scores or []):
            self._record(epoch, value)
        self._checkpoint: tf.train.Checkpoint | None = None

    def _record(self, epoch: int, value: float) -> bool:
        if math.isfinite(value) and value > self.best + self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            return True
        self.wait += 1
        return False

    def _manager(self) -> tf.train.CheckpointManager:
        if self._checkpoint is None:
            self._checkpoint = tf.train.Checkpoint(model=self.model)
        return tf.train.CheckpointManager(self._checkpoint, self.save_directory, max_to_keep=1)

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training:
            return  # e.g. a NaN stop: the weights are not worth scoring
        value = float(self._score_outside_fit())
        if logs is not None:
            logs[self.name] = value
        if self._record(epoch, value):
            self._manager().save(checkpoint_number=epoch + 1)
        elif self.patience and self.wait >= self.patience:
            self.model.stop_training = True

    def _score_outside_fit(self) -> float:
        coordinator = getattr(self.model, "_cluster_coordinator", None)
        if coordinator is None:
            return self.score()
        # Under parameter_server, `fit` runs inside the strategy's scope, and tf_keras'
        # `predict` there tries to spread its dataset over the workers (and clears the
        # coordinator `fit` still needs). Scopes are per thread: the score runs in a
        # thread of its own, on the coordinator, as it would after training.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            try:
                return pool.submit(self.score).result()
            finally:
                self.model._cluster_coordinator = coordinator

    def on_train_end(self, logs=None):
        if self.best_epoch is not None:
            restore_best(self.model, self.directory)


def restore_best(model: tf.keras.Model, directory: str | Path) -> int | None:
    """Puts the best epoch saved by `BestEpoch` in `directory` into `model`; returns that
    epoch's number (1-based), or None when the directory holds none."""
    latest = tf.train.latest_checkpoint(str(directory))
    if latest is None:
        return None
    tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    return int(latest.rsplit("-", 1)[1])
