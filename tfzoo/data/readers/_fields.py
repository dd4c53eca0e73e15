"""Vectorised parsing of delimited text fields, shared by the readers.

A block of lines is split into an object array of field strings in one pass, and each
group of columns is converted with one NumPy call. Only when a conversion fails does a
slow path walk that column to find the offending rows. Every bad row's first error is
collected in a `RowErrors` and handed to the `on_bad_row` policy in line order, so
"raise" always reports the first bad line of the block.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfzoo.data.errors import BadRows, DataFormatError

_FLOAT32_MAX = float(np.finfo(np.float32).max)
_SEPARATOR_NAMES = {",": "comma", "\t": "tab", "|": "'|'"}


class RowErrors:
    """The first error of every bad row of one block of lines."""

    def __init__(self, path: str):
        self.path = path
        self._first: dict[int, DataFormatError] = {}

    def add(self, line: int, message: str, field: str | None = None) -> None:
        # A row is reported once, with the first problem found in it.
        self._first.setdefault(int(line), DataFormatError(message, path=self.path, line=int(line), field=field))

    def settle(self, bad_rows: BadRows, lines: np.ndarray) -> np.ndarray:
        """Applies the policy to the bad rows in line order; returns the mask of good rows."""
        for line in sorted(self._first):
            bad_rows.handle(self._first[line])
        return ~np.isin(lines, np.fromiter(self._first, np.int64, len(self._first)))


def split_fields(
    lines: Sequence[str], first_line: int, *, separator: str, num_fields: int, errors: RowErrors
) -> tuple[np.ndarray, np.ndarray]:
    """Splits text lines (without line ends) into fields.

    Blank lines are ignored; a line with another number of fields is a bad row.

    Returns:
      (table, line_numbers): [rows, num_fields] object array of str and the 1-based line
      number of each row.
    """
    numbers = np.arange(first_line, first_line + len(lines))
    nonblank = np.fromiter((bool(line.strip()) for line in lines), bool, len(lines))
    counts = np.fromiter((line.count(separator) + 1 for line in lines), np.int64, len(lines))
    good = nonblank & (counts == num_fields)
    name = _SEPARATOR_NAMES.get(separator, repr(separator))
    for index in np.flatnonzero(nonblank & ~good):
        errors.add(numbers[index], f"expected {num_fields} {name}-separated fields, found {counts[index]}")
    kept = [line for line, ok in zip(lines, good) if ok]
    flat = separator.join(kept).split(separator) if kept else []
    table = np.array(flat, dtype=object).reshape(len(kept), num_fields)
    return table, numbers[good]


def _convert(
    texts: np.ndarray, dtype, fields: Sequence[str], lines: np.ndarray, errors: RowErrors, what: str
) -> np.ndarray:
    """texts [rows, k] -> [rows, k] of `dtype`; unparsable cells are errors (value 0)."""
    try:
        return texts.astype(dtype)
    except (ValueError, OverflowError, TypeError):
        pass
    # Slow path, only for a block holding something unparsable: find the cells.
    cast = int if np.dtype(dtype).kind == "i" else float
    values = np.zeros(texts.shape, dtype)
    for column, field in enumerate(fields):
        try:
            values[:, column] = texts[:, column].astype(dtype)
            continue
        except (ValueError, OverflowError, TypeError):
            pass
        for row, text in enumerate(texts[:, column]):
            try:
                values[row, column] = cast(text)
            except (ValueError, OverflowError):
                errors.add(lines[row], f"expected {what}, found {text!r}", field)
    return values


def parse_integers(
    texts: np.ndarray,
    fields: Sequence[str],
    lines: np.ndarray,
    errors: RowErrors,
    *,
    low: int | None = None,
    high: int | None = None,
) -> np.ndarray:
    """texts [rows, k] of decimal integers -> int64 [rows, k], each in [low, high]."""
    values = _convert(texts, np.int64, fields, lines, errors, "an integer")
    out_of_range = np.zeros(values.shape, bool)
    if low is not None:
        out_of_range |= values < low
    if high is not None:
        out_of_range |= values > high
    if out_of_range.any():
        bounds = (
            f"in [{low}, {high}]"
            if low is not None and high is not None
            else (f">= {low}" if low is not None else f"<= {high}")
        )
        for row, column in zip(*np.nonzero(out_of_range)):
            errors.add(lines[row], f"expected an integer {bounds}, found {texts[row, column]!r}", fields[column])
    return values


def parse_floats(
    texts: np.ndarray, fields: Sequence[str], lines: np.ndarray, errors: RowErrors, *, allow_missing: bool
) -> np.ndarray:
    """texts [rows, k] of decimal numbers -> float32 [rows, k].

    With `allow_missing`, an empty field (or "nan") is a missing value, NaN. Infinite
    values and values beyond the float32 range are errors.
    """
    if allow_missing:
        texts = np.where(texts == "", "nan", texts)
    values = _convert(texts, np.float64, fields, lines, errors, "a number")
    out_of_range = np.isinf(values) | (np.abs(np.nan_to_num(values)) > _FLOAT32_MAX)
    if not allow_missing:
        out_of_range |= np.isnan(values)
    for row, column in zip(*np.nonzero(out_of_range)):
        errors.add(lines[row], f"expected a finite float32 number, found {texts[row, column]!r}", fields[column])
    values[out_of_range] = np.nan  # the row is dropped or raised; keep the cast quiet
    return values.astype(np.float32)


def parse_binary(texts: np.ndarray, fields: Sequence[str], lines: np.ndarray, errors: RowErrors) -> np.ndarray:
    """texts [rows, k] of 0/1 flags (also written 0.0/1.0) -> float32 [rows, k]."""
    values = _convert(texts, np.float64, fields, lines, errors, "0 or 1")
    for row, column in zip(*np.nonzero((values != 0) & (values != 1))):
        errors.add(lines[row], f"expected 0 or 1, found {texts[row, column]!r}", fields[column])
    return values.astype(np.float32)
