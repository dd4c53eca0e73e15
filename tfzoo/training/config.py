"""The configuration of a training run."""

from __future__ import annotations

import dataclasses
from typing import Any

LEARNING_RATE_SCHEDULES = ("constant", "cosine")
# Keras dtype policies a run can train under: the mixed ones compute in 16 bits and keep
# float32 variables (routers, softmaxes, losses and model outputs stay float32).
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


@dataclasses.dataclass
class RunConfig:
    """Everything needed to rebuild a run's data and model.

    Attributes:
      model: a model name of `tfzoo.training.registry.TASKS`. The model, dataset, data
        options and model options are checked against each other when the config is
        made (`ModelTask.check`), before any data is read.
      dataset: a dataset name the model reads (e.g. `tfzoo.data.DATASETS`).
      data_path: where the dataset's files are, for datasets that are not bundled.
      tasks: the labels to train on (default: the dataset's).
      epochs, batch_size, learning_rate: optimisation (Adam); `batch_size` is global;
        `epochs` is the most epochs trained when early stopping is on. None: the
        task's default (`ModelTask.run_defaults`).
      seed: seeds weight initialisation and shuffling.
      split_seed: seeds the train / validation / test split (kept fixed across seeds so
        that runs with different `seed` are comparable).
      model_options: constructor arguments of the model (hyper-parameters).
      patience: early stopping: training ends after `patience` epochs without a better
        validation score (the task's `validation_metric`), and the best epoch's weights
        are what the run reports and exports; 0 trains every epoch and keeps the last.
        None: the task's default.
      learning_rate_schedule: "constant", or "cosine" (decays to 0 over `epochs` epochs).
      data_options: options of the dataset's split (`tfzoo.data.registry.DATA_OPTIONS`).
      init_from: a pre-training run directory to start from (tasks with a
        `pretraining_model`, e.g. SUPER-MoE from `tfzoo pretrain supermoe`).
      data_config: the user's own data (`tfzoo.data.data_config`, as a dict; `dataset`
        is then its name): streamed from its files, never held in memory.
      on_bad_row: with `data_config`, "raise" at the first bad row (naming its file and
        line) or "skip" bad rows (counted per file, reported after each epoch).
      precision: the Keras dtype policy the model is built under (`PRECISIONS`):
        "mixed_bfloat16" or "mixed_float16" compute in 16 bits with float32 variables
        (float16 with dynamic loss scaling); checkpoints and exports are float32 alike.
    """

    model: str
    dataset: str
    data_path: str | None = None
    tasks: list[str] | None = None
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float = 1e-3
    seed: int = 0
    split_seed: int = 0
    model_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    patience: int | None = None
    data_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    learning_rate_schedule: str = "constant"
    init_from: str | None = None
    precision: str = "float32"
    data_config: dict[str, Any] | None = None
    on_bad_row: str = "raise"

    def __post_init__(self):
        from tfzoo.training.registry import PRETRAINING, task_for  # tasks build on this module

        task = task_for(self.model)
        if self.init_from is not None and task.pretraining_model is None:
            raise ValueError(
                f"{self.model} has no pre-training to start from. Received: init_from={self.init_from!r}. "
                f"Accepted: init_from with model {', '.join(sorted(PRETRAINING))}"
            )
        if self.on_bad_row not in ("raise", "skip"):
            raise ValueError(f"`on_bad_row` must be 'raise' or 'skip'. Received: on_bad_row={self.on_bad_row!r}")
        task.check(self)
        for name, value in task.run_defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1. Received: {name}={getattr(self, name)}")
        if self.patience < 0:
            raise ValueError(f"`patience` must be >= 0 (0: no early stopping). Received: patience={self.patience}")
        if self.learning_rate_schedule not in LEARNING_RATE_SCHEDULES:
            raise ValueError(
                f"`learning_rate_schedule` must be one of {LEARNING_RATE_SCHEDULES}. Received: "
                f"learning_rate_schedule={self.learning_rate_schedule!r}"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(f"`precision` must be one of {PRECISIONS}. Received: precision={self.precision!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"`learning_rate` must be > 0. Received: learning_rate={self.learning_rate}")


def make_optimizer(config: RunConfig, steps_per_epoch: int):
    """Adam at `config.learning_rate`, following `config.learning_rate_schedule`."""
    import tensorflow as tf

    rate = config.learning_rate
    if config.learning_rate_schedule == "cosine":
        rate = tf.keras.optimizers.schedules.CosineDecay(rate, decay_steps=max(1, config.epochs * steps_per_epoch))
    return tf.keras.optimizers.Adam(rate)
