"""Training runs: config, checkpoints, TensorBoard logs, metrics, resume."""

from tfzoo.training.callbacks import EpochCheckpoint, StopOnNaN, TrainingDivergedError
from tfzoo.training.config import RunConfig
from tfzoo.training.families import FAMILIES, MODEL_FAMILIES, FitData, ModelFamily, Prepared, RankingFamily, family_for
from tfzoo.training.run import Run, evaluate, load_run, train

__all__ = [
    "EpochCheckpoint",
    "FAMILIES",
    "FitData",
    "MODEL_FAMILIES",
    "ModelFamily",
    "Prepared",
    "RankingFamily",
    "Run",
    "RunConfig",
    "StopOnNaN",
    "TrainingDivergedError",
    "evaluate",
    "family_for",
    "load_run",
    "train",
]
