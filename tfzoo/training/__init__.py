"""Training runs: config, checkpoints, TensorBoard logs, metrics, resume, tf.distribute.

Names load with the module that defines them, so that `tfzoo.training.registry` (the
model names) and `tfzoo.training.distribute` import no model code.
"""

import importlib

_EXPORTS = {
    "EpochCheckpoint": "callbacks",
    "HistoryFile": "callbacks",
    "StopOnNaN": "callbacks",
    "StopOnNaNPerEpoch": "callbacks",
    "TrainingDivergedError": "callbacks",
    "RunConfig": "config",
    "FAMILIES": "families",
    "MODEL_FAMILIES": "families",
    "FitData": "families",
    "ModelFamily": "families",
    "Prepared": "families",
    "RankingFamily": "families",
    "family_for": "families",
    "PRETRAINING": "registry",
    "TASKS": "registry",
    "task_for": "registry",
    "Run": "run",
    "evaluate": "run",
    "load_run": "run",
    "train": "run",
}
_SUBMODULES = ("callbacks", "config", "distribute", "families", "launch", "registry", "run")

__all__ = sorted({*_EXPORTS, "distribute"})


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS, *_SUBMODULES})
