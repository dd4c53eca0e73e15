"""What the GRec recipes share: train one variant, score it, and the Table 1 grid.

A variant is a set of `tfzoo.models.GRec` constructor arguments; the MMoE 4/4 baseline is
GRec's own architecture with dense routing (4 experts, one softmax gate per use case, no
top-k), so that the routing is the only difference between the rows of the table.

Per variant and seed: train as `tfzoo train grec` does (a run directory; early stopping
on the exact mean validation AUC, the best epoch restored), report exact test AUC / AP
per use case and per (flow, use case) task,
and count inference float ops per example with TF's graph profiler on the traced
model (`tfzoo.evaluation.float_ops_per_example`): the full model, and for task-level
routing also one task's extracted serving function (what `tfzoo export` serves).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

import tfzoo
from tfzoo.data import TabularData, make_dataset
from tfzoo.evaluation import float_ops_per_example, format_task_table, task_metrics
from tfzoo.export.grec import export_grec
from tfzoo.training import RunConfig, load_run, task_for, train
from tfzoo.training.run import Run
from tfzoo.training.summary import append_summary, run_summary

VARIANTS: dict[str, dict[str, Any]] = {
    "MMoE 4/4": {"routing": "dense", "num_experts": 4, "top_k": 4},
    "GRec 8/4 token": {"routing": "token", "num_experts": 8, "top_k": 4},
    "GRec 8/4 sentence": {"routing": "sentence", "num_experts": 8, "top_k": 4},
    "GRec 8/4 task": {"routing": "task", "num_experts": 8, "top_k": 4},
    "GRec 8/4 task-sentence": {"routing": "task_sentence", "num_experts": 8, "top_k": 4},
}
EVAL_BATCH = 4096
FLOPS_BATCH = 256


def train_variant(
    dataset: str,
    data_path: str | None,
    data_options: Mapping[str, Any],
    options: Mapping[str, Any],
    *,
    run_dir: Path,
    seed: int,
    epochs: int,
    batch_size: int,
    learning_rate: float = 1e-3,
    verbose: int | str = 0,
    reuse: bool = False,
) -> Run:
    """A GRec trained as `tfzoo train grec` trains it (early stopping on the exact mean
    validation AUC, the best epoch restored) into `run_dir`, reopened: its model, its data
    and the spec fitted on its training rows. With `reuse`, a finished run already there
    is reopened instead (a grid restarted after a crash); anything else there is replaced."""
    if run_dir.exists() and not (reuse and (run_dir / "metrics.json").exists()):
        shutil.rmtree(run_dir)
    if not run_dir.exists():
        config = RunConfig(
            model="grec",
            dataset=dataset,
            data_path=data_path,
            data_options=dict(data_options),
            model_options=dict(options),
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
        )
        train(config, run_dir, verbose=verbose)
    return load_run(run_dir)


def score(model, rows: TabularData, spec) -> dict[str, Any]:
    """Exact test metrics per use case, and AUC / AP per (flow, use case) task."""
    predictions = model.predict(make_dataset(rows, spec, batch_size=EVAL_BATCH, with_labels=False), verbose=0)
    return score_predictions({t: np.asarray(p) for t, p in predictions.items()}, rows, model.flow_feature)


def score_predictions(predictions: Mapping[str, np.ndarray], rows: TabularData, flow_feature: str | None) -> dict:
    """`score` of given predictions {use case: score [rows]} (a model's or a baseline's)."""
    per_use_case = task_metrics(rows.labels, predictions, rows.label_masks)
    per_task = {}
    if flow_feature:
        flows = rows.features[flow_feature].astype(str)
        for flow in np.unique(flows):
            in_flow = flows == flow
            masks = {t: rows.label_masks[t].astype(bool) & in_flow for t in predictions}
            for t, metrics in task_metrics(rows.labels, predictions, masks).items():
                per_task[f"{flow}/{t}"] = metrics
    return {"use_cases": per_use_case, "tasks": per_task}


def reference_entries(run: Run) -> dict[str, dict]:
    """The grid's strong simple baselines (logistic regression, gradient-boosted trees per
    use case; `tfzoo.evaluation.tabular`) on the run's test rows, as grid entries."""
    test = run.prepared.data.test
    predictions = task_for("grec").baseline_predictions(run.prepared, "test")
    return {
        f"{name} | reference": {
            "variant": name.replace("_", " "),
            "seed": None,
            "test": score_predictions(scores, test, run.model.flow_feature),
            "flops_per_example": {},
        }
        for name, scores in predictions.items()
    }


def flops(model, rows: TabularData, spec) -> dict[str, float]:
    """Inference float ops per example of the full model (and of one extracted task)."""
    sample = rows.take(np.arange(min(FLOPS_BATCH, len(rows))))
    features = next(iter(make_dataset(sample, spec, batch_size=len(sample), with_labels=False)))
    result = {"full": float_ops_per_example(lambda f: model(f, training=False), features)}
    if model.extractable:
        extracted = model.extract()
        flow, use_case = next(iter(extracted.task_signatures().values()))
        # One task's serving function, divided by the use cases so that it is comparable
        # with the full model's float ops per (row, every use case).
        result["extracted_per_task"] = float_ops_per_example(
            lambda f: extracted.task_probability(f, flow, use_case), features
        )
    return result


def run_grid(
    name: str,
    dataset: str,
    data_path: str | None,
    data_options: Mapping[str, Any],
    base_options: Mapping[str, Any],
    *,
    seeds: int,
    epochs: int,
    batch_size: int,
    out: Path,
    runs: Path,
    variants: Mapping[str, Mapping[str, Any]] = VARIANTS,
) -> dict:
    """Every seed x variant, each a `tfzoo train` run under `runs`; results written to
    `out` (JSON) as they come, so a stopped grid keeps what it finished, and a restarted
    one skips it."""
    results = json.loads(out.read_text()) if out.exists() else {}
    for seed in range(seeds):  # seed-major: a stopped grid has every variant at its first seeds
        for variant, options in variants.items():
            key = f"{variant} | seed {seed}"
            if key in results:
                continue
            started = time.perf_counter()
            run = train_variant(
                dataset,
                data_path,
                data_options,
                {**base_options, **options},
                run_dir=runs / f"{variant.replace(' ', '_').replace('/', '-')}" / f"seed{seed}",
                seed=seed,
                epochs=epochs,
                batch_size=batch_size,
                reuse=True,
            )
            test, spec = run.prepared.data.test, run.inputs.feature_spec
            results[key] = {
                "variant": variant,
                "seed": seed,
                "options": {**base_options, **options},
                "best_epoch": json.loads((run.directory / "metrics.json").read_text())["best_epoch"],
                "test": score(run.model, test, spec),
                "flops_per_example": flops(run.model, test, spec),
                "seconds": time.perf_counter() - started,
                "load_average": os.getloadavg(),
            }
            if not any(key.endswith("| reference") for key in results):  # the same rows for every variant
                results.update(reference_entries(run))
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=1))
            print(
                f"{name}: {key}: "
                + ", ".join(
                    f"{t} AUC {m['auc']:.4f} AP {m['ap']:.4f}" for t, m in results[key]["test"]["use_cases"].items()
                )
                + f" ({results[key]['seconds']:.0f} s)",
                flush=True,
            )
    print(markdown_table(results))
    print(task_auc_table(results))
    return results


def _mean_std(values) -> str:
    values = [v for v in values if v == v]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def _by_variant(results: Mapping[str, Any]) -> dict[str, list]:
    """Entries grouped by variant, the references (no seed) last."""
    by_variant: dict[str, list] = {}
    for entry in sorted(results.values(), key=lambda entry: entry["seed"] is None):
        by_variant.setdefault(entry["variant"], []).append(entry)
    return by_variant


def markdown_table(results: Mapping[str, Any]) -> str:
    """Table 1's shape: per variant, AP and AUC per use case (mean ± std over seeds) and FLOPs."""
    by_variant = _by_variant(results)
    tasks = list(next(iter(results.values()))["test"]["use_cases"])
    header = (
        ["model", "seeds"]
        + [f"{t} {m}" for t in tasks for m in ("AP", "AUC")]
        + ["MFLOPs/ex (full)", "MFLOPs/ex (extracted task)"]
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for variant, entries in by_variant.items():
        cells = [variant, str(len(entries)) if entries[0]["seed"] is not None else "-"]
        for t in tasks:
            for metric in ("ap", "auc"):
                cells.append(_mean_std([e["test"]["use_cases"][t][metric] for e in entries]))
        full = [e["flops_per_example"].get("full", float("nan")) / 1e6 for e in entries]
        extracted = [e["flops_per_example"].get("extracted_per_task", float("nan")) / 1e6 for e in entries]
        cells += [
            f"{statistics.mean(full):.3f}" if full[0] == full[0] else "-",
            f"{statistics.mean(extracted):.3f}" if extracted[0] == extracted[0] else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def task_auc_table(results: Mapping[str, Any]) -> str:
    """Test AUC per (flow, use case) task and variant, mean over seeds."""
    by_variant = _by_variant(results)
    tasks = list(next(iter(results.values()))["test"]["tasks"])
    if not tasks:
        return ""
    lines = ["| model | " + " | ".join(tasks) + " |", "|" + "---|" * (len(tasks) + 1)]
    for variant, entries in by_variant.items():
        cells = [f"{statistics.mean(e['test']['tasks'][t]['auc'] for e in entries):.4f}" for t in tasks]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def export_and_check(model, spec, rows: TabularData, export_base: str, name: str) -> Path:
    """Exports with the GRec exporter (extracted experts for task-level routing) and checks
    the export in a fresh process that imports TensorFlow only."""
    path = export_grec(model, spec, export_base, name)
    sample = rows.take(np.arange(min(64, len(rows))))
    raw = {feature: sample.features[feature] for feature in spec.feature_names}
    served = tfzoo.export.call_in_fresh_process(path, raw)
    in_process = model.predict(make_dataset(sample, spec, batch_size=len(sample), with_labels=False), verbose=0)
    difference = max(float(np.abs(served[t] - np.asarray(in_process[t])).max()) for t in served)
    if difference > 1e-5:
        raise RuntimeError(f"{path}: served outputs differ from the trained model's by {difference:.1e}")
    print(
        f"exported {path}; a fresh TensorFlow-only process serves the same outputs (max abs difference "
        f"{difference:.1e})",
        flush=True,
    )
    return path


def print_report(name: str, report: Mapping[str, Any], references: Mapping[str, Mapping] | None = None) -> None:
    """Test metrics per use case beside the references', then per flow (the model's)."""
    rows = [(f"{name} (test)", report["use_cases"])]
    rows += [(f"{entry['variant']} (reference)", entry["test"]["use_cases"]) for entry in (references or {}).values()]
    print(format_task_table(rows))
    by_flow: dict[str, dict] = {}
    for task, metrics in report["tasks"].items():
        flow, use_case = task.split("/", 1)
        by_flow.setdefault(f"flow {flow}", {})[use_case] = metrics
    if by_flow:
        print(format_task_table(list(by_flow.items())))


def add_arguments(parser, name: str) -> None:
    """The options both GRec recipes take."""
    parser.add_argument("--routing", default="task_sentence", choices=tfzoo.models.grec.ROUTINGS)
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--top-k", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--train-rows", type=int, help="train on this many of the training rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--table", action="store_true", help="the Table 1 grid instead of one model")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path(f"results/grec_{name}.json"))
    parser.add_argument("--runs", type=Path, default=Path(f"runs/grec_{name}"), help="where the `tfzoo train` runs go")
    parser.add_argument("--export-base", default="savedmodels")
    parser.add_argument("--summary", type=Path, help="append the model's summary line to this JSON-lines file")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="tiny model on a share of the training rows, batches of 128 (a minute or two)",
    )
    parser.add_argument(
        "--capacity-factor",
        type=float,
        default=tfzoo.models.grec.DEFAULT_CAPACITY_FACTOR,
        help="expert capacity factor of token and sentence routing (the tables of docs/grec.md's "
        "Table 1 section were measured with 2.0)",
    )
    parser.add_argument(
        "--upsample-tasks",
        action="store_true",
        help="upsample the training rows by (flow, use case) task (the paper's data preparation)",
    )


def model_sizes(demo: bool) -> dict[str, Any]:
    """Token width, heads, expert and tower widths: tiny for `--demo`."""
    if demo:
        return {"model_dim": 16, "num_heads": 2, "expert_units": (32,), "tower_units": (16,)}
    return {"model_dim": 32, "num_heads": 4, "expert_units": (64,), "tower_units": (32,)}


def run(args, name: str, dataset: str, data_options: Mapping[str, Any], options: Mapping[str, Any]) -> None:
    """`--table`: the grid; otherwise train one GRec, report it, export it and check the export."""
    options = {**options, **model_sizes(args.demo), "capacity_factor": args.capacity_factor}
    data_options = {**data_options, **({"train_rows": args.train_rows} if args.train_rows else {})}
    if args.table:
        run_grid(
            name,
            dataset,
            args.data,
            data_options,
            options,
            seeds=args.seeds,
            epochs=args.epochs,
            batch_size=args.batch_size,
            out=args.json,
            runs=args.runs / "table",
        )
        return
    options.update(routing=args.routing, num_experts=args.experts, top_k=args.top_k)
    run = train_variant(
        dataset,
        args.data,
        data_options,
        options,
        run_dir=args.runs / f"{args.routing}_{args.experts}-{args.top_k}_seed{args.seed}",
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        verbose=2,
    )
    print(f"split: {run.prepared.split}")
    test, spec = run.prepared.data.test, run.inputs.feature_spec
    print_report(
        f"grec {args.routing} {args.experts}/{args.top_k}", score(run.model, test, spec), reference_entries(run)
    )
    path = export_and_check(run.model, spec, test, args.export_base, f"grec_{name}")
    if args.summary:
        append_summary(args.summary, run_summary(run.directory, export=path, checks={"fresh process": True}))
