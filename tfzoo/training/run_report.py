"""A run's report: `RUN/report/report.md` and its figures (`tfzoo report --run RUN`).

What a reader of a run wants to see without opening JSON files:
- the training and validation curves of every loss term and validation metric, the
  restored best epoch marked (`training_curves.png`, from `history.json`);
- the test results beside the strong simple baselines the run reported (a table);
- retrieval runs: Recall@K against K for the model, its served fusion and the graph
  heuristics, for all users and the low-degree slice (`recall_at_k.png`);
- models with mixtures of experts: a heat map of how the experts are used
  (`expert_usage.png`): per (flow, use case) task for GRec, per task for the multi-gate
  mixtures (MMoE), and per mixture layer where the routing does not see the task
  (SUPER-MoE's feed-forward experts route each step of a shared encoder), measured on
  the first `USAGE_ROWS` test rows;
- with `exports`, each ANN index's recall against latency (`ann_<name>.png`, from the
  sweep the export recorded in `assets.extra/ann_index.json`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfzoo.evaluation import figures
from tfzoo.evaluation.fusion import fusion_label
from tfzoo.evaluation.report import format_task_table
from tfzoo.training.registry import task_for
from tfzoo.training.task import finished_run_file, stored_run

REPORT_DIR = "report"
USAGE_ROWS = 1024


def expert_usage(run) -> dict[str, np.ndarray] | None:
    """{row name: [E] share per expert} of the run's model on its first `USAGE_ROWS` test
    rows (see the module doc), or None for a model without mixtures of experts (or no
    run)."""
    from tfzoo.layers.moe import recording_routing  # noqa: PLC0415 (model code only where a model is loaded)

    if run is None:
        return None
    model, task = run.model, task_for(run.config.model)
    if hasattr(model, "expert_usage"):  # the model knows its tasks' routing units (GRec)
        features = task.feature_batch(run.prepared, "test", rows=USAGE_ROWS)
        return model.expert_usage(features)
    with recording_routing(model) as records:
        if not records:
            return None
        features = task.feature_batch(run.prepared, "test", rows=USAGE_ROWS)
        if features is None:
            return None
        model(features, training=False)
    usage = {}
    tasks = list(getattr(model, "tasks", []))
    for layer, calls in records.items():
        for call in calls:  # one call per layer: the batch went through the model once
            shares, valid, gates = call["usage"], call["valid"], call["gates"]
            if gates == 1:
                usage[layer] = shares[valid].mean(axis=0)
            else:  # a multi-gate mixture (MMoE): the units are (row, gate), a gate per task
                per_row = shares.reshape(-1, gates, shares.shape[-1])  # [rows, G, E]
                per_gate = per_row[valid.reshape(-1, gates)[:, 0]].mean(axis=0)  # [G, E]
                names = tasks if len(tasks) == gates else [f"{layer} gate {g}" for g in range(gates)]
                usage.update(zip(names, per_gate))
    return usage


def _run_with_experts(directory: Path):
    """The run in `directory` opened with its data where its model has mixtures of experts
    (built first without data, which is cheap); None where it has none."""
    from tfzoo.layers.moe import recording_routing  # noqa: PLC0415 (model code only where a model is loaded)
    from tfzoo.training.run import load_run  # noqa: PLC0415 (the run module writes reports)

    with recording_routing(load_run(directory, with_data=False).model) as records:
        if not records:
            return None
    return load_run(directory)


@dataclasses.dataclass(frozen=True)
class RunReport:
    """What `write_report` wrote: the report's folder and its figures by file name."""

    path: Path
    figures: dict[str, Any]  # file name -> matplotlib Figure


def write_report(
    directory: str | Path, *, run=None, exports: Sequence[str | Path] = (), with_model: bool = True
) -> RunReport:
    """Writes `<directory>/report/` (figures and `report.md`) for the finished run in
    `directory`; returns what it wrote. `run`: the run already open with its data
    (else opened here when the model has experts to map; `with_model=False` skips the
    maps). `exports`: version directories of the run's exports whose ANN sweeps to plot."""
    directory = Path(directory)
    out = directory / REPORT_DIR
    out.mkdir(exist_ok=True)
    config = stored_run(directory)["run"]
    metrics = finished_run_file(directory)
    history = finished_run_file(directory, "history.json")
    model_name, task = config["model"], task_for(config["model"])
    lines = [f"# Run report: {model_name} on {config.get('dataset')}", "", f"Split: {metrics.get('split', '-')}", ""]

    best = metrics.get("best_epoch")
    drawn = {}
    drawn["training_curves.png"] = figures.training_curves(
        history, out / "training_curves.png", best_epoch=best, title=f"{model_name}: {directory.name}"
    )
    lines += [
        "## Training",
        "",
        f"Best epoch {best} of {metrics.get('epochs_trained', len(history.get('loss', [])))} by "
        f"`{metrics.get('validation_metric', task.validation_metric)}` (restored).",
        "",
        "![training curves](training_curves.png)",
        "",
    ]

    rows = [(f"{model_name} (test)", metrics["test"])]
    served = {model_name: metrics["test"]}
    if "fused" in metrics:
        label = f"{fusion_label(model_name, metrics['fused'])} (served)"
        rows.append((f"{label} (test)", metrics["fused"]["test"]))
        served[label] = metrics["fused"]["test"]
    baselines = metrics.get("baselines", {}).get("test", {})
    rows += [(f"{name} (test)", report) for name, report in baselines.items()]
    lines += ["## Test results", "", "```", format_task_table(rows, metrics=task.metric_names), "```", ""]

    if "all" in metrics["test"]:  # a retrieval report: recall per user slice
        drawn["recall_at_k.png"] = figures.recall_at_k(
            {**served, **baselines}, out / "recall_at_k.png", title=f"{model_name} vs graph heuristics"
        )
        lines += ["## Recall@K", "", "![Recall@K](recall_at_k.png)", ""]

    if with_model:
        usage = expert_usage(run if run is not None else _run_with_experts(directory))
        if usage:
            num_experts = len(next(iter(usage.values())))
            drawn["expert_usage.png"] = figures.expert_usage_map(
                usage,
                out / "expert_usage.png",
                title=f"{model_name}: share of routing per expert ({USAGE_ROWS} test rows at most)",
            )
            lines += [
                "## Expert usage",
                "",
                f"Share of each row's routing that goes to each of the {num_experts} experts (rows sum to 1).",
                "",
                "![expert usage](expert_usage.png)",
                "",
            ]

    for export in exports:
        path = Path(export) / "assets.extra" / "ann_index.json"
        if not path.exists():
            continue
        sweep = json.loads(path.read_text()).get("recall_latency")
        if not sweep:
            continue
        name = f"ann_{Path(export).parent.name}_{Path(export).name}.png"
        points = {"ScaNN (leaves searched)": [(p["latency_ms"], p["recall"]) for p in sweep["scann"]]}
        points["exact (brute force)"] = [(sweep["brute_force_latency_ms"], 1.0)]
        drawn[name] = figures.recall_vs_latency(
            points, out / name, title=f"{export}: {sweep['queries']} queries a call"
        )
        lines += [f"## ANN index of {export}", "", f"![recall vs latency]({name})", ""]

    (out / "report.md").write_text("\n".join(lines))
    return RunReport(out, drawn)
