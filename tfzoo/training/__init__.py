"""Training runs: config, checkpoints, TensorBoard logs, metrics, resume."""

from tfzoo.training.callbacks import EpochCheckpoint, StopOnNaN, TrainingDivergedError
from tfzoo.training.run import Run, RunConfig, evaluate, load_run, train

__all__ = ["EpochCheckpoint", "Run", "RunConfig", "StopOnNaN", "TrainingDivergedError", "evaluate", "load_run", "train"]
