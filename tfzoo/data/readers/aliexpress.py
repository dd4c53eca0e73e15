"""AliExpress search logs in the CSV schema of the public release (Li et al., CIKM 2020).

Each file (`train.csv` / `test.csv` of one country subset) has a header and one
impression per row: `search_id, categorical_1..16, numerical_1..63, click, conversion`.
Tasks (binary labels) derived from the rows:

| task    | label                   | observed on (label mask) |
| ------- | ----------------------- | ------------------------ |
| `ctr`   | click                   | every impression         |
| `cvr`   | conversion              | clicked impressions only |
| `ctcvr` | click and conversion    | every impression         |

`cvr` is the post-click conversion rate: its mask is the click, so unclicked rows add
nothing to its loss or metrics (ESMM's entire-space view of it is `ctcvr`).

Features: `categorical_*` are integer codes (`CategoricalFeature(dtype="int64")`, the
vocabulary learned from the training split by `DatasetSpec.fit`); `numerical_*` are
numbers (`NumericFeature`), an empty field being a missing value. `search_id` is kept as
an extra int64 column of `TabularData.features` (not in the spec) to group the
impressions of one search.

The data are under Tianchi's research-only terms and may not be redistributed: tfzoo
reads them from a path and ships none of them.
"""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import numpy as np

from tfzoo.data.errors import BadRowPolicy, BadRows, DataFormatError
from tfzoo.data.features import INT64, CategoricalFeature, DatasetSpec, NumericFeature
from tfzoo.data.readers._fields import RowErrors, parse_binary, parse_floats, parse_integers, split_fields
from tfzoo.data.tabular import TabularData

ALIEXPRESS_TASKS = ("ctr", "cvr", "ctcvr")
ALIEXPRESS_CATEGORICAL = tuple(f"categorical_{i}" for i in range(1, 17))
ALIEXPRESS_NUMERICAL = tuple(f"numerical_{i}" for i in range(1, 64))
ALIEXPRESS_COLUMNS = ("search_id", *ALIEXPRESS_CATEGORICAL, *ALIEXPRESS_NUMERICAL, "click", "conversion")
SEARCH_ID = "search_id"

# Lines parsed per block: bounds the memory of the field strings (a real country file
# has tens of millions of rows) while keeping the per-block NumPy calls large.
_BLOCK_LINES = 1 << 15


def _column_order(header: str, path: str) -> np.ndarray:
    """Index in the file of each column of `ALIEXPRESS_COLUMNS` (any order is accepted)."""
    names = [name.strip() for name in header.rstrip("\r\n").split(",")]
    missing = [c for c in ALIEXPRESS_COLUMNS if c not in names]
    unexpected = [n for n in names if n not in ALIEXPRESS_COLUMNS]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if missing or unexpected or duplicated:
        problems = [
            f"{what} {cols}"
            for what, cols in (
                ("missing columns", missing),
                ("unexpected columns", unexpected),
                ("duplicated columns", duplicated),
            )
            if cols
        ]
        raise DataFormatError(
            "header does not match the AliExpress schema (search_id, categorical_1..16, "
            "numerical_1..63, click, conversion): " + "; ".join(problems),
            path=path,
            line=1,
        )
    return np.array([names.index(c) for c in ALIEXPRESS_COLUMNS])


def _parse_block(
    lines: list[str], first_line: int, order: np.ndarray, path: str, bad_rows: BadRows
) -> dict[str, np.ndarray]:
    errors = RowErrors(path)
    stripped = [line.rstrip("\r\n") for line in lines]
    table, numbers = split_fields(stripped, first_line, separator=",", num_fields=len(order), errors=errors)
    table = table[:, order]  # columns in ALIEXPRESS_COLUMNS order
    num_categorical, num_numerical = len(ALIEXPRESS_CATEGORICAL), len(ALIEXPRESS_NUMERICAL)
    categorical_end = 1 + num_categorical
    numerical_end = categorical_end + num_numerical

    search_id = parse_integers(table[:, :1], (SEARCH_ID,), numbers, errors)[:, 0]
    codes = parse_integers(table[:, 1:categorical_end], ALIEXPRESS_CATEGORICAL, numbers, errors, low=0)
    numerical = parse_floats(
        table[:, categorical_end:numerical_end], ALIEXPRESS_NUMERICAL, numbers, errors, allow_missing=True
    )
    labels = parse_binary(table[:, numerical_end:], ("click", "conversion"), numbers, errors)
    keep = errors.settle(bad_rows, numbers)
    return {
        "search_id": search_id[keep],
        "codes": codes[keep],  # [rows, 16]
        "numerical": numerical[keep],  # [rows, 63]
        "labels": labels[keep],  # [rows, 2]
    }


def read_aliexpress(path: str | Path, *, on_bad_row: BadRowPolicy = "raise") -> TabularData:
    """Reads one AliExpress CSV file (optionally gzipped) into memory.

    Args:
      path: a `train.csv` or `test.csv` of the release (or a file with its schema).
      on_bad_row: "raise" stops at the first malformed row with a `DataFormatError`
        naming file, line and column; "skip" drops such rows and counts them in
        `skipped_rows`. A row is malformed when it has another number of fields, a
        categorical code that is not an integer >= 0, a numerical value that is not a
        number or is infinite / beyond float32, or a click or conversion other than 0/1.

    Returns:
      `TabularData` with labels `ctr`, `cvr` (masked by the click) and `ctcvr` (see the
      module docstring); the spec is unfitted (fit it on the training split). A
      conversion without a click counts as no `ctcvr`.
    """
    path = Path(path)
    source = str(path)
    bad_rows = BadRows(on_bad_row, source)
    opener = gzip.open if path.suffix == ".gz" else open
    blocks = []
    with opener(path, "rt", encoding="latin-1", newline="") as lines:
        header = lines.readline()
        if not header.strip():
            raise DataFormatError(
                "empty file; expected a header line naming the AliExpress columns", path=source, line=1
            )
        order = _column_order(header, source)
        first_line = 2
        while block := list(itertools.islice(lines, _BLOCK_LINES)):
            blocks.append(_parse_block(block, first_line, order, source, bad_rows))
            first_line += len(block)
    bad_rows.report()

    def joined(key: str, width: int, dtype) -> np.ndarray:
        parts = [b[key] for b in blocks]
        return np.concatenate(parts) if parts else np.zeros((0, width) if width else 0, dtype)

    codes = joined("codes", len(ALIEXPRESS_CATEGORICAL), np.int64)
    numerical = joined("numerical", len(ALIEXPRESS_NUMERICAL), np.float32)
    click, conversion = joined("labels", 2, np.float32).T
    features = {SEARCH_ID: joined("search_id", 0, np.int64)}
    features.update({name: np.ascontiguousarray(codes[:, i]) for i, name in enumerate(ALIEXPRESS_CATEGORICAL)})
    features.update({name: np.ascontiguousarray(numerical[:, i]) for i, name in enumerate(ALIEXPRESS_NUMERICAL)})
    spec = DatasetSpec(
        features=tuple(CategoricalFeature(name, dtype=INT64) for name in ALIEXPRESS_CATEGORICAL)
        + tuple(NumericFeature(name) for name in ALIEXPRESS_NUMERICAL),
        labels=ALIEXPRESS_TASKS,
    )
    return TabularData(
        features=features,
        labels={"ctr": click, "cvr": conversion, "ctcvr": click * conversion},
        label_masks={"cvr": click},
        spec=spec,
        source=source,
        skipped_rows=bad_rows.skipped,
    )


def aliexpress_files(directory: str | Path) -> tuple[Path, Path]:
    """The train and test CSV files of an AliExpress directory.

    Accepts the release's `train.csv` / `test.csv` (optionally `.gz`) or exactly one file
    matching each of `*train*.csv` and `*test*.csv`.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"AliExpress data directory not found: {directory}")
    found = []
    for part in ("train", "test"):
        exact = [directory / f"{part}.csv{gz}" for gz in ("", ".gz") if (directory / f"{part}.csv{gz}").is_file()]
        patterns = (f"*{part}*.csv", f"*{part}*.csv.gz")
        matches = exact or sorted(p for pattern in patterns for p in directory.glob(pattern))
        if len(matches) != 1:
            present = sorted(p.name for p in directory.iterdir())
            raise FileNotFoundError(
                f"Expected one {part} file ('{part}.csv' or '*{part}*.csv') in {directory}; "
                f"found {[p.name for p in matches]} among {present}."
            )
        found.append(matches[0])
    return found[0], found[1]
