"""Datasets by name, with their documented train / validation / test splits."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfzoo.data.behaviour_sequences import make_behaviour_sequences, movielens_behaviour_sequences
from tfzoo.data.data_config import read_data_config
from tfzoo.data.friend_graph import FriendshipSplits, split_friendships
from tfzoo.data.readers.census import read_census_income
from tfzoo.data.readers.movielens import movielens_ranking_data, read_movielens_100k
from tfzoo.data.readers.twitch import read_twitch
from tfzoo.data.splits import ordered_split, random_split, user_fold_split
from tfzoo.data.streaming import StreamedSplits
from tfzoo.data.synthetic import make_multi_scenario_data
from tfzoo.data.synthetic_graph import make_friend_graph
from tfzoo.data.tabular import TabularData
from tfzoo.data.upsampling import task_counts
from tfzoo.data.upsampling import upsample_tasks as upsample_tasks_of


@dataclasses.dataclass
class DatasetSplits:
    train: TabularData
    validation: TabularData
    test: TabularData
    split: str  # how the rows were split, reported with every result
    # The files' own ids of what the rows number 1, 2, ... (an event log's items, actions,
    # users: `tfzoo.data.events_config`), by what they name; empty for the named datasets.
    vocabularies: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)


def _census(
    path: str | None, tasks: Sequence[str] | None, split_seed: int, *, with_flow: bool = False
) -> DatasetSplits:
    data = read_census_income(path, tasks=tasks or ("income", "never_married"), with_flow=with_flow)
    train, validation, test = random_split(data, (0.8, 0.1, 0.1), seed=split_seed)
    return DatasetSplits(train, validation, test, f"random 80/10/10 of {len(data)} rows, seed {split_seed}")


def _census_flows(path: str | None, tasks: Sequence[str] | None, split_seed: int) -> DatasetSplits:
    # Census with a `flow` feature (class of worker grouped), the flows of GRec's
    # (flow, use case) tasks; the same rows and split as "census".
    return _census(path, tasks, split_seed, with_flow=True)


def _synthetic(path: str | None, tasks: Sequence[str] | None, split_seed: int) -> DatasetSplits:
    if path is not None:
        raise ValueError("The synthetic dataset is generated; it takes no --data path.")
    data = make_multi_scenario_data(num_rows=20_000, seed=split_seed)
    if tasks:
        data = data.with_spec(dataclasses.replace(data.spec, labels=tuple(tasks)))
    train, validation, test = random_split(data, (0.8, 0.1, 0.1), seed=split_seed)
    return DatasetSplits(train, validation, test, f"random 80/10/10 of {len(data)} generated rows, seed {split_seed}")


def with_tasks(parts: Sequence[TabularData], tasks: Sequence[str] | None) -> list[TabularData]:
    """The parts with their spec's labels restricted to `tasks` (default: all of them)."""
    if not tasks:
        return list(parts)
    unknown = sorted(set(tasks) - set(parts[0].spec.labels))
    if unknown:
        raise ValueError(f"Unknown task(s) {unknown}; this dataset has {list(parts[0].spec.labels)}.")
    return [p.with_spec(dataclasses.replace(p.spec, labels=tuple(tasks))) for p in parts]


def _require_path(path: str | None, name: str, what: str) -> str:
    if path is None:
        raise ValueError(f"The {name} dataset may not be redistributed, so tfzoo does not ship it: pass --data {what}.")
    return path


def _shipped(name: str) -> Callable[..., DatasetSplits]:
    """A named dataset read into memory through its shipped data config
    (`tfzoo/data/configs/NAME.yaml`, files under `--data`): the same reading, labels and
    split as `--data-config NAME`, which streams it."""

    def load(path: str | None, tasks: Sequence[str] | None, split_seed: int) -> DatasetSplits:
        splits = StreamedSplits(read_data_config(name, data_root=path))
        parts = [splits.in_memory(split) for split in ("train", "validation", "test")]
        counts = ", ".join(f"{split} {len(part)}" for split, part in zip(("train", "validation", "test"), parts))
        return DatasetSplits(*with_tasks(parts, tasks), f"{splits.split} ({counts} rows)")

    return load


def _movielens(path: str | None, tasks: Sequence[str] | None, split_seed: int) -> DatasetSplits:
    folder = Path(_require_path(path, "movielens", "the ml-100k folder"))
    # Precomputed title embeddings, when present, sit in a `derived/` folder beside ml-100k.
    derived = folder.parent / "derived"
    data = movielens_ranking_data(read_movielens_100k(folder, embeddings_dir=derived if derived.is_dir() else None))
    timestamps = data.features["timestamp"]
    train, validation, test = ordered_split(data, timestamps, (0.8, 0.1, 0.1))

    def day(part: TabularData) -> str:
        if not len(part):
            return "nowhere (no rows)"
        return time.strftime("%Y-%m-%d", time.gmtime(int(part.features["timestamp"][0])))

    split = (
        f"ordered by timestamp (ties in file order) 80/10/10 of {len(data)} ratings: validation from "
        f"{day(validation)}, test from {day(test)} (UTC)"
    )
    return DatasetSplits(*with_tasks((train, validation, test), tasks), split)


def _time_split(data: TabularData, what: str) -> DatasetSplits:
    train, validation, test = ordered_split(data, data.features["timestamp"], (0.8, 0.1, 0.1))
    return DatasetSplits(train, validation, test, f"ordered by target timestamp 80/10/10 of {len(data)} {what}")


def _sequence_split(data: TabularData, what: str, split_seed: int, fold: int | None, folds: int) -> DatasetSplits:
    """The time split, or with `fold` user-level cross-validation (`user_fold_split`)."""
    if fold is None:
        return _time_split(data, what)
    (train, validation, test), users = user_fold_split(
        data, data.features["user_id"], fold=fold, folds=folds, seed=split_seed
    )
    split = (
        f"user-level {folds}-fold cross-validation of {len(data)} {what}, fold {fold} (users dealt into folds "
        f"with seed {split_seed}): test = the {users['test']} users of fold {fold} ({len(test)} sequences), "
        f"validation = {users['validation']} of the other users ({len(validation)}), train = the remaining "
        f"{users['train']} ({len(train)})"
    )
    return DatasetSplits(train, validation, test, split)


def _movielens_sequences(
    path: str | None,
    tasks: Sequence[str] | None,
    split_seed: int,
    *,
    stride: int = 4,
    length: int = 20,
    fold: int | None = None,
    folds: int = 5,
) -> DatasetSplits:
    folder = Path(_require_path(path, "movielens_sequences", "the ml-100k folder"))
    # The title channel needs the precomputed title embeddings of `derived/`, beside ml-100k.
    data, _ = movielens_behaviour_sequences(
        read_movielens_100k(folder, embeddings_dir=folder.parent / "derived"), stride=stride, length=length
    )
    return _sequence_split(
        data, f"behaviour sequences of {length} steps (every {stride}th rating of each user)", split_seed, fold, folds
    )


def _generated_sequences(
    path: str | None, tasks: Sequence[str] | None, split_seed: int, *, fold: int | None = None, folds: int = 5
) -> DatasetSplits:
    if path is not None:
        raise ValueError("The generated_sequences dataset is generated; it takes no --data path.")
    # With folds, one fixed set of users (the seed deals them into folds); else the seed draws the data.
    data, _ = make_behaviour_sequences(300, seed=0 if fold is not None else split_seed)
    return _sequence_split(data, "generated behaviour sequences", split_seed, fold, folds)


def _no_tasks(name: str, tasks: Sequence[str] | None) -> None:
    if tasks:
        raise ValueError(
            f"The {name} dataset is a friend graph for retrieval; it has no tasks. Received: tasks={list(tasks)}"
        )


def _twitch(
    path: str | None, tasks: Sequence[str] | None, split_seed: int, *, cold_start_share: float = 0.0
) -> FriendshipSplits:
    _no_tasks("twitch", tasks)
    folder = _require_path(path, "twitch", "a region folder of twitch_musae (DE, ENGB, ES, ...)")
    return split_friendships(
        read_twitch(folder), validation_share=0.1, test_share=0.1, seed=split_seed, cold_start_share=cold_start_share
    )


def _friend_graph(
    path: str | None,
    tasks: Sequence[str] | None,
    split_seed: int,
    *,
    cold_start_share: float = 0.0,
    num_users: int = 3000,
) -> FriendshipSplits:
    _no_tasks("friend_graph", tasks)
    if path is not None:
        raise ValueError("The friend_graph dataset is generated; it takes no --data path.")
    if isinstance(num_users, bool) or not isinstance(num_users, int) or num_users < 100:
        raise ValueError(
            f"The friend_graph dataset's `num_users` must be an integer >= 100. Received: num_users={num_users!r}"
        )
    # One fixed graph per size; the seed varies only the split.
    graph = make_friend_graph(num_users, seed=0)
    return split_friendships(
        graph, validation_share=0.1, test_share=0.1, seed=split_seed, cold_start_share=cold_start_share
    )


Splits = DatasetSplits | FriendshipSplits

DATASETS: dict[str, Callable[[str | None, Sequence[str] | None, int], Splits]] = {
    "aliexpress": _shipped("aliexpress"),
    "ali_ccp": _shipped("ali_ccp"),
    "taobao_userbehavior": _shipped("taobao_userbehavior"),
    "census": _census,
    "census_flows": _census_flows,
    "movielens": _movielens,
    "movielens_sequences": _movielens_sequences,
    "generated_sequences": _generated_sequences,
    "synthetic": _synthetic,
    "twitch": _twitch,
    "friend_graph": _friend_graph,
}


# One line per dataset, for `tfzoo datasets`: what it is and where its rows come from.
DATASET_DESCRIPTIONS: dict[str, str] = {
    "aliexpress": "AliExpress search logs (ctr, cvr, ctcvr), one country's train/test files (--data DIR)",
    "ali_ccp": "Ali-CCP click and purchase (ctr, cvr, ctcvr), preprocessed train/val/test files (--data DIR)",
    "taobao_userbehavior": "Taobao UserBehavior events as ranking rows (engaged, buy), time split (--data DIR)",
    "census": "UCI Census-Income (KDD), bundled: income > 50K and never married, random 80/10/10",
    "census_flows": "census with a `flow` feature (class of worker): GRec's (flow, use case) tasks",
    "movielens": "MovieLens-100K ratings as ranking rows (like, love; flows by gender), time split (--data ml-100k)",
    "movielens_sequences": "MovieLens-100K as behaviour sequences for SUPER-MoE (like, female, over_34; --data ml-100k)",
    "generated_sequences": "generated behaviour sequences in the MovieLens layout (tests, demos)",
    "synthetic": "generated multi-scenario rows (flows x use cases) with learnable tasks (tests, demos)",
    "twitch": "Twitch MUSAE friend graph of one region, for friend retrieval (--data twitch_musae/ES)",
    "friend_graph": "generated friend graph whose friendships follow user features (tests, demos)",
}

# Options of the tabular (multi-task) datasets, applied after their split: the training rows
# upsampled by task (`tfzoo.data.upsampling`, GRec's data preparation for sparse tasks).
# `upsample_tasks`: a flow column (tasks are flow x use case, e.g. "flow" for census_flows,
# "gender" for movielens), or true (tasks are the use cases); `upsample_max_factor` caps
# the repetition of a row.
UPSAMPLING_OPTIONS = ("upsample_tasks", "upsample_max_factor")
# Tabular datasets also take `train_rows`: train on a seeded random subset of that many
# training rows (validation and test stay whole), for quick runs and learning curves.
TABULAR_OPTIONS = ("train_rows", *UPSAMPLING_OPTIONS)

# The options a dataset's split takes beyond the seed (`tfzoo train --data-option KEY=VALUE`):
# friend graphs hold out a share of cold-start users; behaviour sequences take user-level
# cross-validation (`fold` in [0, `folds`), default 5 folds; without `fold`, the time split),
# and MovieLens sequences their `stride` (one example every stride-th rating) and `length`.
DATA_OPTIONS: dict[str, tuple[str, ...]] = {
    "twitch": ("cold_start_share",),
    "friend_graph": ("cold_start_share", "num_users"),
    "movielens_sequences": ("fold", "folds", "stride", "length"),
    "generated_sequences": ("fold", "folds"),
    **{
        name: TABULAR_OPTIONS
        for name in ("aliexpress", "ali_ccp", "taobao_userbehavior", "census", "census_flows", "movielens", "synthetic")
    },
}


# The datasets by the kind of rows their splits hold: friend graphs (`FriendshipSplits`)
# and behaviour sequences (`DatasetSplits` whose rows are sequences of a user's
# behaviour); the others are plain tabular rows.
FRIEND_GRAPH_DATASETS = ("twitch", "friend_graph")
BEHAVIOUR_SEQUENCE_DATASETS = ("movielens_sequences", "generated_sequences")


def check_dataset(name: str, options: Mapping[str, Any] | None = None) -> None:
    """Fails, before anything is read, on an unknown dataset or an option it does not take."""
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset. Received: dataset={name!r}. Accepted: {', '.join(sorted(DATASETS))}")
    accepted = DATA_OPTIONS.get(name, ())
    unknown = sorted(set(options or {}) - set(accepted))
    if unknown:
        received = ", ".join(f"data_option={key!r}" for key in unknown)
        raise ValueError(
            f"Unknown data option for dataset {name!r}. Received: {received}. "
            f"Accepted: {', '.join(accepted) if accepted else 'none'}"
        )


def load_dataset(
    name: str,
    *,
    path: str | None = None,
    tasks: Sequence[str] | None = None,
    split_seed: int = 0,
    options: Mapping[str, Any] | None = None,
) -> Splits:
    """Reads dataset `name` (from `path` where it needs one) and splits it (with the
    dataset's `DATA_OPTIONS`, e.g. `{"cold_start_share": 0.1}` for friend graphs)."""
    check_dataset(name, options)
    options = dict(options or {})
    upsampling = {key: options.pop(key) for key in UPSAMPLING_OPTIONS if key in options}
    train_rows = options.pop("train_rows", None)
    splits = DATASETS[name](path, tasks, split_seed, **options)
    if train_rows is not None:
        splits = _subsampled(splits, split_seed, train_rows)
    return _upsampled(splits, split_seed, **upsampling) if upsampling else splits


def _subsampled(splits: DatasetSplits, split_seed: int, train_rows: int) -> DatasetSplits:
    """`splits` with a seeded random `train_rows` of its training rows (in their order)."""
    if isinstance(train_rows, bool) or not isinstance(train_rows, int) or train_rows < 1:
        raise ValueError(f"`train_rows` must be an integer >= 1. Received: train_rows={train_rows!r}")
    if train_rows >= len(splits.train):
        return splits
    keep = np.sort(np.random.default_rng(split_seed).permutation(len(splits.train))[:train_rows])
    split = f"{splits.split}; trained on {train_rows} of its {len(splits.train)} training rows (seed {split_seed})"
    return dataclasses.replace(splits, train=splits.train.take(keep), split=split)


def _upsampled(
    splits: DatasetSplits,
    split_seed: int,
    *,
    upsample_tasks: str | bool = False,
    upsample_max_factor: float | None = None,
) -> DatasetSplits:
    """`splits` with the training rows upsampled by task (`UPSAMPLING_OPTIONS`)."""
    if upsample_tasks is False:
        return splits
    if not (upsample_tasks is True or isinstance(upsample_tasks, str)):
        raise ValueError(f"`upsample_tasks` must be a flow column or true. Received: upsample_tasks={upsample_tasks!r}")
    flow = None if upsample_tasks is True else upsample_tasks
    before = task_counts(splits.train, flow)
    train = upsample_tasks_of(splits.train, flow, max_factor=upsample_max_factor, seed=split_seed)
    after = task_counts(train, flow)
    counts = ", ".join(f"{task} {before[task]} -> {after[task]}" for task in before)
    split = (
        f"{splits.split}; training rows upsampled by task{' (' + flow + ' x use case)' if flow else ''}, "
        f"{len(splits.train)} -> {len(train)} rows, seed {split_seed}"
        f"{'' if upsample_max_factor is None else f', at most x{upsample_max_factor}'}: {counts}"
    )
    return dataclasses.replace(splits, train=train, split=split)
