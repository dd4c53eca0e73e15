"""Errors and bad-row handling shared by the dataset readers."""

from __future__ import annotations

import logging
from typing import Literal

logger = logging.getLogger("tfzoo.data")

BadRowPolicy = Literal["raise", "skip"]


class DataFormatError(ValueError):
    """A row or field of an input file does not match its format.

    The message starts with `path:line:` (and names the field when one is at fault), the
    way compilers report errors, so the offending row can be opened directly.
    """

    def __init__(self, message: str, *, path: str, line: int | None = None, field: str | None = None):
        self.path = str(path)
        self.line = line
        self.field = field
        self.reason = message
        where = self.path if line is None else f"{self.path}:{line}"
        what = f"field {field!r}: " if field else ""
        super().__init__(f"{where}: {what}{message}")


class BadRows:
    """Applies an `on_bad_row` policy while a reader walks a file.

    With "raise" the first bad row raises its `DataFormatError`; with "skip" bad rows are
    counted, the first few logged, and reading goes on.
    """

    def __init__(self, policy: BadRowPolicy, path: str):
        if policy not in ("raise", "skip"):
            raise ValueError(f"`on_bad_row` must be 'raise' or 'skip'. Received: on_bad_row={policy!r}")
        self.policy = policy
        self.path = str(path)
        self.skipped = 0

    def handle(self, error: DataFormatError) -> None:
        if self.policy == "raise":
            raise error
        self.skipped += 1
        if self.skipped <= 5:
            logger.warning("skipping bad row: %s", error)

    def report(self) -> None:
        if self.skipped:
            logger.warning("%s: skipped %d bad row(s)", self.path, self.skipped)
