"""A friend graph described by a data config (`kind: friend_graph`): a node table, one row
per user with its id and feature columns, and an edge list, two columns of user ids, each
in CSV, TSV or Parquet files.

    kind: friend_graph
    name: friends                    # default: the file's stem
    nodes:
      files: users-*.csv             # patterns, relative to this file
      format: csv                    # csv | tsv | parquet (default: csv)
      id: user_id
      features:                      # each column becomes a block of the multi-hot features
        - {name: country, kind: categorical, min_count: 5}   # one indicator per value
        - {name: games, kind: tokens, max_tokens: 5000}       # values joined by `separator`
        - {name: age, kind: numeric, num_buckets: 8}          # quantile buckets
        - {name: feature_ids, kind: indices, dim: 3170}       # indices in [0, dim), as given
    edges:
      files: friendships-*.csv
      format: csv
      columns: [from, to]            # the two users' ids (default: [from, to])
    split: {validation_share: 0.1, test_share: 0.1, cold_start_share: 0.0}
    separator: "|"

The graph is held in memory (the in-memory TF-GNN sampler, `tfzoo.graph.sampling`), and
friendships are split per user as for the named graphs (`split_friendships`, seeded by
the run's split seed). A graph beyond one machine's memory goes through TF-GNN's Beam
sampler instead (docs/data.md). Categorical and token columns keep the values seen at
least `min_count` times (the `max_tokens` most frequent), the others sharing one "other"
indicator per column; numeric columns are bucketed at quantiles of their values; an
empty field sets no indicator.

Bad rows (`on_bad_row`): a node row whose id repeats an earlier one, is empty, or has a
field that cannot be read; an edge with an empty id, an id that no node row has
(dangling) or both ends one user. "raise" names the file, line (or record) and column of
the first; "skip" drops each, counts them per file and reports them. Friendships listed
twice, or in both directions, are one friendship.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tfzoo.data.data_config import DataConfigError, list_of
from tfzoo.data.errors import BadRowPolicy, BadRows, DataFormatError
from tfzoo.data.features import CategoricalFeature, NumericFeature
from tfzoo.data.friend_graph import FriendGraph, FriendshipSplits, MultiHotFeatures, split_friendships
from tfzoo.data.table_files import TableFiles

NODE_FEATURE_KINDS = ("categorical", "tokens", "numeric", "indices")
_KEYS = ("kind", "name", "nodes", "edges", "split", "separator", "description")
_FEATURE_OPTIONS = {
    "categorical": {"max_tokens", "min_count"},
    "tokens": {"max_tokens", "min_count"},
    "numeric": {"num_buckets"},
    "indices": {"dim"},
}
_SPLIT_SHARES = {"validation_share": 0.1, "test_share": 0.1, "cold_start_share": 0.0}


@dataclasses.dataclass(frozen=True)
class NodeFeature:
    """One node column and how it becomes indicators (see the module docstring)."""

    name: str
    kind: str
    max_tokens: int | None = None
    min_count: int = 1
    num_buckets: int = 10
    dim: int | None = None


@dataclasses.dataclass(frozen=True)
class FriendGraphConfig:
    """A parsed `kind: friend_graph` data config (see the module docstring)."""

    name: str
    nodes: TableFiles
    node_id: str
    node_features: tuple[NodeFeature, ...]
    edges: TableFiles
    edge_columns: tuple[str, str]
    validation_share: float
    test_share: float
    cold_start_share: float
    separator: str = "|"
    source: str = ""
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    kind = "friend_graph"

    def run_record(self) -> dict[str, Any]:
        """What a run stores (`RunConfig.data_config`); `parse_data_config` reads it back."""
        return {**self.raw, "name": self.name, "source": self.source}

    @classmethod
    def from_dict(
        cls, raw: Mapping[str, Any], *, source: str = "<data config>", base: str | None = None
    ) -> FriendGraphConfig:
        raw = dict(raw)
        unknown = sorted(set(raw) - set(_KEYS))
        if unknown:
            raise DataConfigError(
                source, unknown[0], f"unknown key for kind friend_graph. Accepted: {', '.join(_KEYS)}"
            )
        for key in ("nodes", "edges"):
            if not isinstance(raw.get(key), Mapping):
                raise DataConfigError(source, key, f"required: a mapping with `files`. Received: {raw.get(key)!r}")
        nodes, edges = dict(raw["nodes"]), dict(raw["edges"])
        _only(nodes, ("files", "format", "id", "features"), source, "nodes")
        _only(edges, ("files", "format", "columns"), source, "edges")
        if not isinstance(nodes.get("id"), str):
            raise DataConfigError(
                source, "nodes.id", f"required: the column of the user ids. Received: {nodes.get('id')!r}"
            )
        features = tuple(
            _node_feature(feature, source, f"nodes.features[{i}]")
            for i, feature in enumerate(list_of(nodes.get("features", []), source, "nodes.features"))
        )
        names = [f.name for f in features]
        if nodes["id"] in names or len(set(names)) != len(names):
            raise DataConfigError(
                source, "nodes.features", f"each column once, the id not among them. Received: {names}"
            )
        columns = edges.get("columns", ["from", "to"])
        if isinstance(columns, str) or not isinstance(columns, list) or len(columns) != 2 or columns[0] == columns[1]:
            raise DataConfigError(source, "edges.columns", f"two different columns. Received: {columns!r}")
        split = raw.get("split", {})
        if not isinstance(split, Mapping) or set(split) - set(_SPLIT_SHARES):
            raise DataConfigError(source, "split", f"a mapping of {', '.join(_SPLIT_SHARES)}. Received: {split!r}")
        shares = {**_SPLIT_SHARES, **split}
        if not all(isinstance(v, (int, float)) and 0 <= v < 1 for v in shares.values()) or (
            shares["validation_share"] + shares["test_share"] >= 1
        ):
            raise DataConfigError(source, "split", f"shares in [0, 1), validation + test < 1. Received: {split!r}")
        separator = raw.get("separator", "|")
        if not isinstance(separator, str) or len(separator) != 1:
            raise DataConfigError(source, "separator", f"one character. Received: {separator!r}")
        stored_files = {}
        tables = {}
        for key, table in (("nodes", nodes), ("edges", edges)):
            # The edges' `columns` name their two id columns, not those of a headerless file.
            files = {k: v for k, v in table.items() if k != "columns"}
            tables[key] = TableFiles.from_config(files, source=source, key=key, base=base)
            stored_files[key] = {**table, "files": list(tables[key].patterns)}
        return cls(
            name=str(raw.get("name") or Path(source).stem),
            nodes=tables["nodes"],
            node_id=nodes["id"],
            node_features=features,
            edges=tables["edges"],
            edge_columns=(str(columns[0]), str(columns[1])),
            validation_share=float(shares["validation_share"]),
            test_share=float(shares["test_share"]),
            cold_start_share=float(shares["cold_start_share"]),
            separator=separator,
            source=source,
            raw={**raw, **stored_files},
        )


def _only(table: Mapping[str, Any], accepted: tuple[str, ...], source: str, key: str) -> None:
    unknown = sorted(set(table) - set(accepted))
    if unknown:
        raise DataConfigError(source, f"{key}.{unknown[0]}", f"unknown. Accepted: {', '.join(accepted)}")


def _node_feature(value: Any, source: str, key: str) -> NodeFeature:
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
        raise DataConfigError(source, key, f"needs `name` and `kind`. Received: {value!r}")
    kind = value.get("kind")
    if kind not in NODE_FEATURE_KINDS:
        raise DataConfigError(source, f"{key}.kind", f"Received: {kind!r}. Accepted: {', '.join(NODE_FEATURE_KINDS)}")
    options = {k: v for k, v in value.items() if k not in ("name", "kind")}
    unknown = sorted(set(options) - _FEATURE_OPTIONS[kind])
    if unknown:
        raise DataConfigError(
            source, f"{key}.{unknown[0]}", f"unknown for kind {kind}. Accepted: {sorted(_FEATURE_OPTIONS[kind])}"
        )
    for option, low in (("max_tokens", 1), ("min_count", 1), ("num_buckets", 2), ("dim", 1)):
        given = options.get(option)
        if given is not None and (isinstance(given, bool) or not isinstance(given, int) or given < low):
            raise DataConfigError(source, f"{key}.{option}", f"an integer >= {low}. Received: {given!r}")
    if kind == "indices" and "dim" not in options:
        raise DataConfigError(source, f"{key}.dim", "required for kind indices: the number of indices")
    return NodeFeature(name=value["name"], kind=kind, **options)


class _Indicators:
    """Node rows -> (row, indicator) pairs for one feature column, once fitted."""

    def __init__(self, feature: NodeFeature, separator: str):
        self.feature, self.separator = feature, separator
        self.counts: collections.Counter = collections.Counter()
        self.numbers: list[np.ndarray] = []
        self.width = feature.dim or 0
        self.mapping: dict[str, int] = {}
        self.boundaries: np.ndarray | None = None
        self.mean, self.std = 0.0, 1.0

    def parse(self, texts: np.ndarray) -> tuple[list[list[str]] | np.ndarray, np.ndarray]:
        """Parsed values of the rows and a mask of the rows that cannot be read."""
        kind = self.feature.kind
        if kind == "categorical":
            return texts, np.zeros(len(texts), bool)
        if kind == "numeric":
            empty = np.char.strip(texts.astype(str)) == ""
            numbers = np.full(len(texts), np.nan)
            bad = np.zeros(len(texts), bool)
            for i in np.flatnonzero(~empty):
                try:
                    numbers[i] = float(texts[i])
                except ValueError:
                    bad[i] = True
            return numbers, bad | ~(np.isfinite(numbers) | np.isnan(numbers))
        tokens = [[t for t in str(text).split(self.separator) if t.strip()] for text in texts]
        if kind == "tokens":
            return tokens, np.zeros(len(texts), bool)
        bad = np.zeros(len(texts), bool)
        parsed = []
        for i, row in enumerate(tokens):
            try:
                indices = [int(t) for t in row]
            except ValueError:
                indices, bad[i] = [], True
            if any(not 0 <= v < self.feature.dim for v in indices):
                indices, bad[i] = [], True
            parsed.append(indices)
        return parsed, bad

    def why(self, text: str) -> str:
        if self.feature.kind == "numeric":
            return f"expected a number, found {text!r}"
        return f"expected integers in [0, {self.feature.dim}) joined by {self.separator!r}, found {text!r}"

    def observe(self, parsed) -> None:
        kind = self.feature.kind
        if kind == "categorical":
            self.counts.update(v for v in parsed if v.strip())
        elif kind == "tokens":
            self.counts.update(t for row in parsed for t in row)
        elif kind == "numeric":
            self.numbers.append(parsed[np.isfinite(parsed)])

    def fit(self) -> None:
        feature = self.feature
        if feature.kind in ("categorical", "tokens"):
            vocabulary = (
                CategoricalFeature(feature.name, max_tokens=feature.max_tokens, min_count=feature.min_count)
                .fitted_from_counts(self.counts)
                .vocabulary
            )
            # Indicator 0: a value outside the vocabulary ("other").
            self.mapping = {value: i + 1 for i, value in enumerate(vocabulary)}
            self.width = len(vocabulary) + 1
        elif feature.kind == "numeric":
            values = np.concatenate(self.numbers) if self.numbers else np.zeros(0)
            mean = float(values.mean()) if values.size else 0.0
            std = float(values.std()) if values.size else 1.0
            fitted = NumericFeature(feature.name, num_buckets=feature.num_buckets).fitted_from_moments(
                values.size, mean, std, values
            )
            self.mean, self.std = fitted.mean, fitted.std
            self.boundaries = np.asarray(fitted.boundaries or (), np.float64)
            self.width = fitted.num_bucket_indices

    def pairs(self, parsed, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, indicator) of every indicator set by the rows `rows` hold."""
        kind = self.feature.kind
        if kind == "numeric":
            known = np.isfinite(parsed)
            standardised = (parsed[known] - self.mean) / self.std
            return rows[known], np.searchsorted(self.boundaries, standardised, side="right")
        if kind == "categorical":
            parsed = [[v] if v.strip() else [] for v in parsed]
        lengths = np.array([len(row) for row in parsed], np.int64)
        flat = [v for row in parsed for v in row]
        if kind == "indices":
            return np.repeat(rows, lengths), np.asarray(flat, np.int64)
        return np.repeat(rows, lengths), np.array([self.mapping.get(v, 0) for v in flat], np.int64)

    def describe(self) -> str:
        feature = self.feature
        if feature.kind == "indices":
            return f"{feature.name}: indices [0, {feature.dim})"
        if feature.kind == "numeric":
            return f"{feature.name}: {self.width} quantile buckets"
        return f"{feature.name}: {self.width - 1} {'tokens' if feature.kind == 'tokens' else 'values'} and other"


def read_friend_graph(config: FriendGraphConfig, *, on_bad_row: BadRowPolicy = "raise") -> FriendGraph:
    """The `FriendGraph` of `config`'s files: users in the order of the node files (sorted
    by path) and rows, `node_ids` their ids as the files give them."""
    if on_bad_row not in ("raise", "skip"):
        raise ValueError(f"`on_bad_row` must be 'raise' or 'skip'. Received: on_bad_row={on_bad_row!r}")
    indicators = [_Indicators(feature, config.separator) for feature in config.node_features]
    node_ids, parsed_files, skipped_users = _read_users(config, indicators, on_bad_row)
    feature_splits, feature_indices, dim = _multi_hot(indicators, parsed_files, len(node_ids))
    edges, skipped_edges = _read_friendships(config, node_ids, on_bad_row)
    blocks = "; ".join(indicator.describe() for indicator in indicators) or "no feature columns"
    return FriendGraph(
        num_users=len(node_ids),
        edges=edges,
        feature_splits=feature_splits,
        feature_indices=feature_indices,
        features=MultiHotFeatures(dim=dim, description=f"{config.name} node columns: {blocks}"),
        node_ids=node_ids,
        source=config.source,
        skipped_rows=skipped_users + skipped_edges,
    )


def _drop(keep: np.ndarray, bad_rows: BadRows, path: str, lines: np.ndarray, row: int, reason: str, field: str):
    """Row `row` of a file is bad: not kept, and handled by the policy (raise or count)."""
    keep[row] = False
    bad_rows.handle(DataFormatError(reason, path=path, line=int(lines[row]), field=field))


def _read_users(
    config: FriendGraphConfig, indicators: list[_Indicators], on_bad_row: BadRowPolicy
) -> tuple[np.ndarray, list[list], int]:
    """The users' ids [num_users] (text), each node file's parsed feature columns (its
    kept rows, one entry per indicator), and the rows skipped; the indicators observe the
    kept rows (for their vocabularies and buckets)."""
    ids: list[np.ndarray] = []
    parsed_files: list[list] = []
    seen: dict[str, tuple[str, int]] = {}  # id -> (file, line) of its row
    skipped = 0
    columns = [config.node_id, *(f.name for f in config.node_features)]
    for path, values, lines, bad_rows in config.nodes.read(config.source, "nodes", columns, on_bad_row):
        keep = np.ones(len(lines), bool)
        bad = functools.partial(_drop, keep, bad_rows, path, lines)
        parsed = []
        for indicator in indicators:
            texts = values[indicator.feature.name]
            column, unreadable = indicator.parse(texts)
            for row in np.flatnonzero(unreadable & keep):
                bad(row, indicator.why(texts[row]), indicator.feature.name)
            parsed.append(column)
        users = [str(u).strip() for u in values[config.node_id]]
        for row in np.flatnonzero(keep):
            user = users[row]
            if not user:
                bad(row, "empty user id", config.node_id)
            elif user in seen:
                bad(row, f"user {user!r} has a row already, at {seen[user][0]}:{seen[user][1]}", config.node_id)
            else:
                seen[user] = (path, int(lines[row]))
        rows = np.flatnonzero(keep)
        ids.append(np.array([users[r] for r in rows], dtype=str))
        kept = [c[rows] if isinstance(c, np.ndarray) else [c[r] for r in rows] for c in parsed]
        for indicator, column in zip(indicators, kept):
            indicator.observe(column)
        parsed_files.append(kept)
        bad_rows.report()
        skipped += bad_rows.skipped
    node_ids = np.concatenate(ids)
    if not len(node_ids):
        raise DataFormatError("no user rows", path=", ".join(config.nodes.paths(config.source, "nodes")))
    return node_ids, parsed_files, skipped


def _multi_hot(
    indicators: list[_Indicators], parsed_files: list[list], num_users: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """(feature_splits [num_users + 1], feature_indices, dim): the fitted columns' blocks
    side by side, in the config's order."""
    offsets = [0]
    for indicator in indicators:
        indicator.fit()
        offsets.append(offsets[-1] + indicator.width)
    users, indices = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    start = 0
    for parsed in parsed_files:
        file_rows = np.arange(start, start + (len(parsed[0]) if parsed else 0))
        for indicator, offset, column in zip(indicators, offsets, parsed):
            rows, found = indicator.pairs(column, file_rows)
            users.append(rows)
            indices.append(found + offset)
        start += len(file_rows)
    pairs = np.unique(np.stack([np.concatenate(users), np.concatenate(indices)], axis=1), axis=0)  # sorted by user
    feature_splits = np.zeros(num_users + 1, np.int64)
    np.cumsum(np.bincount(pairs[:, 0], minlength=num_users), out=feature_splits[1:])
    return feature_splits, pairs[:, 1].astype(np.int32), max(offsets[-1], 1)


def _read_friendships(
    config: FriendGraphConfig, node_ids: np.ndarray, on_bad_row: BadRowPolicy
) -> tuple[np.ndarray, int]:
    """[E, 2] the edge files' friendships as user rows, and the rows skipped."""
    order = np.argsort(node_ids)
    sorted_ids = node_ids[order]
    edges = [np.zeros((0, 2), np.int64)]
    skipped = 0
    columns = list(config.edge_columns)
    for path, values, lines, bad_rows in config.edges.read(config.source, "edges", columns, on_bad_row):
        keep = np.ones(len(lines), bool)
        ends = []
        for column in columns:
            users = np.array([str(u).strip() for u in values[column]], dtype=str)
            at = np.minimum(np.searchsorted(sorted_ids, users), len(sorted_ids) - 1)
            found = sorted_ids[at] == users
            for row in np.flatnonzero(~found & keep):
                reason = f"user {str(users[row])!r} has no row in the node files" if users[row] else "empty user id"
                _drop(keep, bad_rows, path, lines, row, reason, column)
            ends.append(np.where(found, order[at], -1))
        pairs = np.stack(ends, axis=1)
        for row in np.flatnonzero((pairs[:, 0] == pairs[:, 1]) & keep):
            reason = f"a user befriends itself ({str(node_ids[pairs[row, 0]])!r})"
            _drop(keep, bad_rows, path, lines, row, reason, columns[1])
        edges.append(pairs[keep])
        bad_rows.report()
        skipped += bad_rows.skipped
    return np.concatenate(edges), skipped


def friend_graph_splits(config: FriendGraphConfig, *, split_seed: int, on_bad_row: BadRowPolicy) -> FriendshipSplits:
    """`config`'s graph with its friendships split per user (`split_friendships`)."""
    splits = split_friendships(
        read_friend_graph(config, on_bad_row=on_bad_row),
        validation_share=config.validation_share,
        test_share=config.test_share,
        seed=split_seed,
        cold_start_share=config.cold_start_share,
    )
    return dataclasses.replace(splits, split=f"{config.name}: {splits.split}")
