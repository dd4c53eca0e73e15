"""Where does gradient boosting's edge over the neural baselines on Census income come from?

    .venv/bin/python bench/census_gap.py [--mmoe-runs bench/out/census]
    .venv/bin/python bench/census_gap.py --quick    # 2,000 training rows, one-epoch MMoE: checks that it runs

Fits on the `census` training split and scores the test split (income task):
- gradient-boosted trees on all features, on categorical features only, and on numeric
  features only;
- logistic regression on the plain (log-)standardised numbers, and on the same numbers
  one-hot encoded into the 16 training-quantile buckets that tfzoo's Census spec gives the
  neural models (a linear model that can use thresholds);
- if MMoE runs of `bench/census_baselines.py` exist: their test AUC, and the AUC of the
  average of MMoE's and the trees' predictions (complementary errors raise it);
- a learning curve: trees and MMoE (`--epochs`, default 10, seed 0) trained on a random
  25% and 50% of the training rows, next to the full-split figures: if the gap narrows
  as rows grow, it is sample efficiency.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from tfzoo.data import load_dataset, make_dataset
from tfzoo.evaluation import roc_auc
from tfzoo.models import MMoE
from tfzoo.training import RunConfig, load_run, train

TASK = "income"
DEFAULT_RUNS = "bench/out/census"  # where census_baselines.py writes its runs
DEFAULT_OUT = "bench/out/census_gap.json"
QUICK_TRAIN_ROWS = 2000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mmoe-runs",
        help=f"folder of census_baselines.py's mmoe-seed* runs (default {DEFAULT_RUNS}; --quick: one MMoE run "
        "trained here as census_baselines.py --quick trains it, in a temp dir)",
    )
    parser.add_argument("--fractions", type=float, nargs="*", default=[0.25, 0.5])
    parser.add_argument("--epochs", type=int, default=10, help="MMoE epochs of the learning curve")
    parser.add_argument("--out", help=f"write the AUCs as JSON here (default {DEFAULT_OUT}; --quick: not written)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_TRAIN_ROWS:,} training rows, one MMoE epoch, learning curve at 50%% only: checks that the bench runs",
    )
    args = parser.parse_args(argv)
    data_options = {}
    if args.quick:
        args.fractions, args.epochs, data_options = [0.5], 1, {"train_rows": QUICK_TRAIN_ROWS}
    if args.out is None and not args.quick:
        args.out = DEFAULT_OUT
    # Quick runs must not read the full runs: the MMoE rows need runs trained on the same rows.
    train_quick_run = args.quick and args.mmoe_runs is None
    runs_folder = (
        tempfile.TemporaryDirectory() if train_quick_run else contextlib.nullcontext(args.mmoe_runs or DEFAULT_RUNS)
    )
    with runs_folder as runs:
        if train_quick_run:
            config = RunConfig(
                model="mmoe", dataset="census", epochs=1, batch_size=512, seed=0, data_options=data_options
            )
            train(config, Path(runs) / "mmoe-seed0", verbose=0)
        _compare(args, data_options, Path(runs))


def _compare(args: argparse.Namespace, data_options: dict, mmoe_runs: Path) -> None:
    splits = load_dataset("census", options=data_options)
    spec = splits.train.spec.fit(splits.train.features)
    categorical = [f.name for f in spec.features if f.kind == "categorical"]
    numeric = [f for f in spec.features if f.kind == "numeric"]

    def numbers(rows, standardised=True):
        columns = []
        for f in numeric:
            x = f.transform_np(rows.features[f.name])
            x = np.where(np.isfinite(x), x, f.mean)
            columns.append((x - f.mean) / f.std if standardised else x)
        return np.stack(columns, axis=1)

    def buckets(rows):
        z = numbers(rows)
        return np.stack([np.searchsorted(f.boundaries, z[:, i], side="right") for i, f in enumerate(numeric)], axis=1)

    def categories(rows):
        return np.stack([rows.features[n].astype(str) for n in categorical], axis=1)

    y_train, y_test = splits.train.labels[TASK], splits.test.labels[TASK]
    trees = lambda cat: HistGradientBoostingClassifier(  # noqa: E731
        max_iter=500,
        learning_rate=0.05,
        categorical_features=cat,
        early_stopping=True,
        validation_fraction=0.1,
        random_state=0,
    )
    ordinal = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1).fit(categories(splits.train))
    cat_train, cat_test = ordinal.transform(categories(splits.train)), ordinal.transform(categories(splits.test))
    num_train, num_test = numbers(splits.train, False), numbers(splits.test, False)
    results = {}
    n_cat = len(categorical)
    for name, x_train, x_test, cat in (
        ("trees, all features", np.c_[cat_train, num_train], np.c_[cat_test, num_test], list(range(n_cat))),
        ("trees, categorical only", cat_train, cat_test, list(range(n_cat))),
        ("trees, numeric only", num_train, num_test, None),
    ):
        model = trees(cat).fit(x_train, y_train)
        results[name] = model.predict_proba(x_test)[:, 1]

    onehot = lambda: OneHotEncoder(handle_unknown="ignore")  # noqa: E731
    for name, make_numeric in (
        ("logistic, standardised numbers", lambda rows: numbers(rows)),
        ("logistic, numbers as quantile buckets", buckets),
    ):
        x_train = np.c_[categories(splits.train), make_numeric(splits.train)].astype(object)
        x_test = np.c_[categories(splits.test), make_numeric(splits.test)].astype(object)
        numeric_step = (
            ("scale", StandardScaler(), list(range(n_cat, x_train.shape[1])))
            if "standardised" in name
            else ("onehot_buckets", onehot(), list(range(n_cat, x_train.shape[1])))
        )
        model = make_pipeline(
            ColumnTransformer([("onehot", onehot(), list(range(n_cat))), numeric_step]),
            LogisticRegression(max_iter=3000),
        )
        results[name] = model.fit(x_train, y_train).predict_proba(x_test)[:, 1]

    runs = sorted(mmoe_runs.glob("mmoe-seed*"))
    if runs:
        mmoe = []
        for run_dir in runs:
            run = load_run(run_dir)
            predictions = run.model.predict(
                make_dataset(splits.test, spec, batch_size=4096, with_labels=False), verbose=0
            )
            mmoe.append(np.asarray(predictions[TASK]))
        results[f"MMoE ({len(runs)} seeds, each)"] = mmoe
        results["average of MMoE (mean of seeds) and trees"] = (
            np.mean(mmoe, axis=0) + results["trees, all features"]
        ) / 2

    for fraction in args.fractions:
        rows = np.sort(np.random.default_rng(0).permutation(len(splits.train))[: int(fraction * len(splits.train))])
        subset = splits.train.take(rows)
        subset_spec = subset.spec.fit(subset.features)
        model = trees(list(range(n_cat))).fit(np.c_[cat_train, num_train][rows], y_train[rows])
        results[f"trees, {fraction:.0%} of training rows"] = model.predict_proba(np.c_[cat_test, num_test])[:, 1]
        tf.keras.utils.set_random_seed(0)
        mmoe_model = MMoE(feature_spec=subset_spec)
        mmoe_model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
        mmoe_model.fit(
            make_dataset(subset, subset_spec, batch_size=512, shuffle=True, seed=0), epochs=args.epochs, verbose=0
        )
        predictions = mmoe_model.predict(
            make_dataset(splits.test, subset_spec, batch_size=4096, with_labels=False), verbose=0
        )
        results[f"MMoE, {fraction:.0%} of training rows"] = np.asarray(predictions[TASK])

    print(f"Census-Income {TASK} test AUC; {splits.split}")
    print("| model | test AUC |")
    print("|---|---:|")
    for name, scores in results.items():
        if isinstance(scores, list):
            values = [roc_auc(y_test, s) for s in scores]
            print(f"| {name} | {np.mean(values):.4f} +/- {np.std(values):.4f} |")
        else:
            print(f"| {name} | {roc_auc(y_test, scores):.4f} |")
    if args.out is None:
        return
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                k: ([roc_auc(y_test, s) for s in v] if isinstance(v, list) else roc_auc(y_test, v))
                for k, v in results.items()
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
