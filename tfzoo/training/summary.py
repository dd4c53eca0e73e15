"""The closing summary of a demo or recipe: one line per trained model, beside its best
simple baseline, with where it was exported, which checks its export passed and how long
it took.

Each line is read from a finished run (`config.json`, `metrics.json`): the task's
headline metric (`ModelTask.headline`: mean test AUC for the rankers, Recall@50 for
friend retrieval) of what the export serves, and the same metric of every baseline the
run reported on the same test rows, the best one shown. Recipes that run in their own
process append their lines to a JSON-lines file (`append_summary`), which the demo reads
back (`read_summary`) and prints with its own (`format_summary`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from tfzoo.evaluation.fusion import fusion_label
from tfzoo.training.registry import task_for
from tfzoo.training.task import finished_run_file, stored_run


@dataclasses.dataclass(frozen=True)
class SummaryRow:
    """One model in a summary.

    Attributes:
      model: the model as served (a fused scorer is named by its terms).
      dataset: the run's dataset name, or its data config's file.
      metric: the headline metric's name (`ModelTask.headline`), measured on the test split.
      value: the model's value of `metric`.
      baseline: the best of the run's simple baselines by `metric`; None where it has none.
      baseline_value: `baseline`'s value of `metric`.
      export: the export's version directory (`<base>/<name>/<version>`); None: not exported.
      checks: {check: passed} of the checks run on the export (e.g. "fresh process", "gRPC").
      seconds: wall-clock time of the part that trained and exported the model.
    """

    model: str
    dataset: str
    metric: str
    value: float
    baseline: str | None = None
    baseline_value: float | None = None
    export: str | None = None
    checks: Mapping[str, bool] = dataclasses.field(default_factory=dict)
    seconds: float | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, line: str) -> SummaryRow:
        return cls(**json.loads(line))

    def with_check(self, name: str, passed: bool) -> SummaryRow:
        return dataclasses.replace(self, checks={**self.checks, name: passed})


def run_summary(
    directory: str | Path,
    *,
    export: str | Path | None = None,
    checks: Mapping[str, bool] | None = None,
    seconds: float | None = None,
) -> SummaryRow:
    """The summary line of the finished run in `directory`."""
    config = stored_run(directory)["run"]
    metrics = finished_run_file(directory)
    task = task_for(config["model"])
    model, report = config["model"], metrics["test"]
    if "fused" in metrics:  # the export serves the fusion chosen on validation
        model, report = f"{fusion_label(model, metrics['fused'])} (served)", metrics["fused"]["test"]
    metric, value = task.headline(report)
    baselines = {name: task.headline(r)[1] for name, r in metrics.get("baselines", {}).get("test", {}).items()}
    best = max(baselines, key=baselines.__getitem__) if baselines else None
    data_config = config.get("data_config") or {}
    return SummaryRow(
        model=model,
        dataset=data_config.get("source") or config["dataset"],
        metric=f"test {metric}",
        value=value,
        baseline=best,
        baseline_value=baselines.get(best),
        export=None if export is None else str(export),
        checks=dict(checks or {}),
        seconds=seconds,
    )


def append_summary(path: str | Path, row: SummaryRow) -> None:
    """Adds `row` as one JSON line to the summary file at `path`."""
    with open(path, "a", encoding="utf-8") as file:
        file.write(row.to_json() + "\n")


def read_summary(path: str | Path) -> list[SummaryRow]:
    """The rows of a summary file, in the order they were appended."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [SummaryRow.from_json(line) for line in lines if line.strip()]


def _checks(checks: Mapping[str, bool]) -> str:
    return ", ".join(f"{name} {'ok' if passed else 'FAILED'}" for name, passed in checks.items()) or "-"


def format_summary(rows: Sequence[SummaryRow]) -> str:
    """A plain-text table of `rows`: model, dataset, test metric, the model's value, the
    best baseline and its value, the model's lead over it, export, checks and time."""
    header = [
        "model",
        "dataset",
        "test metric",
        "model",
        "best baseline",
        "baseline",
        "lead",
        "export",
        "checks",
        "time",
    ]
    body = []
    for row in rows:
        has_baseline = row.baseline_value is not None
        body.append(
            [
                row.model,
                row.dataset,
                row.metric.removeprefix("test "),
                f"{row.value:.4f}",
                row.baseline or "-",
                f"{row.baseline_value:.4f}" if has_baseline else "-",
                f"{row.value - row.baseline_value:+.4f}" if has_baseline else "-",
                row.export or "-",
                _checks(row.checks),
                f"{row.seconds:.0f} s" if row.seconds is not None else "-",
            ]
        )
    numeric = {3, 5, 6, 9}
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(cell.rjust(w) if i in numeric else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths)))
        for line in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)
