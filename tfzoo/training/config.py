"""The configuration of a training run."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class RunConfig:
    """Everything needed to rebuild a run's data and model.

    Attributes:
      model: a model name of `tfzoo.training.families.MODEL_FAMILIES`.
      dataset: a dataset name the model's family reads (e.g. `tfzoo.data.DATASETS`).
      data_path: where the dataset's files are, for datasets that are not bundled.
      tasks: the labels to train on (default: the dataset's).
      epochs, batch_size, learning_rate: optimisation (Adam); `batch_size` is global.
      seed: seeds weight initialisation and shuffling.
      split_seed: seeds the train / validation / test split (kept fixed across seeds so
        that runs with different `seed` are comparable).
      model_options: constructor arguments of the model (hyper-parameters).
    """

    model: str
    dataset: str
    data_path: str | None = None
    tasks: list[str] | None = None
    epochs: int = 5
    batch_size: int = 512
    learning_rate: float = 1e-3
    seed: int = 0
    split_seed: int = 0
    model_options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1. Received: {name}={getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"`learning_rate` must be > 0. Received: learning_rate={self.learning_rate}")
