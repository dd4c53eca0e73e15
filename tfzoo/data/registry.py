"""Datasets by name, with their documented train / validation / test splits."""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence, Union

from tfzoo.data.friend_graph import FriendshipSplits, split_friendships
from tfzoo.data.readers.census import read_census_income
from tfzoo.data.readers.twitch import read_twitch
from tfzoo.data.splits import random_split
from tfzoo.data.synthetic import make_multi_scenario_data
from tfzoo.data.synthetic_graph import make_friend_graph
from tfzoo.data.tabular import TabularData


@dataclasses.dataclass
class DatasetSplits:
    train: TabularData
    validation: TabularData
    test: TabularData
    split: str  # how the rows were split, reported with every result


def _census(path: str | None, tasks: Sequence[str] | None, split_seed: int) -> DatasetSplits:
    data = read_census_income(path, tasks=tasks or ("income", "never_married"))
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


def _no_tasks(name: str, tasks: Sequence[str] | None) -> None:
    if tasks:
        raise ValueError(f"The {name} dataset is a friend graph for retrieval; it has no tasks. Received: tasks={list(tasks)}")


def _twitch(path: str | None, tasks: Sequence[str] | None, split_seed: int) -> FriendshipSplits:
    _no_tasks("twitch", tasks)
    if path is None:
        raise ValueError("The twitch dataset is read from a path: pass --data with a region folder (e.g. .../twitch_musae/DE).")
    return split_friendships(read_twitch(path), validation_share=0.1, test_share=0.1, seed=split_seed)


def _friend_graph(path: str | None, tasks: Sequence[str] | None, split_seed: int) -> FriendshipSplits:
    _no_tasks("friend_graph", tasks)
    if path is not None:
        raise ValueError("The friend_graph dataset is generated; it takes no --data path.")
    graph = make_friend_graph(3000, seed=0)  # one fixed graph; the seed varies only the split
    return split_friendships(graph, validation_share=0.1, test_share=0.1, seed=split_seed)


Splits = Union[DatasetSplits, FriendshipSplits]

DATASETS: dict[str, Callable[[str | None, Sequence[str] | None, int], Splits]] = {
    "census": _census,
    "synthetic": _synthetic,
    "twitch": _twitch,
    "friend_graph": _friend_graph,
}


def load_dataset(name: str, *, path: str | None = None, tasks: Sequence[str] | None = None, split_seed: int = 0) -> Splits:
    """Reads dataset `name` (from `path` where it needs one) and splits it."""
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {sorted(DATASETS)}.")
    return DATASETS[name](path, tasks, split_seed)
