"""Tables named by a data config (`files`, `format`, `columns`): a friend graph's node and
edge tables (`tfzoo.data.graph_config`), an event log and its item and user tables
(`tfzoo.data.events_config`), each read whole, as text, file by file."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from tfzoo.data.data_config import DataConfigError, list_of, patterns_of
from tfzoo.data.errors import BadRowPolicy, BadRows

TABLE_FORMATS = ("csv", "tsv", "parquet")


@dataclasses.dataclass(frozen=True)
class TableFiles:
    """Where a table's rows are: file patterns, their format, and the column names of
    headerless text files."""

    patterns: tuple[str, ...]
    format: str
    columns: tuple[str, ...] | None = None

    @classmethod
    def from_config(cls, table: Mapping[str, Any], *, source: str, key: str, base: str | None) -> TableFiles:
        """The `files`, `format` (default csv) and `columns` of the config's mapping `key`
        (relative patterns taken from `base`)."""
        if "files" not in table:
            raise DataConfigError(source, f"{key}.files", "required")
        fmt = table.get("format", "csv")
        if fmt not in TABLE_FORMATS:
            raise DataConfigError(source, f"{key}.format", f"Received: {fmt!r}. Accepted: {', '.join(TABLE_FORMATS)}")
        columns = table.get("columns")
        if columns is not None:
            if fmt == "parquet":
                raise DataConfigError(source, f"{key}.columns", "names the columns of headerless csv / tsv files")
            columns = tuple(str(c) for c in list_of(columns, source, f"{key}.columns"))
        return cls(patterns_of(table["files"], source, f"{key}.files", base), fmt, columns)

    def paths(self, source: str, key: str) -> list[str]:
        """The files the patterns match, sorted; none is an error naming the config and key."""
        import tensorflow as tf

        found = sorted({path for pattern in self.patterns for path in tf.io.gfile.glob(pattern)})
        if not found:
            raise FileNotFoundError(f"{source}: `{key}.files`: no file matches {list(self.patterns)}")
        return found

    def read(
        self, source: str, key: str, columns: list[str], on_bad_row: BadRowPolicy, *, integers: tuple[str, ...] = ()
    ) -> Iterator[tuple[str, dict[str, np.ndarray], np.ndarray, BadRows]]:
        """Each file's (path, {column: text array}, line numbers, its BadRows); the
        `integers` columns as int64 where every value is a plain integer
        (`read_text_columns`)."""
        from tfzoo.data.file_readers import read_text_columns

        for path in self.paths(source, key):
            bad_rows = BadRows(on_bad_row, path)
            values, lines = read_text_columns(
                path,
                self.format,
                list(dict.fromkeys(columns)),
                bad_rows=bad_rows,
                column_names=self.columns,
                integers=integers,
            )
            yield path, values, lines, bad_rows
