"""Twitch social networks (MUSAE) in their folder format, one folder per region.

```
<R>/<R>_edges.csv    header `from,to`: one mutual-follower friendship per row (node ids)
<R>/<R>.json         {"<node id>": [feature index, ...], ...}: multi-hot node features
<R>/<R>_target.csv   header `id,days,mature,views,partner,new_id`: one user per row;
                     `new_id` is the node id used by the other two files
```

The node features are 3,170 binary indicators shared by all regions (games played and
liked, location, streaming habits); the largest index in DE, ENGB and ES is 3169. Some
feature lists repeat an index; a multi-hot row holds it once. The data are GPL-licensed
and are read from a path, never shipped with tfzoo.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tfzoo.data.errors import BadRowPolicy, BadRows, DataFormatError
from tfzoo.data.friend_graph import FriendGraph, MultiHotFeatures
from tfzoo.data.readers._fields import RowErrors, parse_integers, split_fields

TWITCH_FEATURE_DIM = 3170
TWITCH_FEATURES = MultiHotFeatures(
    dim=TWITCH_FEATURE_DIM,
    description="MUSAE Twitch user features: 3,170 binary indicators (games played and liked, location, "
    "streaming habits), shared by all regions",
)
_TARGET_COLUMNS = ("id", "days", "mature", "views", "partner", "new_id")
_BOOLEANS = {"True": 1.0, "False": 0.0, "true": 1.0, "false": 0.0}


def _region_files(path: Path, region: str | None) -> tuple[str, Path, Path, Path]:
    if not path.is_dir():
        raise FileNotFoundError(
            f"{path} is not a directory; expected a Twitch region folder such as .../twitch_musae/DE"
        )
    if region is None:
        found = sorted(p.name[: -len("_edges.csv")] for p in path.glob("*_edges.csv"))
        if len(found) != 1:
            raise FileNotFoundError(
                f"{path}: expected exactly one <REGION>_edges.csv (with <REGION>.json and <REGION>_target.csv); "
                f"found {len(found)}. Pass region=... to choose."
            )
        region = found[0]
    files = (path / f"{region}_edges.csv", path / f"{region}.json", path / f"{region}_target.csv")
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"Twitch region {region!r}: missing {', '.join(missing)}")
    return (region, *files)


def _integer(text: str, *, path: Path, line: int, field: str, upper: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise DataFormatError(f"expected an integer, found {text!r}", path=str(path), line=line, field=field) from None
    if value < 0 or (upper is not None and value >= upper):
        bounds = f"in [0, {upper})" if upper is not None else ">= 0"
        raise DataFormatError(f"must be {bounds}, found {value}", path=str(path), line=line, field=field)
    return value


def _lines(path: Path) -> list[str]:
    # Split on "\n" only (as the other readers): str.splitlines() also breaks at other
    # control characters.
    return [line.rstrip("\r") for line in path.read_text(encoding="utf-8").split("\n")]


def _check_header(path: Path, header: str, expected: tuple[str, ...]) -> None:
    if [h.strip() for h in header.split(",")] != list(expected):
        raise DataFormatError(f"expected the header {','.join(expected)!r}, found {header!r}", path=str(path), line=1)


def _read_targets(path: Path, bad_rows: BadRows) -> tuple[int, dict[str, np.ndarray]]:
    lines = _lines(path)
    if not lines or not lines[0].strip():
        raise DataFormatError("empty file; expected a header and one row per user", path=str(path), line=1)
    _check_header(path, lines[0], _TARGET_COLUMNS)
    num_users = sum(1 for line in lines[1:] if line.strip())
    errors = RowErrors(str(path))
    table, numbers = split_fields(lines[1:], 2, separator=",", num_fields=len(_TARGET_COLUMNS), errors=errors)
    table = np.vectorize(str.strip, otypes=[object])(table) if len(table) else table
    integers = parse_integers(table[:, [0, 1, 3, 5]], ("id", "days", "views", "new_id"), numbers, errors, low=0)
    node = integers[:, 3]
    for row in np.flatnonzero(node >= num_users):
        errors.add(
            numbers[row], f"expected an integer in [0, {num_users - 1}] (one node per row), found {node[row]}", "new_id"
        )
    _, first = np.unique(node, return_index=True)
    for row in np.setdiff1d(np.arange(len(node)), first):
        errors.add(numbers[row], f"node {node[row]} is described twice", "new_id")
    flags = np.zeros((len(table), 2))
    for column, name in ((2, "mature"), (4, "partner")):
        values = table[:, column]
        for row in np.flatnonzero(~np.isin(values, list(_BOOLEANS))):
            errors.add(numbers[row], f"expected True or False, found {values[row]!r}", name)
        flags[:, 0 if name == "mature" else 1] = [_BOOLEANS.get(v, np.nan) for v in values]
    keep = errors.settle(bad_rows, numbers)
    targets = {name: np.full(num_users, np.nan) for name in ("twitch_id", "days", "mature", "views", "partner")}
    nodes = node[keep]
    for name, values in (
        ("twitch_id", integers[:, 0]),
        ("days", integers[:, 1]),
        ("views", integers[:, 2]),
        ("mature", flags[:, 0]),
        ("partner", flags[:, 1]),
    ):
        targets[name][nodes] = values[keep]
    return num_users, targets


def _json_line(text: str, key: str) -> int | None:
    position = text.find(f'"{key}"')
    return None if position < 0 else text.count("\n", 0, position) + 1


def _read_features(path: Path, num_users: int, feature_dim: int, bad_rows: BadRows) -> tuple[np.ndarray, np.ndarray]:
    text = path.read_text(encoding="utf-8")
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataFormatError(
            f"not valid JSON: {error.msg} (column {error.colno})", path=str(path), line=error.lineno
        ) from None
    if not isinstance(entries, dict):
        raise DataFormatError(
            f"expected an object mapping node ids to feature lists, found {type(entries).__name__}",
            path=str(path),
            line=1,
        )
    per_user: list[np.ndarray | None] = [None] * num_users
    for key, value in entries.items():
        line = None  # found only for a bad entry: searching the text for every key is quadratic
        try:
            node = _integer(key, path=path, line=line, field="node id", upper=num_users)
            if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                raise DataFormatError(
                    "expected a list of integer feature indices", path=str(path), line=line, field=f"node {key}"
                )
            indices = np.unique(np.asarray(value, np.int64))
            if len(indices) and (indices[0] < 0 or indices[-1] >= feature_dim):
                bad = indices[0] if indices[0] < 0 else indices[-1]
                raise DataFormatError(
                    f"feature index {bad} is outside [0, {feature_dim})", path=str(path), line=line, field=f"node {key}"
                )
        except DataFormatError as error:
            bad_rows.handle(
                DataFormatError(error.reason, path=error.path, line=_json_line(text, key), field=error.field)
            )
            continue
        per_user[node] = indices
    lengths = np.array([0 if f is None else len(f) for f in per_user], np.int64)
    splits = np.zeros(num_users + 1, np.int64)
    np.cumsum(lengths, out=splits[1:])
    present = [f for f in per_user if f is not None and len(f)]
    indices = np.concatenate(present).astype(np.int32) if present else np.zeros(0, np.int32)
    return splits, indices


def _read_edges(path: Path, num_users: int, bad_rows: BadRows) -> np.ndarray:
    lines = _lines(path)
    _check_header(path, lines[0] if lines else "", ("from", "to"))
    errors = RowErrors(str(path))
    table, numbers = split_fields(lines[1:], 2, separator=",", num_fields=2, errors=errors)
    edges = parse_integers(table, ("from", "to"), numbers, errors, low=0, high=num_users - 1)
    for row in np.flatnonzero(edges[:, 0] == edges[:, 1]):
        errors.add(numbers[row], f"self-loop on node {edges[row, 0]}", "to")
    return edges[errors.settle(bad_rows, numbers)].reshape(-1, 2)


def read_twitch(
    path: str | Path,
    *,
    region: str | None = None,
    feature_dim: int = TWITCH_FEATURE_DIM,
    on_bad_row: BadRowPolicy = "raise",
) -> FriendGraph:
    """Reads one Twitch region (DE, ENGB, ES, ...) into a `FriendGraph`.

    Args:
      path: the region folder holding `<R>_edges.csv`, `<R>.json` and `<R>_target.csv`.
      region: the file prefix `<R>`; default: the one `*_edges.csv` in the folder.
      feature_dim: width of the multi-hot features (3,170 for MUSAE Twitch).
      on_bad_row: "raise" stops at the first malformed row with a `DataFormatError`
        naming file, line and field; "skip" drops such rows (a skipped node keeps no
        features, a skipped target row leaves NaN targets) and counts them in
        `skipped_rows`.

    Returns:
      A `FriendGraph` with one user per row of the target file (node id = `new_id`),
      friendships deduplicated and undirected, and node targets `twitch_id`, `days`,
      `mature`, `views`, `partner`.
    """
    region, edges_path, features_path, targets_path = _region_files(Path(path), region)
    checked = {
        name: BadRows(on_bad_row, str(file))
        for name, file in (("targets", targets_path), ("features", features_path), ("edges", edges_path))
    }
    num_users, targets = _read_targets(targets_path, checked["targets"])
    feature_splits, feature_indices = _read_features(features_path, num_users, feature_dim, checked["features"])
    edges = _read_edges(edges_path, num_users, checked["edges"])
    for bad_rows in checked.values():
        bad_rows.report()
    return FriendGraph(
        num_users=num_users,
        edges=edges,
        feature_splits=feature_splits,
        feature_indices=feature_indices,
        features=MultiHotFeatures(dim=feature_dim, description=f"{TWITCH_FEATURES.description}; region {region}"),
        node_targets=targets,
        source=str(Path(path)),
        skipped_rows=sum(bad_rows.skipped for bad_rows in checked.values()),
    )
