"""Training runs: config, checkpoints, TensorBoard logs, metrics, resume, tf.distribute.

Names load with the module that defines them, so that `tfzoo.training.registry` (the
model names) and `tfzoo.training.distribute` import no model code.
"""

from tfzoo.lazy_names import lazy_attributes

_EXPORTS = {
    "EpochCheckpoint": "callbacks",
    "HistoryFile": "callbacks",
    "StopOnNaN": "callbacks",
    "StopOnNaNPerEpoch": "callbacks",
    "TrainingDivergedError": "callbacks",
    "RunConfig": "config",
    "FitData": "task",
    "ModelTask": "task",
    "Prepared": "task",
    "TaskInputs": "task",
    "PRETRAINING": "registry",
    "TASKS": "registry",
    "task_for": "registry",
    "Run": "run",
    "evaluate": "run",
    "load_run": "run",
    "train": "run",
    "SummaryRow": "summary",
    "append_summary": "summary",
    "format_summary": "summary",
    "read_summary": "summary",
    "run_summary": "summary",
}
_SUBMODULES = ("callbacks", "config", "distribute", "launch", "registry", "run", "summary", "task")

__all__ = sorted({*_EXPORTS, "distribute"})


__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, _SUBMODULES)
