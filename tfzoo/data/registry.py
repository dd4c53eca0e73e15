"""Datasets by name, with their documented train / validation / test splits."""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

from tfzoo.data.readers.census import read_census_income
from tfzoo.data.splits import random_split
from tfzoo.data.synthetic import make_multi_scenario_data
from tfzoo.data.tabular import TabularData


@dataclasses.dataclass
class DatasetSplits:
    train: TabularData
    validation: TabularData
    test: TabularData
    split: str  # how the rows were split, reported with every result


def _census(path: str | None, tasks: Sequence[str] | None, split_seed: int) -> DatasetSplits:
    # The flow (grouped class of worker) makes GRec's (flow, use case) tasks; other models
    # see it as one more categorical feature.
    data = read_census_income(path, tasks=tasks or ("income", "never_married"), with_flow=True)
    train, validation, test = random_split(data, (0.8, 0.1, 0.1), seed=split_seed)
    return DatasetSplits(train, validation, test, f"random 80/10/10 of {len(data)} rows, seed {split_seed}")


def _synthetic(path: str | None, tasks: Sequence[str] | None, split_seed: int) -> DatasetSplits:
    if path is not None:
        raise ValueError("The synthetic dataset is generated; it takes no --data path.")
    data = make_multi_scenario_data(num_rows=20_000, seed=split_seed)
    if tasks:
        data = data.with_spec(dataclasses.replace(data.spec, labels=tuple(tasks)))
    train, validation, test = random_split(data, (0.8, 0.1, 0.1), seed=split_seed)
    return DatasetSplits(train, validation, test, f"random 80/10/10 of {len(data)} generated rows, seed {split_seed}")


DATASETS: dict[str, Callable[[str | None, Sequence[str] | None, int], DatasetSplits]] = {
    "census": _census,
    "synthetic": _synthetic,
}


def load_dataset(name: str, *, path: str | None = None, tasks: Sequence[str] | None = None, split_seed: int = 0) -> DatasetSplits:
    """Reads dataset `name` (from `path` where it needs one) and splits it."""
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {sorted(DATASETS)}.")
    return DATASETS[name](path, tasks, split_seed)
