"""SUPER-MoE on MovieLens-100K behaviour sequences, as tfzoo runs: pre-train, fine-tune, compare.

    python recipes/supermoe_movielens.py --data PATH/ml-100k [--folds 5] [--seeds 0 1 2] \
        [--runs runs/supermoe_movielens] [--out results.json]
    python recipes/supermoe_movielens.py --demo      # generated sequences, one fold, tiny models

Every model is a run of `tfzoo.training` (what `tfzoo pretrain` / `tfzoo train` write,
with early stopping on validation), so the recipe and the command line share one path:

- pre-training runs (`supermoe_mcp`, masked channel prediction: every channel of a masked
  step hidden; item and rating predicted): the MoE encoder, the MoE encoder with eq. 6's
  gate as written (`ffn_gate="paper"`), and two dense (one expert per mixture) encoders,
  compute-matched and parameter-matched (`dense_counterpart`);
- fine-tuning runs started from them (`init_from`): supermoe, supermoe_auc_weights (eq. 10),
  supermoe_paper_gate, supermoe_frozen (towers only, on the pre-trained encoder), bert,
  bert_parameter_matched; and supermoe_no_pretrain;
- mmoe and ple on the flat view of the same examples, and logistic regression on the
  bag features (C chosen on validation; the SUPER-MoE task's baseline).

Data: dataset `movielens_sequences` (the title embeddings of `derived/` beside ml-100k),
one example every `--stride`-th rating of each user, `--length` steps. With `--folds K`
(default 5) user-level cross-validation: each fold's test users are unseen in its
training, and over the K folds every user is tested once; the test predictions of the
K folds are pooled, so each AUC is over all users (`--folds 0`: the time split).
`--out` holds the tables and every (seed, fold)'s test metrics, not the predictions.

Reports, per model: the pooled test AUC per task (mean +/- std over seeds) and the
per-fold spread; held-out MCP loss and accuracy of every pre-training beside the
frequency baseline; the frozen user embedding H of each pre-trained encoder probed by
tuned logistic regression (Table 4 analogue: AUC, recall@10% / @50%). Writes `--out`
(JSON), keeps every run under `--runs` (a finished run is reused when the recipe is
started again) and exports the last supermoe run.
"""

from __future__ import annotations

# isort: off
import quiet_logs  # noqa: F401  (recipes/quiet_logs.py: TensorFlow quiet, before it loads)

# isort: on
import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from tfzoo.data.behaviour_sequences import BEHAVIOUR_TASKS, channel_columns, channel_dataset
from tfzoo.evaluation import format_task_table
from tfzoo.evaluation.logistic import tuned_logistic_regression
from tfzoo.evaluation.metrics import roc_auc, task_metrics
from tfzoo.export import check_in_fresh_process
from tfzoo.models.supermoe import dense_counterpart, encoder_parameters, masked_max_pool
from tfzoo.training import RunConfig, load_run, task_for, train
from tfzoo.training.summary import append_summary, run_summary

FINE_TUNED = (
    "supermoe",
    "supermoe_no_pretrain",
    "supermoe_auc_weights",
    "supermoe_paper_gate",
    "supermoe_frozen",
    "bert",
    "bert_parameter_matched",
)
TABULAR = ("mmoe", "ple")
MODELS = (*FINE_TUNED, *TABULAR, "logistic_regression")
# The pre-training each fine-tuned model starts from (None: from scratch).
PRETRAINED_FROM = {
    "supermoe": "moe",
    "supermoe_auc_weights": "moe",
    "supermoe_paper_gate": "moe_paper_gate",
    "supermoe_frozen": "moe",
    "bert": "dense_compute",
    "bert_parameter_matched": "dense_parameters",
    "supermoe_no_pretrain": None,
}


def recall_at_top(labels, scores, fraction, mask):
    """Share of the positives found in the top `fraction` of rows by score."""
    keep = mask > 0
    labels, scores = labels[keep], scores[keep]
    top = np.argsort(-scores, kind="stable")[: max(1, int(round(fraction * len(scores))))]
    return float(labels[top].sum() / max(labels.sum(), 1.0))


def trained(config: RunConfig, directory: Path) -> dict:
    """The metrics of the run in `directory`, trained now unless it finished before."""
    metrics_path = directory / "metrics.json"
    if metrics_path.exists():
        return json.loads(metrics_path.read_text())
    if directory.exists():  # an interrupted run: continue it
        return train(config, directory, resume=True, verbose=0)
    return train(config, directory, verbose=0)


def encoders(args, sample) -> dict[str, dict]:
    """Encoder options of the four pre-trainings (the channels come from the data)."""
    moe = dict(
        units=args.units,
        category_dim=8,
        id_dim=args.units,
        num_blocks=1,
        num_heads=2,
        key_dim=args.units // 2,
        ffn_units=2 * args.units,
        num_experts=args.experts,
    )
    channels = {
        "category_channels": sample["category_channels"],
        "id_channels": sample["id_channels"],
        "dense_channels": sample["dense_channels"],
    }
    features = sample["features"]
    with_channels = {**moe, **channels}
    parameter_matched = dense_counterpart(with_channels, features, match="parameters")
    result = {
        "moe": moe,
        "moe_paper_gate": {**moe, "ffn_gate": "paper"},
        "dense_compute": {**moe, "num_experts": 1},
        "dense_parameters": {**moe, "num_experts": 1, "ffn_units": parameter_matched["ffn_units"]},
    }
    for name, options in result.items():
        print(
            f"encoder {name}: {encoder_parameters({**options, **channels}, features):,} parameters "
            f"(ffn_units {options['ffn_units']}, experts {options['num_experts']})",
            flush=True,
        )
    return result


def embeddings(encoder, rows, batch_size: int = 1024) -> np.ndarray:
    """Frozen H = MaxPooling(h_o) [rows, d] of a pre-trained encoder."""
    parts = [
        masked_max_pool(encoder(batch), encoder.padding_mask(batch)).numpy()
        for batch in channel_dataset(rows, batch_size, labels=False)
    ]
    return np.concatenate(parts)


def probe(pretraining_dir: Path) -> dict[str, np.ndarray]:
    """Test scores of tuned logistic regressions on the frozen H of a pre-training run."""
    run = load_run(pretraining_dir)
    data, encoder = run.prepared.data, run.model.encoder
    train_h, validation_h, test_h = (embeddings(encoder, part) for part in (data.train, data.validation, data.test))
    mean, std = train_h.mean(0), train_h.std(0) + 1e-6
    scores = {}
    for task in BEHAVIOUR_TASKS:
        model, _ = tuned_logistic_regression(
            (train_h - mean) / std,
            data.train.labels[task],
            (validation_h - mean) / std,
            data.validation.labels[task],
            train_weight=data.train.label_masks[task],
            validation_weight=data.validation.label_masks[task],
        )
        scores[task] = model.decision_function((test_h - mean) / std)
    return scores


def one_fold(args, dataset, data_path, data_options, seed, root: Path) -> dict:
    """Every run of one (fold, seed): test predictions per model, MCP metrics, probe scores."""
    common = dict(
        dataset=dataset,
        data_path=data_path,
        data_options=data_options,
        split_seed=args.split_seed,
        seed=seed,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        patience=args.patience,
    )
    wanted = [m for m in MODELS if not args.only or m in args.only]
    pretrainings = sorted({PRETRAINED_FROM[m] for m in wanted if PRETRAINED_FROM.get(m)})
    # The channels and a batch of this fold's data fix the encoders' sizes.
    task = task_for("supermoe")
    sample_run = task.prepare(RunConfig(model="supermoe", epochs=1, **common), None)
    train_rows = sample_run.data.train
    sample = {
        **sample_run.inputs.channels,
        "features": channel_columns(train_rows.take(np.arange(min(8, len(train_rows))))),
    }
    test = sample_run.data.test
    result = {
        "test": {"labels": test.labels, "masks": test.label_masks, "users": test.features["user_id"]},
        "predictions": {},
        "mcp": {},
        "probe": {},
        "seconds": {},
        "split": sample_run.split,
    }
    options = encoders(args, sample)
    mcp_options = {"mask_rate": args.mask_rate, "num_sampled": args.num_sampled}
    for name in pretrainings:
        began = time.perf_counter()
        config = RunConfig(
            model="supermoe_mcp",
            epochs=args.pretrain_epochs,
            model_options={"encoder": options[name], **mcp_options},
            **common,
        )
        metrics = trained(config, root / f"mcp_{name}")
        result["mcp"][name] = {
            "validation": metrics["validation"],
            "test": metrics["test"],
            "frequency (test)": metrics["baselines"]["test"]["frequency"],
            "best_epoch": metrics["best_epoch"],
        }
        if not args.demo:
            result["probe"][name] = probe(root / f"mcp_{name}")
        result["seconds"][f"mcp_{name}"] = time.perf_counter() - began
    for name in wanted:
        began = time.perf_counter()
        if name in FINE_TUNED:
            source = PRETRAINED_FROM[name]
            model_options = {"task_weight_rate": args.task_weight_rate} if name == "supermoe_auc_weights" else {}
            if name == "supermoe_frozen":
                model_options["freeze_encoder"] = True
            if source is None:
                model_options["encoder"] = options["moe"]
            config = RunConfig(
                model="supermoe",
                epochs=args.epochs,
                model_options=model_options,
                init_from=str(root / f"mcp_{source}") if source else None,
                **common,
            )
            model_name = "supermoe"
        elif name in TABULAR:
            sizes = {"expert_units": [32], "tower_units": [16]}
            config = RunConfig(
                model=name,
                epochs=args.epochs,
                **common,
                model_options={"num_experts": 4, **sizes} if name == "mmoe" else sizes,
            )
            model_name = name
        else:  # logistic regression: the SUPER-MoE task's baseline, on this fold's bag features
            result["predictions"][name] = task.baseline_predictions(sample_run, "test")["logistic_regression"]
            result["seconds"][name] = time.perf_counter() - began
            continue
        trained(config, root / name)
        run = load_run(root / name)
        result["predictions"][name] = task_for(model_name).predictions(run.prepared, "test")
        result["seconds"][name] = time.perf_counter() - began
        print(
            f"  {name}: "
            + ", ".join(
                f"{t} {roc_auc(test.labels[t], p, test.label_masks[t]):.4f}"
                for t, p in result["predictions"][name].items()
            )
            + f" ({result['seconds'][name]:.0f} s)",
            flush=True,
        )
    return result


def pooled(folds: list[dict], scores_of) -> dict[str, dict[str, float]]:
    """Metrics over the test rows of every fold together (each user once)."""
    labels = {t: np.concatenate([f["test"]["labels"][t] for f in folds]) for t in BEHAVIOUR_TASKS}
    masks = {t: np.concatenate([f["test"]["masks"][t] for f in folds]) for t in BEHAVIOUR_TASKS}
    scores = {t: np.concatenate([scores_of(f)[t] for f in folds]) for t in BEHAVIOUR_TASKS}
    report = task_metrics(labels, scores, masks)
    for t in BEHAVIOUR_TASKS:
        for fraction in (0.1, 0.5):
            report[t][f"recall@{int(fraction * 100)}%"] = recall_at_top(labels[t], scores[t], fraction, masks[t])
    return report


def _mean_std(values) -> str:
    values = [v for v in values if v == v]
    if not values:
        return "-"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.4f}"


def tables(results: dict[int, list[dict]]) -> dict[str, str]:
    """Markdown tables: pooled test AUC per model, MCP metrics, frozen-embedding probes."""
    seeds = sorted(results)
    models = [m for m in MODELS if m in results[seeds[0]][0]["predictions"]]
    folds = len(results[seeds[0]])
    lines = ["| model | " + " | ".join(BEHAVIOUR_TASKS) + " |", "|---|" + "---|" * len(BEHAVIOUR_TASKS)]
    for model in models:
        per_seed = [pooled(results[s], lambda f, m=model: f["predictions"][m]) for s in seeds]
        per_fold = [
            task_metrics(f["test"]["labels"], f["predictions"][model], f["test"]["masks"])
            for s in seeds
            for f in results[s]
        ]
        cells = [
            f"{_mean_std([r[t]['auc'] for r in per_seed])} (folds {_mean_std([r[t]['auc'] for r in per_fold])})"
            for t in BEHAVIOUR_TASKS
        ]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    auc = "\n".join(lines)
    lines = [
        "| pre-training | channel | validation loss | validation accuracy | test accuracy | frequency accuracy "
        "(test) | frequency loss (test) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in results[seeds[0]][0]["mcp"]:
        for channel in results[seeds[0]][0]["mcp"][name]["validation"]:
            entries = [f["mcp"][name] for s in seeds for f in results[s]]
            lines.append(
                f"| {name} | {channel} | "
                + " | ".join(
                    _mean_std(values)
                    for values in (
                        [e["validation"][channel]["loss"] for e in entries],
                        [e["validation"][channel]["accuracy"] for e in entries],
                        [e["test"][channel]["accuracy"] for e in entries],
                        [e["frequency (test)"][channel]["accuracy"] for e in entries],
                        [e["frequency (test)"][channel]["loss"] for e in entries],
                    )
                )
                + " |"
            )
    mcp = "\n".join(lines)
    lines = ["| frozen H of | task | AUC | recall@10% | recall@50% |", "|---|---|---|---|---|"]
    for name in results[seeds[0]][0]["probe"]:
        per_seed = [pooled(results[s], lambda f, n=name: f["probe"][n]) for s in seeds]
        for t in BEHAVIOUR_TASKS:
            lines.append(
                f"| {name} | {t} | "
                + " | ".join(_mean_std([r[t][m] for r in per_seed]) for m in ("auc", "recall@10%", "recall@50%"))
                + " |"
            )
    probes = "\n".join(lines) if len(lines) > 2 else ""
    return {
        "auc": f"pooled test AUC over {folds} fold(s), mean ± std over {len(seeds)} seed(s) "
        f"(per-fold AUC: mean ± std over folds and seeds)\n\n{auc}",
        "mcp": mcp,
        "probe": probes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the ml-100k folder (its derived/ title embeddings beside it)")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="generated sequences, one fold of 5, tiny models, SUPER-MoE and logistic regression only",
    )
    parser.add_argument("--folds", type=int, default=5, help="user-level cross-validation folds (0: the time split)")
    parser.add_argument("--fold", type=int, nargs="+", help="run only these folds (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--split-seed", type=int, default=0, help="deals the users into folds")
    parser.add_argument("--length", type=int, default=20)
    parser.add_argument("--stride", type=int, default=4)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--experts", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=10, help="most fine-tuning epochs (early stopping)")
    parser.add_argument("--pretrain-epochs", type=int, default=10, help="most pre-training epochs (early stopping)")
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--mask-rate", type=float, default=0.2)
    parser.add_argument("--num-sampled", type=int, default=64)
    parser.add_argument("--task-weight-rate", type=float, default=0.01)
    parser.add_argument("--only", nargs="+", choices=MODELS, help="only these models (and the pre-trainings they need)")
    parser.add_argument("--runs", type=Path, help="where the runs go (default: a temporary folder)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--export-base", default="savedmodels")
    parser.add_argument("--summary", type=Path, help="append the exported model's summary line to this JSON-lines file")
    args = parser.parse_args()

    if args.demo:
        dataset, data_path, extra = "generated_sequences", None, {}
        args.seeds, args.units, args.experts, args.epochs, args.pretrain_epochs = [0], 16, 2, 2, 1
        args.num_sampled, args.only, args.fold = 32, args.only or ["supermoe", "logistic_regression"], [0]
    else:
        if not args.data:
            parser.error("--data is required without --demo")
        dataset, data_path, extra = "movielens_sequences", args.data, {"stride": args.stride, "length": args.length}
    folds = [None] if args.folds == 0 else (args.fold if args.fold is not None else list(range(args.folds)))
    with tempfile.TemporaryDirectory() as scratch:
        root = args.runs or Path(scratch)
        results: dict[int, list[dict]] = {}
        for seed in args.seeds:
            for fold in folds:
                options = {**extra, **({} if fold is None else {"fold": fold, "folds": args.folds})}
                where = root / (f"fold{fold}" if fold is not None else "time") / f"seed{seed}"
                print(f"seed {seed}, {'fold ' + str(fold) if fold is not None else 'time split'}", flush=True)
                results.setdefault(seed, []).append(one_fold(args, dataset, data_path, options, seed, where))
                print(f"  split: {results[seed][-1]['split']}", flush=True)
        report = tables(results)
        if len(args.seeds) == len(folds) == 1:  # one split: plain tables, as every tfzoo table
            print(f"\n{one_split_tables(results[args.seeds[0]][0])}")
        else:
            for title, table in report.items():
                if table:
                    print(f"\n{title}\n{table}")
        if "supermoe" in results[args.seeds[-1]][-1]["predictions"]:
            last = root / (f"fold{folds[-1]}" if folds[-1] is not None else "time") / f"seed{args.seeds[-1]}"
            run = load_run(last / "supermoe", with_data=False)
            path = task_for("supermoe").export(run, args.export_base, "supermoe")
            difference = check_in_fresh_process(path)
            print(
                f"exported {path}; a fresh TensorFlow-only process answers as this one (max abs difference "
                f"{difference:.1e})"
            )
            if args.summary:
                append_summary(
                    args.summary, run_summary(last / "supermoe", export=path, checks={"fresh process": True})
                )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(
                {"args": {k: str(v) for k, v in vars(args).items()}, "tables": report, "folds": summary(results)},
                indent=1,
                default=_json,
            )
        )


def one_split_tables(fold: dict) -> str:
    """The results of one (seed, fold) as tfzoo's plain tables: test AUC / AP per model,
    then each pre-training's masked-step loss and accuracy beside the frequency baseline."""
    test = fold["test"]
    rows = [
        (f"{model} (test)", task_metrics(test["labels"], predictions, test["masks"]))
        for model, predictions in fold["predictions"].items()
    ]
    mcp = []
    for name, entry in fold["mcp"].items():
        mcp += [(f"mcp {name} (validation)", entry["validation"]), (f"mcp {name} (test)", entry["test"])]
    if fold["mcp"]:
        mcp.append(("channel frequencies (test)", next(iter(fold["mcp"].values()))["frequency (test)"]))
    tables = [format_task_table(rows)]
    if mcp:
        tables.append(
            "masked channel prediction, held-out sequences\n" + format_task_table(mcp, metrics=("loss", "accuracy"))
        )
    return "\n\n".join(tables)


def summary(results: dict[int, list[dict]]) -> list[dict]:
    """Per (seed, fold): the split, every model's test metrics, MCP metrics, seconds (no raw predictions)."""
    rows = []
    for seed, folds in results.items():
        for fold in folds:
            test = fold["test"]
            rows.append(
                {
                    "seed": seed,
                    "split": fold["split"],
                    "mcp": fold["mcp"],
                    "seconds": fold["seconds"],
                    "test": {
                        model: task_metrics(test["labels"], predictions, test["masks"])
                        for model, predictions in fold["predictions"].items()
                    },
                    "probe": {
                        name: task_metrics(test["labels"], scores, test["masks"])
                        for name, scores in fold["probe"].items()
                    },
                }
            )
    return rows


def _json(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")


if __name__ == "__main__":
    main()
