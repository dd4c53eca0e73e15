"""Training runs: config, checkpoints, TensorBoard logs, metrics, resume, tf.distribute."""

from tfzoo.training import distribute

from tfzoo.training.callbacks import EpochCheckpoint, HistoryFile, StopOnNaN, StopOnNaNPerEpoch, TrainingDivergedError
from tfzoo.training.config import RunConfig
from tfzoo.training.families import (
    FAMILIES,
    MODEL_FAMILIES,
    PRETRAINING,
    FitData,
    ModelFamily,
    Prepared,
    RankingFamily,
    family_for,
)
from tfzoo.training.run import Run, evaluate, load_run, train

__all__ = [
    "EpochCheckpoint",
    "FAMILIES",
    "FitData",
    "HistoryFile",
    "MODEL_FAMILIES",
    "PRETRAINING",
    "ModelFamily",
    "Prepared",
    "RankingFamily",
    "Run",
    "RunConfig",
    "StopOnNaN",
    "StopOnNaNPerEpoch",
    "TrainingDivergedError",
    "evaluate",
    "family_for",
    "load_run",
    "distribute",
    "train",
]
