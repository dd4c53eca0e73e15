"""Plain-text tables of per-task metrics."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence


def format_task_table(
    rows: Sequence[tuple[str, Mapping[str, Mapping[str, float]]]],
    *,
    metrics: Sequence[str] = ("auc", "ap"),
) -> str:
    """One line per (name, {task: {metric: value}}), one column per task x metric."""
    tasks: list[str] = []
    for _, report in rows:
        tasks += [t for t in report if t not in tasks]
    header = ["model"] + [f"{t} {m.upper()}" for t in tasks for m in metrics]
    body = [
        [name] + [f"{report[t][m]:.4f}" if t in report and m in report[t] else "-" for t in tasks for m in metrics]
        for name, report in rows
    ]
    widths = [max(len(str(line[i])) for line in [header] + body) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))
        for line in [header] + body
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def reproducing_command(script: str, argv: Sequence[str]) -> str:
    """The command a results file records: `python SCRIPT ARGS` with every absolute path
    (an argument, or the value of `--option=PATH`) made relative to the working directory
    (the repository root), so that the file names no machine's folders."""

    def relative(token: str) -> str:
        prefix, _, value = token.rpartition("=") if token.startswith("--") and "=" in token else ("", "", token)
        if os.path.isabs(value):
            value = os.path.relpath(value)
        return f"{prefix}={value}" if prefix else value

    return " ".join(["python", relative(script), *(relative(token) for token in argv)])
