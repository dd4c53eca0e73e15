"""Keras callbacks of a training run."""

from __future__ import annotations

import math
from pathlib import Path

import tensorflow as tf


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; training was stopped."""


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
        logs = logs or {}
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            values = ", ".join(f"{k}={float(v):.4g}" for k, v in sorted(logs.items()) if k.endswith("loss"))
            self.message = (
                f"training stopped: the loss became {float(loss)} at epoch {self._epoch + 1}, batch {batch + 1} "
                f"({values}). Lower the learning rate, or look for extreme inputs."
            )
            self.model.stop_training = True


class EpochCheckpoint(tf.keras.callbacks.Callback):
    """Saves model, optimizer and the number of finished epochs after every epoch.

    `restore()` puts a run back to its last saved epoch, which `fit(initial_epoch=...)`
    continues from (`tfzoo train --resume`).
    """

    def __init__(self, directory: str | Path, *, max_to_keep: int = 3):
        super().__init__()
        self.directory = str(directory)
        self.max_to_keep = max_to_keep
        self.epochs_done = tf.Variable(0, dtype=tf.int64, trainable=False, name="epochs_done")
        self._manager: tf.train.CheckpointManager | None = None

    def manager_for(self, model: tf.keras.Model) -> tf.train.CheckpointManager:
        if self._manager is None:
            checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epochs_done=self.epochs_done)
            self._manager = tf.train.CheckpointManager(checkpoint, self.directory, max_to_keep=self.max_to_keep)
        return self._manager

    def restore(self, model: tf.keras.Model) -> int:
        """Restores the latest checkpoint into `model`; returns the epochs it had finished."""
        manager = self.manager_for(model)
        if manager.latest_checkpoint is None:
            return 0
        manager.checkpoint.restore(manager.latest_checkpoint).expect_partial()
        return int(self.epochs_done.numpy())

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training and logs and not all(math.isfinite(float(v)) for v in logs.values()):
            return  # never overwrite a good checkpoint with diverged weights
        self.epochs_done.assign(epoch + 1)
        self.manager_for(self.model).save(checkpoint_number=epoch + 1)
