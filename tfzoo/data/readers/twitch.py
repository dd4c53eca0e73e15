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

import csv
import json
from pathlib import Path

import numpy as np

from tfzoo.data.errors import BadRowPolicy, BadRows, DataFormatError
from tfzoo.data.friend_graph import FriendGraph, MultiHotFeatures

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
        raise FileNotFoundError(f"{path} is not a directory; expected a Twitch region folder such as .../twitch_musae/DE")
    if region is None:
        found = sorted(p.name[: -len("_edges.csv")] for p in path.glob("*_edges.csv"))
        if len(found) != 1:
            raise FileNotFoundError(
                f"{path}: expected exactly one <REGION>_edges.csv (with <REGION>.json and <REGION>_target.csv); "
                f"found {len(found)}. Pass region=... to choose.")
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


def _check_header(path: Path, header: list[str] | None, expected: tuple[str, ...]) -> None:
    if header is None or [h.strip() for h in header] != list(expected):
        raise DataFormatError(f"expected the header {','.join(expected)!r}, found {','.join(header or [])!r}",
                              path=str(path), line=1)


def _read_targets(path: Path, bad_rows: BadRows) -> tuple[int, dict[str, np.ndarray]]:
    with open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    if not rows:
        raise DataFormatError("empty file; expected a header and one row per user", path=str(path), line=1)
    _check_header(path, rows[0], _TARGET_COLUMNS)
    body = [(number, row) for number, row in enumerate(rows[1:], start=2) if row]
    num_users = len(body)
    targets = {name: np.full(num_users, np.nan) for name in ("twitch_id", "days", "mature", "views", "partner")}
    seen = np.zeros(num_users, bool)
    for number, row in body:
        try:
            if len(row) != len(_TARGET_COLUMNS):
                raise DataFormatError(f"expected {len(_TARGET_COLUMNS)} comma-separated fields, found {len(row)}",
                                      path=str(path), line=number)
            fields = dict(zip(_TARGET_COLUMNS, (f.strip() for f in row)))
            node = _integer(fields["new_id"], path=path, line=number, field="new_id", upper=num_users)
            if seen[node]:
                raise DataFormatError(f"node {node} is described twice", path=str(path), line=number, field="new_id")
            values = {"twitch_id": _integer(fields["id"], path=path, line=number, field="id")}
            for name in ("days", "views"):
                values[name] = _integer(fields[name], path=path, line=number, field=name)
            for name in ("mature", "partner"):
                if fields[name] not in _BOOLEANS:
                    raise DataFormatError(f"expected True or False, found {fields[name]!r}", path=str(path),
                                          line=number, field=name)
                values[name] = _BOOLEANS[fields[name]]
        except DataFormatError as error:
            bad_rows.handle(error)
            continue
        seen[node] = True
        for name, value in values.items():
            targets[name][node] = value
    return num_users, targets


def _json_line(text: str, key: str) -> int | None:
    position = text.find(f'"{key}"')
    return None if position < 0 else text.count("\n", 0, position) + 1


def _read_features(path: Path, num_users: int, feature_dim: int, bad_rows: BadRows) -> tuple[np.ndarray, np.ndarray]:
    text = path.read_text(encoding="utf-8")
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataFormatError(f"not valid JSON: {error.msg} (column {error.colno})", path=str(path),
                              line=error.lineno) from None
    if not isinstance(entries, dict):
        raise DataFormatError(f"expected an object mapping node ids to feature lists, found {type(entries).__name__}",
                              path=str(path), line=1)
    per_user: list[np.ndarray | None] = [None] * num_users
    for key, value in entries.items():
        line = None  # found only for a bad entry: searching the text for every key is quadratic
        try:
            node = _integer(key, path=path, line=line, field="node id", upper=num_users)
            if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                raise DataFormatError("expected a list of integer feature indices", path=str(path), line=line,
                                      field=f"node {key}")
            indices = np.unique(np.asarray(value, np.int64))
            if len(indices) and (indices[0] < 0 or indices[-1] >= feature_dim):
                bad = indices[0] if indices[0] < 0 else indices[-1]
                raise DataFormatError(f"feature index {bad} is outside [0, {feature_dim})", path=str(path), line=line,
                                      field=f"node {key}")
        except DataFormatError as error:
            bad_rows.handle(DataFormatError(error.reason, path=error.path, line=_json_line(text, key), field=error.field))
            continue
        per_user[node] = indices
    lengths = np.array([0 if f is None else len(f) for f in per_user], np.int64)
    splits = np.zeros(num_users + 1, np.int64)
    np.cumsum(lengths, out=splits[1:])
    present = [f for f in per_user if f is not None and len(f)]
    indices = np.concatenate(present).astype(np.int32) if present else np.zeros(0, np.int32)
    return splits, indices


def _read_edges(path: Path, num_users: int, bad_rows: BadRows) -> np.ndarray:
    edges = []
    with open(path, newline="", encoding="utf-8") as file:
        reader = csv.reader(file)
        _check_header(path, next(reader, None), ("from", "to"))
        for number, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                if len(row) != 2:
                    raise DataFormatError(f"expected 2 comma-separated fields, found {len(row)}", path=str(path),
                                          line=number)
                u = _integer(row[0].strip(), path=path, line=number, field="from", upper=num_users)
                v = _integer(row[1].strip(), path=path, line=number, field="to", upper=num_users)
                if u == v:
                    raise DataFormatError(f"self-loop on node {u}", path=str(path), line=number, field="to")
            except DataFormatError as error:
                bad_rows.handle(error)
                continue
            edges.append((u, v))
    return np.asarray(edges, np.int64).reshape(-1, 2)


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
    checked = {name: BadRows(on_bad_row, str(file))
               for name, file in (("targets", targets_path), ("features", features_path), ("edges", edges_path))}
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

