"""Behaviour sequences from an event log described by a data config (`kind: events`): one
row per event (user, item, time, action), optionally an item table (categories, a
vector per item) and a user table (attributes to predict), in CSV, TSV or Parquet files.

    kind: events
    name: shop                       # default: the file's stem
    events:
      files: events-*.csv            # patterns, relative to this file
      format: csv                    # csv | tsv | parquet (default: csv)
      columns: [user, item, category, action, time]   # names of headerless csv / tsv
      user: user
      item: item
      time: time                     # integer seconds
      action: action
      action_values: [view, fav, cart, buy]           # every action, weakest first
      item_category: category        # optional: the item's category (its first event's)
    items:                           # optional: one row per item
      files: items.csv
      id: item
      categories: genres             # optional: values joined by `separator`
      vector: text_vector            # optional: floats joined by `separator`, one width
    users:                           # optional: one row per user, for attribute tasks
      files: users.parquet
      format: parquet
      id: user
    tasks:
      - {name: buys, target_action: [buy]}                    # the target event's action
      - {name: female, user_column: gender, positive: [F]}    # a user attribute
    liked_actions: [fav, cart, buy]  # the history steps the "liked items" bag holds
    sequence: {length: 20, stride: 1}
    split: {by: time, shares: [0.8, 0.1, 0.1]}   # or {by: user, folds: 5, fold: 0}
    separator: "|"

Every event after a user's first makes one example (every `stride`-th): the user's
`length - 1` previous events, oldest first, then the target event with its action
hidden, as `tfzoo.data.behaviour_sequences` lays out its channels. The action channel is
`action` (ids 1 .. A in `action_values` order); an item's categories make the `genres`
channel and its vector the `title` channel, where the config gives them. Items, users,
categories and actions keep their files' ids: `ItemTables` records them, and the
SUPER-MoE export takes them as the files write them.

The log is grouped per user in memory (events are sorted by user and time). A log beyond
one machine's memory is grouped by an Apache Beam `GroupByKey` on the user first
(docs/data.md), and each user's sequences written as rows.

Bad rows (`on_bad_row`): an event with an empty user or item, a time that is not an
integer, or an action outside `action_values`; an item or user row whose id repeats an
earlier one or is empty, or whose vector cannot be read or has another width. "raise"
names the file, line (or record) and column of the first; "skip" drops each, counts them
per file and reports them. Users absent from the user table, or with an empty attribute,
have that task's label missing (masked).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfzoo.data.behaviour_sequences import ACTION_CHANNEL, sequences_from_events
from tfzoo.data.data_config import DataConfigError, list_of
from tfzoo.data.errors import BadRowPolicy, DataFormatError
from tfzoo.data.ids import client_ids
from tfzoo.data.registry import DatasetSplits, with_tasks
from tfzoo.data.splits import ordered_split, user_fold_split
from tfzoo.data.table_files import TableFiles

SPLIT_RULES = ("time", "user")
_KEYS = (
    "kind",
    "name",
    "events",
    "items",
    "users",
    "tasks",
    "liked_actions",
    "sequence",
    "split",
    "separator",
    "description",
)
_EVENT_KEYS = ("files", "format", "columns", "user", "item", "time", "action", "action_values", "item_category")
_ITEM_KEYS = ("files", "format", "columns", "id", "categories", "vector")
_USER_KEYS = ("files", "format", "columns", "id")


@dataclasses.dataclass(frozen=True)
class EventTask:
    """A binary task: the target event's action is one of `target_action`, or the user's
    `user_column` is one of `positive`."""

    name: str
    target_action: tuple[str, ...] | None = None
    user_column: str | None = None
    positive: tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True)
class EventsConfig:
    """A parsed `kind: events` data config (see the module docstring)."""

    name: str
    events: TableFiles
    user_column: str
    item_column: str
    time_column: str
    action_column: str
    action_values: tuple[str, ...]
    item_category: str | None
    items: TableFiles | None
    item_id: str | None
    item_categories: str | None
    item_vector: str | None
    users: TableFiles | None
    user_id: str | None
    tasks: tuple[EventTask, ...]
    liked_actions: tuple[str, ...]
    length: int = 20
    stride: int = 1
    split_by: str = "time"
    shares: tuple[float, float, float] = (0.8, 0.1, 0.1)
    folds: int = 5
    fold: int = 0
    separator: str = "|"
    source: str = ""
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    kind = "events"

    def run_record(self) -> dict[str, Any]:
        """What a run stores (`RunConfig.data_config`); `parse_data_config` reads it back."""
        return {**self.raw, "name": self.name, "source": self.source}

    @classmethod
    def from_dict(
        cls, raw: Mapping[str, Any], *, source: str = "<data config>", base: str | None = None
    ) -> EventsConfig:
        raw = dict(raw)
        _only(raw, _KEYS, source, "", what="key for kind events")
        stored = dict(raw)
        tables = {}
        for key, accepted in (("events", _EVENT_KEYS), ("items", _ITEM_KEYS), ("users", _USER_KEYS)):
            if key not in raw and key != "events":
                tables[key] = None
                continue
            table = raw.get(key)
            if not isinstance(table, Mapping):
                raise DataConfigError(source, key, f"a mapping with `files`. Received: {table!r}")
            table = dict(table)
            _only(table, accepted, source, key)
            tables[key] = (table, TableFiles.from_config(table, source=source, key=key, base=base))
            stored[key] = {**table, "files": list(tables[key][1].patterns)}
        events, event_files = tables["events"]
        for key in ("user", "item", "time", "action"):
            _column(events, key, source, "events")
        values = events.get("action_values")
        if isinstance(values, (str, int)) or not isinstance(values, Sequence) or not values:
            raise DataConfigError(
                source, "events.action_values", f"the list of every action value, weakest first. Received: {values!r}"
            )
        action_values = tuple(str(v) for v in values)
        if len(set(action_values)) != len(action_values):
            raise DataConfigError(source, "events.action_values", f"each value once. Received: {list(values)}")
        item_category = events.get("item_category")
        if item_category is not None:
            _column(events, "item_category", source, "events")
        item_id = item_categories = item_vector = None
        if tables["items"] is not None:
            items = tables["items"][0]
            item_id = _column(items, "id", source, "items")
            item_categories = items.get("categories") and _column(items, "categories", source, "items")
            item_vector = items.get("vector") and _column(items, "vector", source, "items")
            if item_categories and item_category:
                raise DataConfigError(
                    source, "items.categories", "the categories come from the events or the item table, not both"
                )
        user_id = None
        if tables["users"] is not None:
            user_id = _column(tables["users"][0], "id", source, "users")
        tasks = tuple(
            _task(task, source, f"tasks[{i}]", action_values, user_id is not None)
            for i, task in enumerate(list_of(raw.get("tasks", []), source, "tasks"))
        )
        names = [t.name for t in tasks]
        if not tasks or len(set(names)) != len(names):
            raise DataConfigError(source, "tasks", f"one or more tasks, each name once. Received: {names}")
        liked = raw.get("liked_actions", list(action_values[1:]))
        liked = tuple(str(v) for v in list_of(liked, source, "liked_actions"))
        unknown = [v for v in liked if v not in action_values]
        if unknown:
            raise DataConfigError(source, "liked_actions", f"{unknown} not in action_values {list(action_values)}")
        sequence = raw.get("sequence", {})
        if not isinstance(sequence, Mapping):
            raise DataConfigError(source, "sequence", f"a mapping of length, stride. Received: {sequence!r}")
        _only(sequence, ("length", "stride"), source, "sequence")
        length, stride = sequence.get("length", 20), sequence.get("stride", 1)
        for key, value, low in (("length", length, 2), ("stride", stride, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise DataConfigError(source, f"sequence.{key}", f"an integer >= {low}. Received: {value!r}")
        split = _split(raw.get("split", {"by": "time"}), source)
        separator = raw.get("separator", "|")
        if not isinstance(separator, str) or len(separator) != 1:
            raise DataConfigError(source, "separator", f"one character. Received: {separator!r}")
        return cls(
            name=str(raw.get("name") or Path(source).stem),
            events=event_files,
            user_column=events["user"],
            item_column=events["item"],
            time_column=events["time"],
            action_column=events["action"],
            action_values=action_values,
            item_category=item_category,
            items=tables["items"] and tables["items"][1],
            item_id=item_id,
            item_categories=item_categories or None,
            item_vector=item_vector or None,
            users=tables["users"] and tables["users"][1],
            user_id=user_id,
            tasks=tasks,
            liked_actions=liked,
            length=length,
            stride=stride,
            separator=separator,
            source=source,
            raw=stored,
            **split,
        )

    def describe_split(self, num_rows: int) -> str:
        if self.split_by == "time":
            shares = "/".join(f"{round(100 * s)}" for s in self.shares)
            return f"{self.name}: ordered by target time {shares} of {num_rows} behaviour sequences"
        return f"{self.name}: user-level {self.folds}-fold cross-validation, fold {self.fold}"


def _only(table: Mapping[str, Any], accepted: Sequence[str], source: str, key: str, *, what: str = "unknown") -> None:
    unknown = sorted(set(table) - set(accepted))
    if unknown:
        where = f"{key}.{unknown[0]}" if key else unknown[0]
        raise DataConfigError(source, where, f"{what}. Accepted: {', '.join(accepted)}")


def _column(table: Mapping[str, Any], key: str, source: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise DataConfigError(source, f"{where}.{key}", f"required: a column name. Received: {value!r}")
    return value


def _task(value: Any, source: str, key: str, action_values: tuple[str, ...], has_users: bool) -> EventTask:
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
        raise DataConfigError(source, key, f"needs `name` and `target_action` or `user_column`. Received: {value!r}")
    _only(value, ("name", "target_action", "user_column", "positive"), source, key)

    def texts(option: str) -> tuple[str, ...]:
        given = value[option]
        given = [given] if isinstance(given, (str, int)) else list_of(given, source, f"{key}.{option}")
        if not given:
            raise DataConfigError(source, f"{key}.{option}", "one or more values")
        return tuple(str(v) for v in given)

    if ("target_action" in value) == ("user_column" in value):
        raise DataConfigError(source, key, "exactly one of `target_action` and `user_column`")
    if "target_action" in value:
        if "positive" in value:
            raise DataConfigError(source, f"{key}.positive", "only with `user_column`")
        actions = texts("target_action")
        unknown = [a for a in actions if a not in action_values]
        if unknown:
            raise DataConfigError(
                source, f"{key}.target_action", f"{unknown} not in action_values {list(action_values)}"
            )
        return EventTask(name=value["name"], target_action=actions)
    if not has_users:
        raise DataConfigError(source, f"{key}.user_column", "a user attribute needs a `users` table")
    if "positive" not in value:
        raise DataConfigError(source, f"{key}.positive", "required with `user_column`: the values that mean 1")
    return EventTask(name=value["name"], user_column=str(value["user_column"]), positive=texts("positive"))


def _split(value: Any, source: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or value.get("by") not in SPLIT_RULES:
        raise DataConfigError(
            source, "split", f"{{by: time, shares}} or {{by: user, folds, fold}}. Received: {value!r}"
        )
    if value["by"] == "time":
        _only(value, ("by", "shares"), source, "split")
        shares = value.get("shares", [0.8, 0.1, 0.1])
        if (
            isinstance(shares, str)
            or not isinstance(shares, Sequence)
            or len(shares) != 3
            or not all(isinstance(s, (int, float)) and s >= 0 for s in shares)
            or abs(sum(shares) - 1.0) > 1e-6
        ):
            raise DataConfigError(source, "split.shares", f"three shares >= 0 summing to 1. Received: {shares!r}")
        return {"split_by": "time", "shares": tuple(float(s) for s in shares)}
    _only(value, ("by", "folds", "fold"), source, "split")
    folds, fold = value.get("folds", 5), value.get("fold", 0)
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise DataConfigError(source, "split.folds", f"an integer >= 2. Received: {folds!r}")
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < folds:
        raise DataConfigError(source, "split.fold", f"an integer in [0, {folds}). Received: {fold!r}")
    return {"split_by": "user", "folds": folds, "fold": fold}


@dataclasses.dataclass(frozen=True)
class EventLog:
    """The events of a config's files, kept rows only: ids as the files write them."""

    user: np.ndarray  # [n] text
    item: np.ndarray  # [n] text
    time: np.ndarray  # [n] int64 seconds
    action: np.ndarray  # [n] int64, 1 .. A in `action_values` order
    category: np.ndarray | None  # [n] text ("" = none), with `item_category`
    skipped_rows: int = 0


def read_event_log(config: EventsConfig, *, on_bad_row: BadRowPolicy = "raise") -> EventLog:
    """The event files' rows (see the module docstring for the bad rows)."""
    action_ids = {value: i + 1 for i, value in enumerate(config.action_values)}
    columns = [config.user_column, config.item_column, config.time_column, config.action_column]
    if config.item_category:
        columns.append(config.item_category)
    parts: dict[str, list[np.ndarray]] = {"user": [], "item": [], "time": [], "action": [], "category": []}
    skipped = 0
    # Ids and times that are plain integers are read as numbers (8 bytes an event, not a
    # Python string); the rest as text.
    numeric = tuple(c for c in columns if c != config.action_column)
    for path, values, lines, bad_rows in config.events.read(
        config.source, "events", columns, on_bad_row, integers=numeric
    ):
        users, items = _ids(values[config.user_column]), _ids(values[config.item_column])
        times_text, actions_text = values[config.time_column], values[config.action_column]
        times, readable = _integers(times_text)
        actions = _action_ids(actions_text, action_ids)
        checks = [  # (bad rows, reason of a row, column), in the columns' order
            (_empty(users), lambda row: "empty user id", config.user_column),
            (_empty(items), lambda row: "empty item id", config.item_column),
            (
                ~readable,
                lambda row, texts=times_text: f"expected integer seconds, found {str(texts[row])!r}",
                config.time_column,
            ),
            (
                actions == 0,
                lambda row, texts=actions_text: (
                    f"action {str(texts[row])!r} is not one of {list(config.action_values)}"
                ),
                config.action_column,
            ),
        ]
        faulty = np.any([rows for rows, _, _ in checks], axis=0)
        for row in np.flatnonzero(faulty):  # in file order: "raise" names the first bad row
            _, reason, column = next(check for check in checks if check[0][row])
            bad_rows.handle(DataFormatError(reason(row), path=path, line=int(lines[row]), field=column))
        keep = ~faulty
        parts["user"].append(users[keep])
        parts["item"].append(items[keep])
        parts["time"].append(times[keep])
        parts["action"].append(actions[keep])
        if config.item_category:
            parts["category"].append(_ids(values[config.item_category])[keep])
        bad_rows.report()
        skipped += bad_rows.skipped
    log = {key: _joined(value) if value else None for key, value in parts.items()}
    if not len(log["user"]):
        raise DataFormatError("no events", path=", ".join(config.events.paths(config.source, "events")))
    return EventLog(
        user=log["user"],
        item=log["item"],
        time=log["time"],
        action=log["action"],
        category=log["category"],
        skipped_rows=skipped,
    )


def _ids(values: np.ndarray) -> np.ndarray:
    """An id column: int64 as read (plain integers), else its text stripped."""
    values = np.asarray(values)
    return values if values.dtype.kind == "i" else np.char.strip(values.astype(str))


def _empty(ids: np.ndarray) -> np.ndarray:
    """Where an id column has no id (numbers always have one)."""
    return np.zeros(len(ids), bool) if ids.dtype.kind == "i" else ids == ""


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """The files' parts of one column: numbers where every file's are, else text."""
    if any(part.dtype.kind != parts[0].dtype.kind for part in parts):
        parts = [part.astype(str) for part in parts]
    return np.concatenate(parts)


def _action_ids(texts: np.ndarray, action_ids: Mapping[str, int]) -> np.ndarray:
    """Each event's action as its id (1, 2, ... in `action_values` order; 0: not one)."""
    values, inverse = np.unique(np.asarray(texts).astype(str), return_inverse=True)
    ids = np.array([action_ids.get(value.strip(), 0) for value in values], np.int64)
    return ids[inverse.reshape(-1)]


def _integers(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int64 values, readable mask) of integer texts (or of integers already read as
    such); a row that is not one reads 0."""
    texts = np.asarray(texts)
    if texts.dtype.kind == "i":
        return texts.astype(np.int64), np.ones(len(texts), bool)
    texts = np.char.strip(texts.astype(str))
    try:
        return texts.astype(np.int64), np.ones(len(texts), bool)
    except (ValueError, OverflowError):
        pass  # some text is not an integer: find which, one by one
    values, readable = np.zeros(len(texts), np.int64), np.ones(len(texts), bool)
    for row, text in enumerate(texts):
        try:
            values[row] = int(text)
        except (ValueError, OverflowError):
            readable[row] = False
    return values, readable


def _vocabulary(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(keys, index of each value in keys): the distinct texts in numeric order where they
    are all integers (ids 1, 2, ... keep their order), else in text order."""
    keys, index = np.unique(values, return_inverse=True)
    index = index.reshape(-1)
    if keys.dtype.kind == "i":  # read as numbers: np.unique sorted them already
        return keys.astype(str), index
    numbers = client_ids(keys)
    if numbers.dtype == np.int64:
        order = np.argsort(numbers, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        keys, index = keys[order], rank[index]
    return keys, index


def _table_rows(
    config: EventsConfig,
    table: TableFiles,
    key: str,
    id_column: str,
    columns: list[str],
    on_bad_row: BadRowPolicy,
    check: Callable[[dict[str, str]], tuple[str, str] | None] | None = None,
) -> tuple[dict[str, dict[str, str]], int]:
    """({id: {column: text}} of a side table's rows, the rows skipped): repeated or empty
    ids, and rows `check` finds fault with ((reason, column)), are bad rows."""
    rows: dict[str, dict[str, str]] = {}
    where: dict[str, str] = {}  # id -> "file:line" of its row
    skipped = 0
    what = key[:-1]  # "item", "user"
    for path, values, lines, bad_rows in table.read(config.source, key, [id_column, *columns], on_bad_row):
        ids = [str(v).strip() for v in values[id_column]]
        for row, identifier in enumerate(ids):
            fields = {c: str(values[c][row]) for c in columns}
            if not identifier:
                problem = (f"empty {what} id", id_column)
            elif identifier in rows:
                problem = (f"{what} {identifier!r} has a row already, at {where[identifier]}", id_column)
            else:
                problem = check(fields) if check else None
            if problem:
                bad_rows.handle(DataFormatError(problem[0], path=path, line=int(lines[row]), field=problem[1]))
                continue
            rows[identifier] = fields
            where[identifier] = f"{path}:{int(lines[row])}"
        bad_rows.report()
        skipped += bad_rows.skipped
    return rows, skipped


def _item_side(
    config: EventsConfig, log: EventLog, item_keys: np.ndarray, item_index: np.ndarray, on_bad_row: BadRowPolicy
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None, int]:
    """(genres [I + 1, G] or None, title [I + 1, P] or None, category keys or None, rows skipped)."""
    num_items = len(item_keys)
    if config.item_category:
        # Each item's category: that of its first event in the files.
        _, first = np.unique(item_index, return_index=True)
        first_category = log.category[first]  # [num_items] in item id order
        known = ~_empty(first_category)
        category_keys, category_index = _vocabulary(first_category[known])
        genres = np.zeros((num_items + 1, 1), np.int64)
        genres[1:][known, 0] = category_index + 1
        return genres, None, category_keys, 0
    if config.items is None:
        return None, None, None, 0
    columns = [c for c in (config.item_categories, config.item_vector) if c]
    widths: list[int] = []  # the vectors' width: that of the first readable row

    def vector_fault(fields: dict[str, str]) -> tuple[str, str] | None:
        if not config.item_vector:
            return None
        text = fields[config.item_vector]
        try:
            vector = np.array([float(t) for t in text.split(config.separator)], np.float64)
        except ValueError:
            vector = None
        if vector is not None and np.isfinite(vector).all() and (not widths or len(vector) == widths[0]):
            widths[:] = widths or [len(vector)]
            return None
        expected = f"{widths[0]} numbers" if widths else "numbers"
        return f"expected {expected} joined by {config.separator!r}, found {text!r}", config.item_vector

    table, skipped = _table_rows(config, config.items, "items", config.item_id, columns, on_bad_row, vector_fault)
    index = {key: i + 1 for i, key in enumerate(item_keys)}
    described = [(index[item], fields) for item, fields in table.items() if item in index]
    genres = title = category_keys = None
    if config.item_categories:
        lists = [
            (row, [t.strip() for t in fields[config.item_categories].split(config.separator) if t.strip()])
            for row, fields in described
        ]
        category_keys, _ = _vocabulary(np.array(sorted({t for _, values in lists for t in values}), dtype=str))
        position = {key: i + 1 for i, key in enumerate(category_keys)}
        genres = np.zeros((num_items + 1, max([len(v) for _, v in lists] + [1])), np.int64)
        for row, values in lists:
            genres[row, : len(values)] = [position[v] for v in values]
    if config.item_vector:
        title = np.zeros((num_items + 1, widths[0] if widths else 1), np.float32)
        for row, fields in described:
            title[row] = [float(t) for t in fields[config.item_vector].split(config.separator)]
    return genres, title, category_keys, skipped


def _user_labels(
    config: EventsConfig, user_keys: np.ndarray, on_bad_row: BadRowPolicy
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], int]:
    """({task: 0/1 per user id}, {task: observed 0/1 per user id}, rows skipped), user id
    = 1 + the user's index in `user_keys` (0 unused)."""
    tasks = [t for t in config.tasks if t.user_column]
    if not tasks:
        return {}, {}, 0
    columns = list(dict.fromkeys(t.user_column for t in tasks))
    table, skipped = _table_rows(config, config.users, "users", config.user_id, columns, on_bad_row)
    labels, masks = {}, {}
    for task in tasks:
        label = np.zeros(len(user_keys) + 1, np.float32)
        mask = np.zeros(len(user_keys) + 1, np.float32)
        for i, key in enumerate(user_keys):
            value = table.get(key, {}).get(task.user_column, "").strip()
            if value:
                label[i + 1], mask[i + 1] = float(value in task.positive), 1.0
        labels[task.name], masks[task.name] = label, mask
    return labels, masks, skipped


def event_sequence_splits(
    config: EventsConfig,
    *,
    split_seed: int,
    tasks: Sequence[str] | None = None,
    on_bad_row: BadRowPolicy = "raise",
) -> DatasetSplits:
    """The behaviour sequences of `config`'s event log, split by its rule (the user folds
    dealt with `split_seed`), labelled with `tasks` (default: every task of the config),
    as a `DatasetSplits` whose `vocabularies` hold the files' ids of the items, actions,
    users and categories (`genres`)."""
    log = read_event_log(config, on_bad_row=on_bad_row)
    user_keys, user_index = _vocabulary(log.user)
    item_keys, item_index = _vocabulary(log.item)
    genres, title, category_keys, skipped_items = _item_side(config, log, item_keys, item_index, on_bad_row)
    user_labels, user_masks, skipped_users = _user_labels(config, user_keys, on_bad_row)
    target_labels = {
        t.name: np.isin(log.action, [config.action_values.index(a) + 1 for a in t.target_action]).astype(np.float32)
        for t in config.tasks
        if t.target_action
    }
    liked_ids = [config.action_values.index(a) + 1 for a in config.liked_actions]
    data, _ = sequences_from_events(
        user_id=user_index.astype(np.int64) + 1,
        item_id=item_index.astype(np.int64) + 1,
        action=log.action,
        timestamp=log.time,
        liked=np.isin(log.action, liked_ids),
        num_items=len(item_keys),
        num_actions=len(config.action_values),
        action_channel=ACTION_CHANNEL,
        item_genres=genres,
        item_titles=title,
        target_labels=target_labels,
        user_labels=user_labels,
        user_label_masks=user_masks,
        task_order=[t.name for t in config.tasks],
        length=config.length,
        stride=config.stride,
        source=config.source,
    )
    if config.split_by == "time":
        train, validation, test = ordered_split(data, data.features["timestamp"], config.shares)
        split = config.describe_split(len(data))
    else:
        (train, validation, test), users = user_fold_split(
            data, data.features["user_id"], fold=config.fold, folds=config.folds, seed=split_seed
        )
        split = (
            f"{config.describe_split(len(data))} (users dealt with seed {split_seed}): test {users['test']} users, "
            f"validation {users['validation']}, train {users['train']}"
        )
    skipped = log.skipped_rows + skipped_items + skipped_users
    if skipped:
        split += f"; {skipped} bad row(s) skipped (on_bad_row=skip)"
    keys = {"item": item_keys, "action": np.array(config.action_values, dtype=str), "user": user_keys}
    if category_keys is not None:
        keys["genres"] = category_keys
    return DatasetSplits(*with_tasks((train, validation, test), tasks), split, vocabularies=keys)
