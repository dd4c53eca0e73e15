"""The tfzoo demo (`make demo`): train, evaluate, export and reload the zoo's models.

Runs on any machine with the project installed, on data that ships with tfzoo or is
generated; demo-sized models, a few minutes on 2 cores.
"""

from __future__ import annotations

# isort: off
import quiet_logs  # noqa: F401  (recipes/quiet_logs.py: TensorFlow quiet, before it loads)

# isort: on
import argparse
import dataclasses
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from serve_and_query import serve_and_query  # recipes/serve_and_query.py, beside this file

from tfzoo.data import make_dataset
from tfzoo.evaluation import format_task_table
from tfzoo.export import call_in_fresh_process
from tfzoo.training import RunConfig, load_run, task_for, train
from tfzoo.training.summary import SummaryRow, format_summary, read_summary, run_summary

BASELINES = ("single_task", "shared_bottom", "mmoe", "ple")


def step(message: str) -> None:
    print(f"\n=== {message}", flush=True)


def census_baselines(work: Path, export_base: Path, epochs: int) -> tuple[list[tuple[str, dict]], list[SummaryRow]]:
    step(
        f"Training the multi-task baselines on Census-Income (bundled UCI data; tasks: income > 50K, "
        f"never married; at most {epochs} epochs each, the best by validation AUC kept)"
    )
    rows, seconds = [], {}
    for name in BASELINES:
        run_dir = work / "runs" / f"{name}_census"
        print(f"\n--- {name} -> {run_dir}", flush=True)
        began = time.perf_counter()
        # `train` reports the restored best epoch on the test split (exact AUC / AP), as
        # `tfzoo evaluate` would, without loading the run again.
        metrics = train(
            RunConfig(model=name, dataset="census", epochs=epochs, batch_size=512, seed=0), run_dir, verbose=2
        )
        seconds[name] = time.perf_counter() - began
        rows.append((f"{name} (test)", metrics["test"]))
        print(
            f"{name} (best epoch {metrics['best_epoch']}, test): "
            + ", ".join(f"{task} AUC {m['auc']:.4f}" for task, m in metrics["test"].items()),
            flush=True,
        )
    # Every run reports the strong simple baselines on the same rows (fitted once here:
    # the four runs share the data); they close the table.
    rows += [(f"{baseline} (test, reference)", report) for baseline, report in metrics["baselines"]["test"].items()]

    step(
        f"Exporting each model to {export_base}/ (TF Serving layout) and reloading it in a fresh process "
        "that imports TensorFlow only"
    )
    summary = []
    for name in BASELINES:
        began = time.perf_counter()
        run_dir = work / "runs" / f"{name}_census"
        run = load_run(run_dir)
        path = task_for(name).export(run, export_base, f"{name}_census")
        spec, rows8 = run.inputs.feature_spec, run.prepared.data.test.take(np.arange(8))
        sample = {feature: rows8.features[feature] for feature in spec.feature_names}
        features = next(iter(make_dataset(rows8, spec, batch_size=8, with_labels=False)))
        # One eager call: `predict` traces a function per model, and TensorFlow's retracing
        # detector, which keys on the function's code rather than the model, warned of
        # "retracing" once this process had traced it for five models.
        in_process = {task: p.numpy() for task, p in run.model(features, training=False).items()}
        served = call_in_fresh_process(path, sample)
        difference = max(float(np.abs(served[t] - in_process[t]).max()) for t in served)
        print(f"{path}: fresh-process outputs match in-process ones (max abs difference {difference:.1e})", flush=True)
        seconds[name] += time.perf_counter() - began
        summary.append(
            run_summary(run_dir, export=path, checks={"fresh process": difference <= 1e-5}, seconds=seconds[name])
        )
    return rows, summary


RECIPE_DEMOS = (
    (
        "grec_census.py",
        "GRec (task-sentence routing, 8 experts, top-4) on Census-Income flows x use cases; "
        "exported with extracted per-task experts",
    ),
    (
        "ssmtl_twitch.py",
        "SSMTL friend retrieval (GATv2 on sampled 2-hop subgraphs with user-id embeddings; "
        "in-batch retrieval, log-Q corrected) on a generated friend graph, next to the graph heuristics; "
        "exported with its ScaNN index",
    ),
    (
        "supermoe_movielens.py",
        "SUPER-MoE: masked channel pre-training, then multi-task fine-tuning, on generated "
        "behaviour sequences; exported with its user_embedding signature",
    ),
)


def recipe_demos(export_base: Path, summary_file: Path) -> list[SummaryRow]:
    """Each zoo recipe's `--demo`, as a user would run it, exporting next to the baselines;
    each appends its model's summary line to `summary_file`."""
    rows = []
    for recipe, what in RECIPE_DEMOS:
        step(f"{what}  [python recipes/{recipe} --demo]")
        began, known = time.perf_counter(), len(read_summary(summary_file)) if summary_file.exists() else 0
        subprocess.run(
            [
                sys.executable,
                str(Path(__file__).parent / recipe),
                "--demo",
                "--export-base",
                str(export_base),
                "--summary",
                str(summary_file),
            ],
            check=True,
        )
        seconds = time.perf_counter() - began
        rows += [dataclasses.replace(row, seconds=seconds) for row in read_summary(summary_file)[known:]]
    return rows


def served_as_loaded(row: SummaryRow, answers: dict) -> bool:
    """Whether the server answered every predict signature of `row`'s export from that
    version, as the SavedModel loaded in this process answers the same inputs."""
    if row.export is None:
        return False
    path = Path(row.export)
    exchanges = answers.get(path.parent.name, {})
    if not exchanges:
        return False
    loaded = tf.saved_model.load(str(path))
    for signature, exchange in exchanges.items():
        if exchange.version != int(path.name):
            return False
        inputs = {key: tf.constant(value) for key, value in exchange.inputs.items()}
        for key, want in loaded.signatures[signature](**inputs).items():
            want, got = want.numpy(), exchange.outputs[key]
            same = np.allclose(got, want, atol=1e-5) if want.dtype.kind in "fc" else np.array_equal(got, want)
            if not same:
                return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", default=".demo", help="where runs go (recreated)")
    parser.add_argument("--export-base", default="savedmodels")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    work = Path(args.work_dir)
    shutil.rmtree(work / "runs", ignore_errors=True)
    summary_file = work / "summary.jsonl"
    summary_file.unlink(missing_ok=True)

    census_rows, summary = census_baselines(work, Path(args.export_base), args.epochs)
    summary += recipe_demos(Path(args.export_base), summary_file)

    step("Per-task test AUC / AP (Census-Income, random 80/10/10 split, seed 0)")
    print(format_task_table(census_rows))

    step(f"Serving {args.export_base}/ over TF Serving's gRPC API (tfzoo serve) and querying every model")
    answers = serve_and_query(args.export_base)
    summary = [row.with_check("gRPC", served_as_loaded(row, answers)) for row in summary]
    summary_file.write_text("".join(row.to_json() + "\n" for row in summary))

    step(
        f"Summary: each model's test metric beside the best simple baseline the zoo fits on the same split, "
        f"its export (served by `tfzoo serve --model-base-path {args.export_base}`) and its checks"
    )
    print(format_summary(summary))
    print(f"\nruns in {work / 'runs'}, exports in {args.export_base}/, this table in {summary_file}")
    failed = [row.model for row in summary if not all(row.checks.values())]
    print(f"demo finished in {time.perf_counter() - started:.0f} s", flush=True)
    if failed:
        sys.exit(f"checks failed for: {', '.join(failed)}")


if __name__ == "__main__":
    main()
