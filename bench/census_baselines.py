"""Census-Income: test AUC / AP of the multi-task baselines (mean and std over seeds), next
to a logistic regression and gradient-boosted trees fitted on the same training split.

    .venv/bin/python bench/census_baselines.py [--seeds 0 1 2] [--epochs 10] [--out bench/out/census]
    .venv/bin/python bench/census_baselines.py --quick    # MMoE, 2,000 training rows, one epoch: checks that it runs

Split: the `census` dataset of tfzoo (random 80/10/10 of the bundled file, split seed 0);
the neural models train on the 80% and report the 10% test split at their last epoch;
the references fit on the same 80% (scikit-learn, a dev dependency).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from tfzoo.data import load_dataset
from tfzoo.evaluation import task_metrics
from tfzoo.training import RunConfig, train

MODELS = ("single_task", "shared_bottom", "mmoe", "ple")
DEFAULT_OUT = "bench/out/census"
QUICK_TRAIN_ROWS = 2000


def reference_models(splits) -> dict[str, dict]:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    spec = splits.train.spec
    categorical = [f.name for f in spec.features if f.kind == "categorical"]
    numeric = [f.name for f in spec.features if f.kind == "numeric"]

    def matrix(rows):
        numbers = np.stack([spec.feature(n).transform_np(rows.features[n]) for n in numeric], axis=1)
        numbers = np.where(np.isfinite(numbers), numbers, np.nan)
        categories = np.stack([rows.features[n].astype(str) for n in categorical], axis=1)
        return np.concatenate([categories, numbers.astype(object)], axis=1)

    columns = list(range(len(categorical))), list(range(len(categorical), len(categorical) + len(numeric)))
    train_x, test_x = matrix(splits.train), matrix(splits.test)
    mean = np.nanmean(train_x[:, columns[1]].astype(float), axis=0)

    def impute(x):
        x = x.copy()
        values = x[:, columns[1]].astype(float)
        x[:, columns[1]] = np.where(np.isnan(values), mean, values)
        return x

    logistic = make_pipeline(
        ColumnTransformer(
            [("onehot", OneHotEncoder(handle_unknown="ignore"), columns[0]), ("scale", StandardScaler(), columns[1])]
        ),
        LogisticRegression(max_iter=2000, C=1.0),
    )
    trees = make_pipeline(
        ColumnTransformer(
            [
                ("ordinal", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), columns[0]),
                ("pass", "passthrough", columns[1]),
            ]
        ),
        HistGradientBoostingClassifier(
            max_iter=500,
            learning_rate=0.05,
            categorical_features=list(columns[0]),
            early_stopping=True,
            validation_fraction=0.1,
            random_state=0,
        ),
    )
    results = {}
    for name, estimator, x_train, x_test in (
        ("logistic regression", logistic, impute(train_x), impute(test_x)),
        ("gradient-boosted trees", trees, train_x, test_x),
    ):
        started = time.perf_counter()
        predictions = {}
        for task in spec.labels:
            estimator.fit(x_train, splits.train.labels[task])
            predictions[task] = estimator.predict_proba(x_test)[:, 1]
        results[name] = {
            "test": task_metrics(splits.test.labels, predictions, splits.test.label_masks),
            "seconds": time.perf_counter() - started,
        }
        print(f"{name}: {json.dumps({t: round(v['auc'], 4) for t, v in results[name]['test'].items()})}", flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--models", nargs="+", help=f"default {' '.join(MODELS)}; --quick: mmoe")
    parser.add_argument("--out", help=f"run directories and results.json (default {DEFAULT_OUT}; --quick: a temp dir)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"MMoE (seed 0, one epoch) and the references on {QUICK_TRAIN_ROWS:,} training rows: "
        "checks that the bench runs",
    )
    args = parser.parse_args(argv)
    data_options = {}
    if args.quick:
        args.seeds, args.epochs, data_options = [0], 1, {"train_rows": QUICK_TRAIN_ROWS}
    # Quick: one model exercises the loop (and is what census_gap.py reads); each more costs a training run.
    args.models = args.models or (["mmoe"] if args.quick else list(MODELS))
    # Quick runs must not land in (or be read back from) the full runs' directory.
    out_folder = (
        tempfile.TemporaryDirectory()
        if args.quick and args.out is None
        else contextlib.nullcontext(args.out or DEFAULT_OUT)
    )
    with out_folder as out:
        _run(args, data_options, Path(out))


def _run(args: argparse.Namespace, data_options: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    splits = load_dataset("census", options=data_options)
    print(f"split: {splits.split}", flush=True)
    results = {"split": splits.split, "epochs": args.epochs, "references": reference_models(splits), "models": {}}
    for model in args.models:
        runs = []
        for seed in args.seeds:
            run_dir = out / f"{model}-seed{seed}"
            config = RunConfig(
                model=model,
                dataset="census",
                epochs=args.epochs,
                batch_size=512,
                seed=seed,
                data_options=data_options,
            )
            metrics = (
                json.loads((run_dir / "metrics.json").read_text())
                if (run_dir / "metrics.json").exists()
                else train(config, run_dir, verbose=0)
            )
            runs.append(metrics)
            print(
                f"{model} seed {seed}: " + json.dumps({t: round(v["auc"], 4) for t, v in metrics["test"].items()}),
                flush=True,
            )
        results["models"][model] = runs
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    tasks = splits.train.spec.labels
    print(f"\nCensus-Income test AUC / AP, {splits.split}; mean +/- std over seeds {args.seeds}")
    print("| model | " + " | ".join(f"{t} AUC | {t} AP" for t in tasks) + " |")
    print("|---|" + "---|" * (2 * len(tasks)))
    for name, reference in results["references"].items():
        print(
            f"| {name} | "
            + " | ".join(f"{reference['test'][t]['auc']:.4f} | {reference['test'][t]['ap']:.4f}" for t in tasks)
            + " |"
        )
    for model, runs in results["models"].items():
        cells = []
        for task in tasks:
            for metric in ("auc", "ap"):
                values = np.array([r["test"][task][metric] for r in runs])
                cells.append(f"{values.mean():.4f} +/- {values.std():.4f}")
        print(f"| {model} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
