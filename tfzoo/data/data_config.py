"""A dataset described by one YAML or JSON file: where its files are, what each column is,
which are the labels, and how rows fall into train / validation / test.

    name: clicks                  # default: the file's stem
    format: csv                   # csv | tsv | parquet | tfrecord (tf.train.Example)
    files: shards/part-*.csv      # patterns (relative to this file) of every row ...
    split: {by: hash, key: user_id, shares: [0.8, 0.1, 0.1]}
    # ... or files per split, without `split`:
    # files: {train: train-*.csv, validation: val-*.csv, test: test-*.csv}
    # ... or training and test files, validation carved from the training files by a hash:
    # files: {train: train-*.csv, test: test-*.csv}
    # split: {by: hash, key: user_id, shares: [0.9, 0.1, 0]}
    features:                     # tfzoo.data.features kinds and their options
      - {name: age, kind: numeric, num_buckets: 10}
      - {name: city, kind: categorical, max_tokens: 10000, min_count: 5}
      - {name: user_id, kind: categorical, hash_buckets: 1000000}
    labels: [click, {name: buy, column: behaviour, positive: [buy]}]
    # a label observed on some rows only, and one that needs two columns (ESMM's CVR, CTCVR):
    # labels: [click, {name: cvr, column: conversion, observed_where: click},
    #          {name: ctcvr, column: conversion, times: click}]

Split rules, each deterministic row by row, so a stream can apply it:
- `{by: hash, key: COLUMN, shares: [train, validation, test]}`: the row's key hashed
  (FarmHash fingerprint of its text), so all rows of one key fall in one split;
- `{by: column, column: COLUMN, values: {train: [...], validation: [...], test: [...]}}`;
- `{by: time, column: COLUMN, validation_from: T1, test_from: T2}`: rows before T1 train,
  from T2 test, between validation.

Files are any path `tf.io.gfile` opens (local, `gs://`, HDFS where TensorFlow has them);
CSV and TSV may be gzip-compressed (`.gz`). Sequence and embedding columns of text files
hold their values joined by `separator` (default "|"). A headerless text file names its
columns with `columns: [...]`.

A friend graph (a node table and an edge list) is a config of `kind: friend_graph`
(`tfzoo.data.graph_config`), an event log grouped into behaviour sequences one of
`kind: events` (`tfzoo.data.events_config`); without `kind`, or with `kind: rows`, a
config describes rows as above. `read_data_config` reads any of them.

`tfzoo data convert --preprocess` writes a config of preprocessed rows: TFRecord files
per split whose features are already model inputs, with a `preprocessed` entry naming the
fitted spec they were made with (a JSON file), the rows of each split and of each
training file, and how the source rows were split. Training reads them with `tf.data` alone (no parsing or lookups
per batch); the spec, and so the exported model's inputs, are the source config's.

Every error names the config file, the key at fault and what is accepted.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from tfzoo.data.features import DatasetSpec, feature_from_config

FORMATS = ("csv", "tsv", "parquet", "tfrecord")
SPLITS = ("train", "validation", "test")
SPLIT_RULES = ("hash", "column", "time")
KINDS = ("rows", "friend_graph", "events")
_KEYS = (
    "name",
    "format",
    "files",
    "split",
    "features",
    "labels",
    "separator",
    "columns",
    "description",
    "kind",
    "preprocessed",
)
_PREPROCESSED_KEYS = ("spec", "rows", "train_file_rows", "split")


class DataConfigError(ValueError):
    """A data config that cannot be used; the message names the file and the key."""

    def __init__(self, path: str, key: str, message: str):
        self.path, self.key = str(path), key
        super().__init__(f"{path}: `{key}`: {message}")


@dataclasses.dataclass(frozen=True)
class LabelColumn:
    """A binary label: the column's number (0 / 1; empty or NaN: missing), or 1 where the
    column's text is one of `positive`; multiplied by the number in column `times`
    (CTCVR: conversion times click), and missing where `observed_where`'s number is not 1
    (CVR: observed on clicked rows only)."""

    name: str
    column: str
    positive: tuple[str, ...] | None = None
    times: str | None = None
    observed_where: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the label is computed from."""
        return tuple(dict.fromkeys(c for c in (self.column, self.times, self.observed_where) if c is not None))


@dataclasses.dataclass(frozen=True)
class SplitRule:
    by: str  # "files", "hash", "column" or "time"
    key: str | None = None  # hash: the key column
    shares: tuple[float, float, float] | None = None
    column: str | None = None  # column / time
    values: Mapping[str, tuple[str, ...]] | None = None
    validation_from: float | None = None
    test_from: float | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for c in (self.key, self.column) if c is not None)

    def describe(self) -> str:
        if self.by == "files":
            return "files per split"
        if self.by == "hash" and self.shares[2] == 0:
            return (
                f"test files; the training files' rows dealt by a hash of {self.key!r}: "
                f"{self.shares[1]:g} to validation"
            )
        if self.by == "hash":
            shares = "/".join(f"{s:g}" for s in self.shares)
            return f"hash of {self.key!r} into train/validation/test shares {shares}"
        if self.by == "column":
            return f"by the value of {self.column!r}: " + "; ".join(f"{s} {list(v)}" for s, v in self.values.items())
        start, end = (f"{v:.0f}" if float(v).is_integer() else f"{v:g}" for v in (self.validation_from, self.test_from))
        return f"by {self.column!r}: train before {start}, validation before {end}, test from it"


@dataclasses.dataclass(frozen=True)
class Preprocessed:
    """What `tfzoo data convert --preprocess` knows of the rows it wrote: the fitted spec
    file their features were preprocessed with, the rows of each split and of each training
    file (so that training needs no pass to count them), and how the source rows were
    split."""

    spec: str
    rows: Mapping[str, int]
    train_file_rows: Mapping[str, int]
    split: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "rows": dict(self.rows),
            "train_file_rows": dict(self.train_file_rows),
            "split": self.split,
        }


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """A parsed data config (see the module docstring); `to_dict()` is stored with a run."""

    name: str
    format: str
    files: Mapping[str, tuple[str, ...]]  # split -> patterns; "all" with a split rule
    split: SplitRule
    spec: DatasetSpec  # unfitted features, labels named
    label_columns: tuple[LabelColumn, ...]
    separator: str = "|"
    columns: tuple[str, ...] | None = None  # headerless text files
    source: str = ""  # the config file
    preprocessed: Preprocessed | None = None  # rows written by `tfzoo data convert --preprocess`
    # As given, its patterns made absolute: stored with a run, which then reopens anywhere.
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    kind = "rows"

    def __post_init__(self):
        if self.columns is not None:
            missing = [c for c in self.needed_columns if c not in self.columns]
            if missing:
                raise DataConfigError(
                    self.source, "columns", f"lacks {missing}, which the features, labels or split read"
                )

    @property
    def needed_columns(self) -> tuple[str, ...]:
        """Every column a row is read for: features, label columns, split columns."""
        names = [
            *self.spec.feature_names,
            *(c for label in self.label_columns for c in label.columns),
            *self.split.columns,
        ]
        return tuple(dict.fromkeys(names))

    def file_group(self, split: str) -> str:
        """The entry of `files` that holds `split`'s rows: "all", the split's own, or
        "train" for a validation split carved from the training files."""
        if "all" in self.files:
            return "all"
        return split if split in self.files else "train"

    def dealt(self, group: str) -> bool:
        """Whether the split rule deals the rows of file group `group` among splits."""
        return group == "all" or (group == "train" and "validation" not in self.files)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.raw)

    def run_record(self) -> dict[str, Any]:
        """What a run stores (`RunConfig.data_config`): the config, its name and the file it
        came from (for messages); `ModelTask.data_config` reads it back."""
        return {**self.raw, "name": self.name, "source": self.source}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, source: str = "<data config>", base: str | None = None) -> DataConfig:
        """Parses `raw`; relative file patterns are taken from `base` (the config's folder)."""
        if not isinstance(raw, Mapping):
            raise DataConfigError(source, "", f"must be a mapping. Received: {type(raw).__name__}")
        raw = dict(raw)
        unknown = sorted(set(raw) - set(_KEYS))
        if unknown:
            raise DataConfigError(source, unknown[0], f"unknown key. Accepted: {', '.join(_KEYS)}")
        if raw.get("kind", "rows") != "rows":
            raise DataConfigError(source, "kind", f"Received: {raw['kind']!r}. Accepted: {', '.join(KINDS)}")
        for key in ("format", "files", "features", "labels"):
            if key not in raw:
                raise DataConfigError(source, key, "required")
        fmt = raw["format"]
        if fmt not in FORMATS:
            raise DataConfigError(source, "format", f"Received: {fmt!r}. Accepted: {', '.join(FORMATS)}")
        files = _files(raw["files"], source, base)
        split = _split_rule(raw.get("split"), files, source)
        features = []
        for i, feature in enumerate(list_of(raw["features"], source, "features")):
            key = f"features[{i}]"
            if not isinstance(feature, Mapping) or "kind" not in feature or "name" not in feature:
                raise DataConfigError(source, key, f"needs `name` and `kind`. Received: {feature!r}")
            try:
                features.append(feature_from_config(feature))
            except (TypeError, ValueError) as error:
                raise DataConfigError(source, key, str(error)) from None
        labels = tuple(
            _label(label, source, f"labels[{i}]") for i, label in enumerate(list_of(raw["labels"], source, "labels"))
        )
        if not labels:
            raise DataConfigError(source, "labels", "name at least one label")
        try:
            spec = DatasetSpec(features=tuple(features), labels=tuple(label.name for label in labels))
        except ValueError as error:
            raise DataConfigError(source, "features", str(error)) from None
        separator = raw.get("separator", "|")
        if not isinstance(separator, str) or len(separator) != 1:
            raise DataConfigError(source, "separator", f"one character. Received: {separator!r}")
        columns = raw.get("columns")
        if columns is not None:
            if fmt not in ("csv", "tsv"):
                raise DataConfigError(source, "columns", f"names the columns of headerless csv / tsv files, not {fmt}")
            columns = tuple(str(c) for c in list_of(columns, source, "columns"))
        preprocessed = None
        if raw.get("preprocessed") is not None:
            preprocessed = _preprocessed(raw["preprocessed"], source, base, fmt=fmt, files=files, labels=labels)
        return cls(
            name=str(raw.get("name") or Path(source).stem),
            format=fmt,
            files=files,
            split=split,
            spec=spec,
            label_columns=labels,
            separator=separator,
            columns=columns,
            source=source,
            preprocessed=preprocessed,
            raw={
                **raw,
                "files": {k: list(v) for k, v in files.items()},
                **({"preprocessed": preprocessed.to_dict()} if preprocessed else {}),
            },
        )


def parse_data_config(raw: Mapping[str, Any], *, source: str = "<data config>", base: str | None = None):
    """The `DataConfig` of `raw`, or by its `kind` its `FriendGraphConfig` or
    `EventsConfig` (relative file patterns taken from `base`)."""
    if not isinstance(raw, Mapping):
        raise DataConfigError(source, "", f"must be a mapping. Received: {type(raw).__name__}")
    kind = raw.get("kind", "rows")
    if kind not in KINDS:
        raise DataConfigError(source, "kind", f"Received: {kind!r}. Accepted: {', '.join(KINDS)}")
    if kind == "friend_graph":
        from tfzoo.data.graph_config import FriendGraphConfig  # builds on this module

        return FriendGraphConfig.from_dict(raw, source=source, base=base)
    if kind == "events":
        from tfzoo.data.events_config import EventsConfig  # builds on this module

        return EventsConfig.from_dict(raw, source=source, base=base)
    return DataConfig.from_dict(raw, source=source, base=base)


# Data configs shipped with tfzoo (`tfzoo/data/configs/NAME.yaml`): the public datasets
# whose files a user downloads, described as any user's files are. `--data-config NAME`
# streams one, `--dataset NAME` reads it into memory; `--data DIR` says where its files lie.
SHIPPED_CONFIGS_DIR = Path(__file__).parent / "configs"


def shipped_data_configs() -> dict[str, Path]:
    """The data configs shipped with tfzoo, by name."""
    return {path.stem: path for path in sorted(SHIPPED_CONFIGS_DIR.glob("*.yaml"))}


def shipped_description(name: str) -> str:
    """The `description` of shipped config `name` (what `tfzoo datasets` prints)."""
    raw = yaml.safe_load(shipped_data_configs()[name].read_text())
    return " ".join(str(raw.get("description", "")).split())


def read_data_config(path: str | Path, *, data_root: str | Path | None = None):
    """The data config in `path` (YAML, or JSON: a `.json` suffix): a `DataConfig`, or by
    its `kind` a `FriendGraphConfig` or an `EventsConfig`.

    `path` may also be the name of a config shipped with tfzoo (`shipped_data_configs()`,
    e.g. "aliexpress") where no such file exists. Relative file patterns are taken from
    `data_root` (the `--data` folder) where given, else from the config's folder; a
    shipped config names files tfzoo does not ship, so it needs `data_root`."""
    shipped = shipped_data_configs()
    is_shipped = str(path) in shipped and not Path(path).exists()
    if is_shipped:
        path = shipped[str(path)]
        if data_root is None:
            raise DataConfigError(
                str(path.stem),
                "files",
                f"the {path.stem} config reads files tfzoo does not ship: pass --data DIR, the folder that holds "
                f"them ({shipped_description(path.stem)})",
            )
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        accepted = f" (or the name of a shipped config: {', '.join(shipped)})" if shipped else ""
        raise DataConfigError(str(path), "", f"cannot be read ({error.strerror or error}){accepted}") from None
    language = "JSON" if path.suffix == ".json" else "YAML"
    try:
        raw = json.loads(text) if language == "JSON" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise DataConfigError(str(path), "", f"is not valid {language}: {error}") from None
    if not isinstance(raw, Mapping):
        raise DataConfigError(str(path), "", f"must hold a mapping of keys. Received: {type(raw).__name__}")
    if data_root is None:
        base = str(path.parent.resolve())
    elif "://" in str(data_root):  # gs://, hdfs://: tf.io.gfile opens it
        base = str(data_root)
    elif Path(data_root).is_dir():
        base = str(Path(data_root).resolve())
    else:
        raise DataConfigError(str(path), "files", f"the data folder {str(data_root)!r} is not a directory")
    return parse_data_config(raw, source=path.stem if is_shipped else str(path), base=base)


def list_of(value: Any, source: str, key: str) -> list:
    if isinstance(value, (str, Mapping)) or not isinstance(value, Sequence):
        raise DataConfigError(source, key, f"must be a list. Received: {value!r}")
    return list(value)


def patterns_of(value: Any, source: str, key: str, base: str | None) -> tuple[str, ...]:
    patterns = [value] if isinstance(value, str) else list_of(value, source, key)
    if not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise DataConfigError(source, key, f"one or more file patterns. Received: {value!r}")

    def joined(pattern: str) -> str:
        if base is None or "://" in pattern or Path(pattern).is_absolute():
            return pattern
        return f"{base.rstrip('/')}/{pattern}" if "://" in base else str(Path(base) / pattern)

    return tuple(joined(p) for p in patterns)


def _files(value: Any, source: str, base: str | None) -> dict[str, tuple[str, ...]]:
    if isinstance(value, Mapping):
        if "all" in value:
            if len(value) > 1:
                raise DataConfigError(source, "files", "`all` or one entry per split, not both")
            return {"all": patterns_of(value["all"], source, "files.all", base)}
        if sorted(value) not in (sorted(SPLITS), ["test", "train"]):
            raise DataConfigError(
                source,
                "files",
                f"per split needs exactly {', '.join(SPLITS)} (or train and test, validation carved from the "
                f"training files by a hash split). Received: {sorted(value)}",
            )
        return {s: patterns_of(value[s], source, f"files.{s}", base) for s in SPLITS if s in value}
    return {"all": patterns_of(value, source, "files", base)}


def _preprocessed(
    value: Any, source: str, base: str | None, *, fmt: str, files: Mapping[str, Any], labels: Sequence[LabelColumn]
) -> Preprocessed:
    key = "preprocessed"
    if not isinstance(value, Mapping):
        raise DataConfigError(source, key, f"must be a mapping of {', '.join(_PREPROCESSED_KEYS)}. Received: {value!r}")
    unknown = sorted(set(value) - set(_PREPROCESSED_KEYS))
    missing = [k for k in _PREPROCESSED_KEYS if k not in value]
    if unknown or missing:
        problem = f"unknown key {unknown[0]!r}" if unknown else f"lacks {missing[0]!r}"
        raise DataConfigError(source, key, f"{problem}. Accepted: {', '.join(_PREPROCESSED_KEYS)}")
    if fmt != "tfrecord" or "validation" not in files:
        raise DataConfigError(
            source, key, "preprocessed rows are TFRecord files per split (`format: tfrecord`, files per split)"
        )
    plain = [label.name for label in labels if label.columns != (label.name,) or label.positive is not None]
    if plain:
        raise DataConfigError(source, key, f"labels of preprocessed rows are their own 0 / 1 columns; {plain} are not")
    rows = value["rows"]
    if (
        not isinstance(rows, Mapping)
        or sorted(rows) != sorted(SPLITS)
        or not all(isinstance(n, int) and n >= 0 for n in rows.values())
    ):
        raise DataConfigError(source, f"{key}.rows", f"the rows of {', '.join(SPLITS)}, each >= 0. Received: {rows!r}")
    file_rows = value["train_file_rows"]
    if not isinstance(file_rows, Mapping) or not all(isinstance(n, int) and n >= 0 for n in file_rows.values()):
        raise DataConfigError(source, f"{key}.train_file_rows", f"file -> its training rows. Received: {file_rows!r}")
    (spec,) = patterns_of(value["spec"], source, f"{key}.spec", base)
    return Preprocessed(
        spec=spec,
        rows={s: int(rows[s]) for s in SPLITS},
        train_file_rows={patterns_of(f, source, f"{key}.train_file_rows", base)[0]: n for f, n in file_rows.items()},
        split=str(value["split"]),
    )


def _split_rule(value: Any, files: Mapping[str, Any], source: str) -> SplitRule:
    if "validation" in files:
        if value is not None:
            raise DataConfigError(source, "split", "files are given per split already: drop `split`")
        return SplitRule(by="files")
    if "all" not in files:  # training and test files: validation carved from the training files
        rule = _split_rule(value, {"all": ()}, source) if isinstance(value, Mapping) else None
        if rule is None or rule.by != "hash" or rule.shares[2] != 0:
            raise DataConfigError(
                source,
                "split",
                "training and test files need a hash split that carves validation from the training files, "
                f"with a test share of 0, e.g. {{by: hash, key: user_id, shares: [0.9, 0.1, 0]}}. Received: {value!r}",
            )
        return rule
    if not isinstance(value, Mapping):
        raise DataConfigError(source, "split", f"one file set needs a split rule: by {', '.join(SPLIT_RULES)}")
    by = value.get("by")
    if by not in SPLIT_RULES:
        raise DataConfigError(source, "split.by", f"Received: {by!r}. Accepted: {', '.join(SPLIT_RULES)}")
    accepted = {"hash": {"by", "key", "shares"}, "column": {"by", "column", "values"}, "time": set()}
    accepted["time"] = {"by", "column", "validation_from", "test_from"}
    unknown = sorted(set(value) - accepted[by])
    if unknown:
        raise DataConfigError(source, f"split.{unknown[0]}", f"unknown for by={by}. Accepted: {sorted(accepted[by])}")
    missing = sorted(accepted[by] - set(value))
    if missing:
        raise DataConfigError(source, f"split.{missing[0]}", f"required for by={by}")
    if by == "hash":
        shares = value["shares"]
        if (
            not isinstance(shares, Sequence)
            or len(shares) != 3
            or not all(isinstance(s, (int, float)) and s >= 0 for s in shares)
            or abs(sum(shares) - 1.0) > 1e-6
        ):
            raise DataConfigError(source, "split.shares", f"three shares >= 0 summing to 1. Received: {shares!r}")
        return SplitRule(by="hash", key=str(value["key"]), shares=tuple(float(s) for s in shares))
    if by == "column":
        values = value["values"]
        if not isinstance(values, Mapping) or sorted(values) != sorted(SPLITS):
            raise DataConfigError(source, "split.values", f"a list of values for each of {', '.join(SPLITS)}")
        lists = {
            s: tuple(str(v) for v in ([values[s]] if isinstance(values[s], (str, int)) else values[s])) for s in SPLITS
        }
        return SplitRule(by="column", column=str(value["column"]), values=lists)
    start, end = value["validation_from"], value["test_from"]
    if not all(isinstance(v, (int, float)) for v in (start, end)) or not start <= end:
        raise DataConfigError(
            source, "split", f"numbers with validation_from <= test_from. Received: {start!r}, {end!r}"
        )
    return SplitRule(by="time", column=str(value["column"]), validation_from=float(start), test_from=float(end))


def _label(value: Any, source: str, key: str) -> LabelColumn:
    if isinstance(value, str):
        return LabelColumn(name=value, column=value)
    if not isinstance(value, Mapping) or "name" not in value:
        raise DataConfigError(source, key, f"a column name, or {{name, column, positive}}. Received: {value!r}")
    accepted = ("name", "column", "positive", "times", "observed_where")
    unknown = sorted(set(value) - set(accepted))
    if unknown:
        raise DataConfigError(source, f"{key}.{unknown[0]}", f"unknown. Accepted: {', '.join(accepted)}")
    positive = value.get("positive")
    if positive is not None:
        positive = tuple(str(v) for v in ([positive] if isinstance(positive, (str, int)) else positive))
    other = {}
    for option in ("times", "observed_where"):
        if option in value:
            if not isinstance(value[option], str) or not value[option]:
                raise DataConfigError(source, f"{key}.{option}", f"a column name. Received: {value[option]!r}")
            other[option] = value[option]
    return LabelColumn(
        name=str(value["name"]), column=str(value.get("column", value["name"])), positive=positive, **other
    )
