"""MovieLens 100K (GroupLens `ml-100k` folder) and the ranking data built from it.

Two layers, because models build different data from the same files:

- `read_movielens_100k` reads and validates the raw tables (`u.data`, `u.user`,
  `u.item`, `u.genre`, `u.occupation`, optional title embeddings) into NumPy columns;
- `movielens_ranking_data` turns them into one `TabularData` row per rating, with the
  user's earlier ratings as a behaviour sequence:

| task   | label        |
| ------ | ------------ |
| `like` | rating >= 4  |
| `love` | rating == 5  |

| feature           | kind                            | from                                     |
| ----------------- | ------------------------------- | ---------------------------------------- |
| `user_id`         | id                              | `u.data`                                 |
| `item_id`         | id                              | `u.data`                                 |
| `gender`          | categorical (F, M)              | `u.user`                                 |
| `occupation`      | categorical (`u.occupation`)    | `u.user`                                 |
| `age_group`       | categorical (`AGE_GROUPS`)      | `u.user` age, bucketed as in MovieLens 1M |
| `zip_prefix`      | categorical (learned)           | first character of the zip code          |
| `genres`          | sequence of categorical, <= 6   | `u.item` genre flags, in `u.genre` order |
| `release_year`    | numeric (NaN when unknown)      | `u.item` release date                    |
| `history`         | sequence of item ids            | the user's earlier ratings (see below)   |
| `history_rating`  | sequence of numbers             | their ratings, aligned with `history`    |
| `title_embedding` | embedding (when available)      | precomputed title / genres text vectors  |

`history` holds the items the user rated before this rating, oldest first and most
recent last, at most `history_length` of them; ratings with equal timestamps count in
file order, so neither the current rating nor any later one leaks into it. `timestamp`
stays in `TabularData.features` as an extra column (not in the spec) for
`tfzoo.data.ordered_split`.

Age groups (the MovieLens 1M buckets): under 18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+.

GroupLens' licence forbids redistributing the data (and commercial use): tfzoo reads it
from a path and ships none of it. Cite Harper & Konstan, ACM TiiS 5(4), 2015.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from tfzoo.data.errors import BadRowPolicy, BadRows, DataFormatError
from tfzoo.data.features import (
    CategoricalFeature,
    DatasetSpec,
    EmbeddingFeature,
    IdFeature,
    NumericFeature,
    SequenceFeature,
)
from tfzoo.data.readers._fields import RowErrors, parse_binary, parse_integers, split_fields
from tfzoo.data.tabular import TabularData

MOVIELENS_TASKS = ("like", "love")
AGE_GROUPS = ("under_18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+")
_AGE_GROUP_LOWER_BOUNDS = np.array([0, 18, 25, 35, 45, 50, 56])
GENDERS = ("F", "M")
MAX_GENRES = 6  # the most genres any ML-100K item has
MAX_AGE = 120
_RELEASE_DATE = re.compile(r"\d{1,2}-[A-Za-z]{3}-(\d{4})")
_EMBEDDING_IDS_SUFFIX = "_item_ids.npy"


@dataclasses.dataclass
class MovieLens100K:
    """The raw tables of an `ml-100k` folder as NumPy columns.

    Attributes:
      ratings: `user_id`, `item_id`, `rating` (1-5), `timestamp` (Unix seconds), all
        int64, in `u.data` order.
      users: `user_id`, `age` (int64), `gender` ("F"/"M"), `occupation`, `zip_code`
        (str), in `u.user` order.
      items: `item_id` (int64), `title` (str), `release_year` (float32, NaN when
        unknown), `genres` (a tuple of genre names per item), in `u.item` order.
      genre_names: the genres of `u.genre`, in flag order.
      occupations: the occupations of `u.occupation`.
      title_embeddings: float32 [num_items + 1, dim]; row i is item i, row 0 (and any id
        absent from `u.item`) zeros. None without an embeddings directory.
      source: the folder read.
      skipped_rows: rows dropped by `on_bad_row="skip"`, all files together.
    """

    ratings: dict[str, np.ndarray]
    users: dict[str, np.ndarray]
    items: dict[str, np.ndarray]
    genre_names: tuple[str, ...]
    occupations: tuple[str, ...]
    title_embeddings: np.ndarray | None = None
    source: str = ""
    skipped_rows: int = 0

    @property
    def num_users(self) -> int:
        """The largest user id (ids run from 1)."""
        return int(self.users["user_id"].max(initial=0))

    @property
    def num_items(self) -> int:
        """The largest item id (ids run from 1)."""
        return int(self.items["item_id"].max(initial=0))


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"MovieLens file not found: {path}")
    # The files are latin-1 (u.item titles). Split on "\n" only: str.splitlines() would
    # also break lines at latin-1 control characters.
    return [line.rstrip("\r") for line in path.read_text(encoding="latin-1").split("\n")]


def _read_genres(path: Path) -> tuple[str, ...]:
    """`u.genre`: `name|index` lines, indices 0, 1, ... in order (blank lines ignored)."""
    names = []
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        name, _, index = line.partition("|")
        if not name or index.strip() != str(len(names)):
            raise DataFormatError(
                f"expected 'name|{len(names)}' (genre indices run 0, 1, ... in order), found {line!r}",
                path=str(path),
                line=number,
                field="index",
            )
        names.append(name)
    if not names:
        raise DataFormatError("no genres listed", path=str(path))
    return tuple(names)


def _read_occupations(path: Path) -> tuple[str, ...]:
    """`u.occupation`: one occupation per line (blank lines ignored)."""
    occupations: list[str] = []
    for number, line in enumerate(_lines(path), start=1):
        name = line.strip()
        if not name:
            continue
        if name in occupations:
            raise DataFormatError(f"duplicate occupation {name!r}", path=str(path), line=number, field="occupation")
        occupations.append(name)
    if not occupations:
        raise DataFormatError("no occupations listed", path=str(path))
    return tuple(occupations)


def _check_unique_ids(ids: np.ndarray, numbers: np.ndarray, field: str, errors: RowErrors) -> None:
    """Flags every repetition of an id after its first row."""
    _, first = np.unique(ids, return_index=True)
    repeated = np.ones(len(ids), bool)
    repeated[first] = False
    first_line = dict(zip(ids[first].tolist(), numbers[first].tolist()))
    for row in np.flatnonzero(repeated):
        errors.add(numbers[row], f"duplicate {field} {ids[row]} (first on line {first_line[ids[row]]})", field)


def _read_users(path: Path, occupations: tuple[str, ...], bad_rows: BadRows) -> dict[str, np.ndarray]:
    errors = RowErrors(str(path))
    table, numbers = split_fields(_lines(path), 1, separator="|", num_fields=5, errors=errors)
    user_id = parse_integers(table[:, 0:1], ("user_id",), numbers, errors, low=1)[:, 0]
    age = parse_integers(table[:, 1:2], ("age",), numbers, errors, low=0, high=MAX_AGE)[:, 0]
    gender, occupation = table[:, 2], table[:, 3]
    for row in np.flatnonzero(~np.isin(gender, GENDERS)):
        errors.add(numbers[row], f"expected 'M' or 'F', found {gender[row]!r}", "gender")
    for row in np.flatnonzero(~np.isin(occupation, occupations)):
        errors.add(numbers[row], f"occupation {occupation[row]!r} is not listed in u.occupation", "occupation")
    _check_unique_ids(user_id, numbers, "user_id", errors)
    keep = errors.settle(bad_rows, numbers)
    return {
        "user_id": user_id[keep],
        "age": age[keep],
        "gender": gender[keep],
        "occupation": occupation[keep],
        "zip_code": table[keep, 4],
    }


def _read_items(path: Path, genre_names: tuple[str, ...], bad_rows: BadRows) -> dict[str, np.ndarray]:
    errors = RowErrors(str(path))
    num_fields = 5 + len(genre_names)
    table, numbers = split_fields(_lines(path), 1, separator="|", num_fields=num_fields, errors=errors)
    item_id = parse_integers(table[:, 0:1], ("item_id",), numbers, errors, low=1)[:, 0]
    flags = parse_binary(table[:, 5:], genre_names, numbers, errors).astype(bool)  # [items, genres]
    release_year = np.full(len(table), np.nan, np.float32)
    for row, date in enumerate(table[:, 2]):  # one per item (1,682): a plain loop is cheap
        if not date:
            continue
        match = _RELEASE_DATE.fullmatch(date)
        if match is None:
            errors.add(numbers[row], f"expected a date like '01-Jan-1995' or nothing, found {date!r}", "release_date")
        else:
            release_year[row] = float(match.group(1))
    _check_unique_ids(item_id, numbers, "item_id", errors)
    keep = errors.settle(bad_rows, numbers)
    names = np.array(genre_names, dtype=object)
    genres = np.empty(int(keep.sum()), dtype=object)  # [items] of tuples
    for row, item_flags in enumerate(flags[keep]):
        genres[row] = tuple(names[item_flags])
    return {
        "item_id": item_id[keep],
        "title": table[keep, 1],
        "release_year": release_year[keep],
        "genres": genres,
    }


def _read_ratings(path: Path, user_ids: np.ndarray, item_ids: np.ndarray, bad_rows: BadRows) -> dict[str, np.ndarray]:
    errors = RowErrors(str(path))
    table, numbers = split_fields(_lines(path), 1, separator="\t", num_fields=4, errors=errors)
    user_id = parse_integers(table[:, 0:1], ("user_id",), numbers, errors)[:, 0]
    item_id = parse_integers(table[:, 1:2], ("item_id",), numbers, errors)[:, 0]
    rating = parse_integers(table[:, 2:3], ("rating",), numbers, errors, low=1, high=5)[:, 0]
    timestamp = parse_integers(table[:, 3:4], ("timestamp",), numbers, errors, low=0)[:, 0]
    references = ((user_id, user_ids, "user_id", "u.user"), (item_id, item_ids, "item_id", "u.item"))
    for ids, known, field, source in references:
        for row in np.flatnonzero(~np.isin(ids, known)):
            errors.add(numbers[row], f"{field} {ids[row]} is not in {source}", field)
    keep = errors.settle(bad_rows, numbers)
    return {"user_id": user_id[keep], "item_id": item_id[keep], "rating": rating[keep], "timestamp": timestamp[keep]}


def _load_array(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise DataFormatError(f"not a readable .npy array ({error})", path=str(path)) from error


def _read_title_embeddings(directory: Path, item_ids: np.ndarray, bad_rows: BadRows) -> np.ndarray:
    """The `<name>.npy` [rows, dim] + `<name>_item_ids.npy` [rows] pair of `directory`."""
    if not directory.is_dir():
        raise FileNotFoundError(f"Embeddings directory not found: {directory}")
    pairs = [
        (directory / (ids.name[: -len(_EMBEDDING_IDS_SUFFIX)] + ".npy"), ids)
        for ids in sorted(directory.glob("*" + _EMBEDDING_IDS_SUFFIX))
    ]
    pairs = [(vectors, ids) for vectors, ids in pairs if vectors.is_file()]
    if len(pairs) != 1:
        raise DataFormatError(
            f"expected one '<name>.npy' + '<name>{_EMBEDDING_IDS_SUFFIX}' pair of files, "
            f"found {[v.name for v, _ in pairs]}",
            path=str(directory),
        )
    vectors_path, ids_path = pairs[0]
    vectors, ids = _load_array(vectors_path), _load_array(ids_path)
    if vectors.ndim != 2 or vectors.dtype.kind != "f":
        raise DataFormatError(
            f"expected a float [items, dim] array, found {vectors.dtype} {vectors.shape}", path=str(vectors_path)
        )
    if ids.ndim != 1 or ids.dtype.kind not in "iu" or len(ids) != len(vectors):
        raise DataFormatError(
            f"expected {len(vectors)} integer item ids (one per row of {vectors_path.name}), "
            f"found {ids.dtype} {ids.shape}",
            path=str(ids_path),
            field="item_id",
        )
    ids = ids.astype(np.int64)
    non_finite = np.flatnonzero(~np.all(np.isfinite(vectors), axis=1))
    if len(non_finite):
        row = non_finite[0]
        raise DataFormatError(f"row {row} (item_id {ids[row]}) holds a non-finite value", path=str(vectors_path))
    unique_ids, first = np.unique(ids, return_index=True)
    if len(unique_ids) != len(ids):
        repeated = sorted(set(np.delete(ids, first).tolist()))
        raise DataFormatError(f"duplicate item ids {repeated[:10]}", path=str(ids_path), field="item_id")
    known = np.isin(ids, item_ids)
    for row in np.flatnonzero(~known):
        bad_rows.handle(
            DataFormatError(f"row {row}: item_id {ids[row]} is not in u.item", path=str(ids_path), field="item_id")
        )
    absent = item_ids[~np.isin(item_ids, ids)]
    if len(absent):
        raise DataFormatError(
            f"{len(absent)} item(s) of u.item have no embedding, e.g. item_id {absent[:10].tolist()}",
            path=str(ids_path),
            field="item_id",
        )
    table = np.zeros((int(item_ids.max(initial=0)) + 1, vectors.shape[1]), np.float32)
    table[ids[known]] = vectors[known]
    return table


def read_movielens_100k(
    path: str | Path, *, embeddings_dir: str | Path | None = None, on_bad_row: BadRowPolicy = "raise"
) -> MovieLens100K:
    """Reads and validates an `ml-100k` folder.

    Args:
      path: the folder holding `u.data`, `u.user`, `u.item`, `u.genre` and `u.occupation`.
      embeddings_dir: optional folder holding one `<name>.npy` (float [items, dim]) and
        `<name>_item_ids.npy` (the item id of each row) pair, e.g. text embeddings of
        the titles; every item of `u.item` needs a row, and a row of an unlisted item
        is a bad row.
      on_bad_row: "raise" stops at the first malformed row with a `DataFormatError`
        naming file, line and field; "skip" drops such rows (and ratings of skipped
        users or items) and counts them in `skipped_rows`. Malformed: another number of
        fields; a non-integer or out-of-range id, age (0-120), rating (1-5) or timestamp
        (>= 0); a duplicate id; a gender other than M/F; an occupation absent from
        `u.occupation`; a release date not like `01-Jan-1995`; a genre flag other than 0/1;
        a rating of a user or item that is not listed.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"MovieLens 100K folder not found: {folder}")
    genre_names = _read_genres(folder / "u.genre")
    occupations = _read_occupations(folder / "u.occupation")
    policies: list[BadRows] = []

    def policy(path: Path) -> BadRows:
        policies.append(BadRows(on_bad_row, str(path)))  # one per file, for its messages
        return policies[-1]

    users = _read_users(folder / "u.user", occupations, policy(folder / "u.user"))
    items = _read_items(folder / "u.item", genre_names, policy(folder / "u.item"))
    ratings = _read_ratings(folder / "u.data", users["user_id"], items["item_id"], policy(folder / "u.data"))
    title_embeddings = None
    if embeddings_dir is not None:
        directory = Path(embeddings_dir)
        title_embeddings = _read_title_embeddings(directory, items["item_id"], policy(directory))
    for bad_rows in policies:
        bad_rows.report()
    skipped = sum(bad_rows.skipped for bad_rows in policies)
    return MovieLens100K(
        ratings=ratings,
        users=users,
        items=items,
        genre_names=genre_names,
        occupations=occupations,
        title_embeddings=title_embeddings,
        source=str(folder),
        skipped_rows=skipped,
    )


def age_groups(ages: np.ndarray) -> np.ndarray:
    """Ages -> `AGE_GROUPS` names (under 18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+)."""
    index = np.searchsorted(_AGE_GROUP_LOWER_BOUNDS, np.asarray(ages), side="right") - 1  # [n]
    return np.array(AGE_GROUPS, dtype=object)[index]


def _row_of(ids: np.ndarray, size: int) -> np.ndarray:
    """Id -> row index of a table whose id column is `ids` (-1 for absent ids)."""
    rows = np.full(size + 1, -1, np.int64)
    rows[ids] = np.arange(len(ids))
    return rows


def user_histories(
    user_id: np.ndarray,
    timestamp: np.ndarray,
    values: list[np.ndarray],
    pads: list,
    history_length: int,
    *,
    rows: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Each event's `history_length` previous events of the same user, per value column.

    Events are ordered by timestamp, ties in input order. Row r of each result holds the
    values of the user's events before event r, oldest first, most recent last,
    right-padded with the column's pad value: [n, history_length]. With `rows` (event
    indices), only those events' histories, in that order: [len(rows), history_length]
    (memory for the rows kept, not for every event).
    """
    n = len(user_id)
    order = np.lexsort((np.arange(n), timestamp, user_id))  # by user, then time, then input order
    users_sorted = user_id[order]
    starts = np.ones(n, bool)
    starts[1:] = users_sorted[1:] != users_sorted[:-1]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0))  # [n]
    earlier = np.minimum(np.arange(n) - group_start, history_length)  # [n] events in the history
    position = np.empty(n, np.int64)
    position[order] = np.arange(n)  # each event's place in the sorted order
    wanted = position if rows is None else position[np.asarray(rows, np.int64)]  # [m] sorted places
    columns = np.arange(history_length)  # [L]
    # Sorted position of column j of the history at sorted place k: k - earlier[k] + j.
    source = wanted[:, None] - earlier[wanted][:, None] + columns[None, :]  # [m, L]
    valid = columns[None, :] < earlier[wanted][:, None]  # [m, L]
    source = np.clip(source, 0, max(n - 1, 0))
    return [
        np.where(valid, column[order][source], pad).astype(column.dtype)  # [m, L]
        for column, pad in zip(values, pads)
    ]


def movielens_ranking_data(movielens: MovieLens100K, *, history_length: int = 20) -> TabularData:
    """One row per rating with user, item and history features (see the module docstring).

    Args:
      movielens: the tables from `read_movielens_100k`.
      history_length: the most earlier ratings kept in `history` / `history_rating`.

    Returns:
      `TabularData` with labels `like` and `love`, rows in `u.data` order, the extra
      column `timestamp`, and an unfitted spec.
    """
    if history_length < 1:
        raise ValueError(f"`history_length` must be >= 1. Received: history_length={history_length}")
    ratings, users, items = movielens.ratings, movielens.users, movielens.items
    num_users, num_items = movielens.num_users, movielens.num_items
    user_row = _row_of(users["user_id"], num_users)[ratings["user_id"]]  # [n]
    item_row = _row_of(items["item_id"], num_items)[ratings["item_id"]]  # [n]

    item_genres = np.full((len(items["item_id"]), MAX_GENRES), "", dtype=object)  # [items, 6]
    for row, names in enumerate(items["genres"]):
        item_genres[row, : len(names)] = names[:MAX_GENRES]
    zip_prefix = np.array([code[:1] for code in users["zip_code"]], dtype=object)
    history, history_rating = user_histories(
        ratings["user_id"],
        ratings["timestamp"],
        [ratings["item_id"], ratings["rating"].astype(np.float32)],
        [-1, np.nan],
        history_length,
    )
    features = {
        "user_id": ratings["user_id"],
        "item_id": ratings["item_id"],
        "gender": users["gender"][user_row],
        "occupation": users["occupation"][user_row],
        "age_group": age_groups(users["age"])[user_row],
        "zip_prefix": zip_prefix[user_row],
        "genres": item_genres[item_row],
        "release_year": items["release_year"][item_row],
        "history": history,
        "history_rating": history_rating,
        "timestamp": ratings["timestamp"],
    }
    spec_features = [
        IdFeature("user_id", num_ids=num_users + 1),
        IdFeature("item_id", num_ids=num_items + 1),
        CategoricalFeature("gender", vocabulary=GENDERS),
        CategoricalFeature("occupation", vocabulary=movielens.occupations),
        CategoricalFeature("age_group", vocabulary=AGE_GROUPS),
        CategoricalFeature("zip_prefix"),
        SequenceFeature(
            "genres", CategoricalFeature("genres", vocabulary=movielens.genre_names), max_length=MAX_GENRES
        ),
        NumericFeature("release_year"),
        SequenceFeature("history", IdFeature("history", num_ids=num_items + 1), max_length=history_length),
        SequenceFeature("history_rating", NumericFeature("history_rating"), max_length=history_length),
    ]
    if movielens.title_embeddings is not None:
        features["title_embedding"] = movielens.title_embeddings[ratings["item_id"]]
        spec_features.append(EmbeddingFeature("title_embedding", dim=movielens.title_embeddings.shape[1]))
    rating = ratings["rating"]
    return TabularData(
        features=features,
        labels={"like": (rating >= 4).astype(np.float32), "love": (rating == 5).astype(np.float32)},
        spec=DatasetSpec(features=tuple(spec_features), labels=MOVIELENS_TASKS),
        source=movielens.source,
        skipped_rows=movielens.skipped_rows,
    )
