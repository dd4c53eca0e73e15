"""SSMTL experiments on the Twitch friend graphs, one `tfzoo train ssmtl` run per line.

    python bench/ssmtl_ablation.py --data ../shared/data/twitch_musae --regions ES ENGB \
        --grid objectives --seeds 0 1 2 3 4 --out docs/results/ssmtl_objectives.jsonl
    python bench/ssmtl_ablation.py --table docs/results/ssmtl_objectives.jsonl [--figures docs/figures]
    python bench/ssmtl_ablation.py --quick      # one 1-epoch run on a 200-user graph: checks that it runs

Every run goes through `tfzoo.training.train`, exactly as `tfzoo train ssmtl --dataset
twitch --data DIR/REGION --seed SEED --option ...` would: the split seed is 0 for every
run, batches hold 256 pairs, and training stops when validation Recall@50 has not
improved for 2 epochs (at most 12) with the best epoch evaluated, from the vectors the
export serves (`tfzoo train ssmtl`'s run defaults). Each finished run appends
one JSON line to `--out` (its options, best epoch, seconds, validation and test reports,
and per-user hit counts at K = 50 and 100 for paired bootstrap intervals; under `fused`
the same for what the export serves, the model's score fused with a heuristic at the
weight the run chose on validation); a run already in the file is skipped, so a grid can
be run in parts and a later run fills in what is missing. The first line of each
(region, split) holds the heuristic baselines on the same split
(`tfzoo.evaluation.heuristics`). `--fill-fusion --keep-runs DIR` recomputes `fused` for
rows written before the current fusion (heuristic and popularity weights chosen together
on validation), from their kept run directories; the earlier entry stays as
`fused_without_popularity`.

Grids (`--grid`):
- `default`: `tfzoo train ssmtl`'s defaults, nothing changed; and the previous default,
  the same with the paper's objectives (`+both (previous default)`).
- `levers`: the road from the previous model to the default, one lever added at a time.
- `objectives`: the default (+both, at the default calibrated scales) and with CCA-SSG,
  GraphMAE or both switched off.
- `weights`: CCA-SSG or GraphMAE alone at 0.01x .. 3x retrieval's encoder-gradient norm
  (`cca_scale` / `mae_scale`, calibrated at initialisation by `tfzoo train`).
- `augmentation`: +both with lighter and heavier augmentation.
`--table FILE` prints mean ± sample standard deviation over seeds, and for each variant
against its grid's reference the paired bootstrap 95% interval of the difference.
`--quick` reads no region: on the zoo's generated friend graph (`friend_graph` dataset) of
200 users, named `friend_graph`, it writes the baselines and one run (the grid's first
variant unless `--variants`, the first seed, one epoch) to `--out` (default: a temporary
file, removed), then prints the file's tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tfzoo.evaluation import figures
from tfzoo.evaluation.intervals import minimum_detectable_effect, paired_bootstrap
from tfzoo.evaluation.report import reproducing_command
from tfzoo.training import RunConfig, task_for, train

# The previous model: features only, messages towards the root, last-round readout, plain
# in-batch softmax, no dropout, no self-supervision (what docs/ssmtl.md measured before).
PREVIOUS = {
    "id_buckets": 0,
    "readout": "last",
    "message_passing": "to_root",
    "candidate_bias": False,
    "logq_correction": False,
    "dropout": 0.0,
    "cca_weight": 0.0,
    "mae_weight": 0.0,
}
RETRIEVAL = {"cca_weight": 0.0, "mae_weight": 0.0}  # the default: no self-supervision
PAPER_SCALES = {"cca_scale": 0.1, "mae_scale": 0.1}  # the paper's objectives, calibrated
PREVIOUS_DEFAULT = "+both (previous default)"


def _ladder(*steps: tuple[str, dict]) -> dict[str, dict]:
    """Cumulative variants: each step adds its options to the previous step's."""
    variants, options = {}, {}
    for name, added in steps:
        options = {**options, **added}
        variants[name] = options
    return variants


# From the previous model to the default (retrieval only), one lever at a time.
LEVER_STEPS = _ladder(
    ("previous model", PREVIOUS),
    ("+ id embeddings", {"id_buckets": None}),
    ("+ concat readout", {"readout": "concat"}),
    ("+ log-Q correction", {"logq_correction": True}),
    ("+ candidate bias", {"candidate_bias": True}),
    ("+ dropout 0.2 (default)", {"dropout": 0.2}),
)
# The grids whose first variants are cumulative steps: `tables` also gives each step minus
# the step before it.
LADDERS = {"levers": list(LEVER_STEPS)}

GRIDS: dict[str, dict[str, dict]] = {
    # `tfzoo train ssmtl` as it is, nothing changed, and the previous default: the same
    # with the paper's objectives at calibrated scale 0.1.
    "default": {"default": {}, PREVIOUS_DEFAULT: PAPER_SCALES},
    # From the previous model to the default (retrieval only), one lever at a time, then
    # one more lever at a time on top of the default.
    "levers": {
        **LEVER_STEPS,
        "default + messages both ways": {**RETRIEVAL, "message_passing": "both"},
        "default + 128 uniform negatives": {**RETRIEVAL, "uniform_negatives": 128},
        "default + 128-d embeddings": {**RETRIEVAL, "hidden_dim": 128, "embedding_dim": 128},
        "default + cosine schedule": {**RETRIEVAL, "schedule": "cosine"},
    },
    # Retrieval alone (the default) against the paper's objectives at calibrated scale 0.1,
    # one at a time and together (the default before these measurements).
    "objectives": {
        "retrieval": RETRIEVAL,
        "+cca": {"cca_scale": 0.1, "mae_weight": 0.0},
        "+mae": {"cca_weight": 0.0, "mae_scale": 0.1},
        "+both": PAPER_SCALES,
    },
    # One objective at a time, at 0.01x .. 3x retrieval's encoder-gradient norm.
    "weights": {
        **{f"+cca x{m:g}": {"cca_scale": m, "mae_weight": 0.0} for m in (0.01, 0.1, 0.3, 1.0, 3.0)},
        **{f"+mae x{m:g}": {"cca_weight": 0.0, "mae_scale": m} for m in (0.01, 0.1, 0.3, 1.0, 3.0)},
    },
    "augmentation": {
        "+both, drops 0.1": {**PAPER_SCALES, "cca_edge_drop": 0.1, "cca_feature_drop": 0.1, "mae_edge_drop": 0.1},
        "+both, drops 0.2": PAPER_SCALES,
        "+both, drops 0.4": {**PAPER_SCALES, "cca_edge_drop": 0.4, "cca_feature_drop": 0.4, "mae_edge_drop": 0.4},
    },
}
REFERENCES = {
    "default": "default",
    "levers": "+ dropout 0.2 (default)",
    "objectives": "retrieval",
    "weights": None,
    "augmentation": "+both, drops 0.2",
}
HIT_KS = (50, 100)
DEFAULT_OUT = Path("ssmtl_ablation.jsonl")
QUICK_USERS = 200  # `--quick`: the generated graph's size


def run_settings(variant: dict, *, num_users: int) -> tuple[dict, dict]:
    """(model options, run settings) of a variant: `id_buckets: None` is one per user;
    `schedule` is the run's learning-rate schedule; the rest are model options over
    `tfzoo train ssmtl`'s defaults (`cca_scale` / `mae_scale`: calibrated weights)."""
    options = {key: value for key, value in variant.items() if key != "schedule"}
    if options.get("id_buckets", 1) is None:
        options["id_buckets"] = num_users
    return options, {"learning_rate_schedule": variant.get("schedule", "constant")}


def _hits(report: dict) -> dict:
    per_user = report.pop("per_user")
    return {f"hits@{k}": per_user[f"hits@{k}"] for k in HIT_KS}


def _fused(run) -> dict | None:
    """What the run's export serves where it fuses the model's score with a heuristic
    (`FriendRetrievalFamily.fused_reports`: the weight chosen on validation), with the
    test split's per-user hits; None without fusion."""
    fused = task_for("ssmtl").fused_reports(run.prepared, per_user=True)
    if fused is None:
        return None
    fused["validation"].pop("per_user", None)
    return {**fused, **_hits(fused["test"])}


def run_one(
    dataset: str,
    data: str | None,
    region: str,
    grid: str,
    name: str,
    seed: int,
    *,
    data_options: dict,
    num_users: int,
    patience: int | None,
    max_epochs: int | None,
    keep: Path | None = None,
) -> dict:
    from tfzoo.training import load_run

    options, settings = run_settings(GRIDS[grid][name], num_users=num_users)
    # `tfzoo train ssmtl --dataset DATASET --data DATA --seed SEED [--option ...]`: the run
    # defaults (batch size, most epochs, patience) are the family's unless overridden.
    config = RunConfig(
        model="ssmtl",
        dataset=dataset,
        data_path=data,
        epochs=max_epochs,
        seed=seed,
        model_options=options,
        patience=patience,
        data_options=data_options,
        **settings,
    )
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = keep if keep is not None else Path(scratch) / "run"
        started = time.time()
        metrics = train(config, run_dir, verbose=0)
        run = load_run(run_dir)  # the best epoch, as `tfzoo evaluate` sees it
        test = task_for("ssmtl").report(run.prepared, "test", per_user=True)
        fused = _fused(run)
        trained_options = run.inputs.model_options  # with the calibrated weights
    return {
        "kind": "run",
        "region": region,
        "grid": grid,
        "variant": name,
        "seed": seed,
        "model_options": options,
        "trained_options": trained_options,
        **settings,
        "data_options": data_options,
        "patience": config.patience,
        "max_epochs": config.epochs,
        "batch_size": config.batch_size,
        "best_epoch": metrics["best_epoch"],
        "epochs_trained": metrics["epochs_trained"],
        "seconds": round(time.time() - started, 1),
        "train_seconds": round(metrics["train_seconds"], 1),
        "validation": metrics["validation"],
        "test": metrics["test"],
        **_hits(test),
        "fused": fused,
    }


def _key(row: dict) -> tuple:
    return (
        row["kind"],
        row["region"],
        json.dumps(row.get("data_options", {}), sort_keys=True),
        row.get("grid"),
        row.get("variant"),
        row.get("seed"),
    )


def _fusion_is_stale(row: dict) -> bool:
    """A run row whose `fused` predates the current fusion (none, or no popularity term)."""
    if row["kind"] != "run":
        return False
    fused = row.get("fused", {})
    return fused is not None and "popularity_weight" not in fused


def fill_fusion(path: Path, keep: Path, regions: list[str] | None = None) -> None:
    """Recomputes `fused` for the run rows of `path` written before the current fusion
    (heuristic and popularity weights chosen together), from their kept run directories
    (`keep`/REGION/GRID/VARIANT/seedN). Each row is written as soon as it is done (the file
    re-read first, so rows appended meanwhile by a running grid are kept)."""
    from tfzoo.training import load_run

    for row in _read(path):
        if not _fusion_is_stale(row) or (regions and row["region"] not in regions):
            continue
        run_dir = keep / row["region"] / row["grid"] / row["variant"] / f"seed{row['seed']}"
        if not (run_dir / "metrics.json").exists():
            print(f"no kept run at {run_dir}: {row['region']} {row['variant']} seed {row['seed']} left as it is")
            continue
        if "fused" in row:
            row["fused_without_popularity"] = row["fused"]  # kept: the earlier tables read it
        row["fused"] = _fused(load_run(run_dir))
        print(
            f"{row['region']} {row['variant']} seed {row['seed']}: fused weights {row['fused']['weight']}, "
            f"{row['fused']['popularity_weight']}, test {row['fused']['test']['all']}",
            flush=True,
        )
        rows = [row if _key(line) == _key(row) else line for line in _read(path)]
        scratch = path.with_suffix(".tmp")
        scratch.write_text("".join(json.dumps(line) + "\n" for line in rows))
        scratch.replace(path)


def baselines_row(dataset: str, data: str | None, region: str, data_options: dict) -> dict:
    from tfzoo.data.registry import load_dataset
    from tfzoo.evaluation.heuristics import heuristic_reports

    splits = load_dataset(dataset, path=data, split_seed=0, options=data_options)
    slices = {"cold_start": splits.cold_start_users} if len(splits.cold_start_users) else {}
    reports = heuristic_reports(
        splits.test,
        train_edges=splits.train.edges,
        num_users=splits.graph.num_users,
        exclude_edges=[splits.validation],
        slices=slices,
        per_user=True,
    )
    per_user = {name: report["per_user"] for name, report in reports.items()}
    first = next(iter(per_user.values()))
    return {
        "kind": "baselines",
        "region": region,
        "data_options": data_options,
        "split": splits.split,
        "num_users": splits.graph.num_users,
        "users": first["users"],
        "targets": first["targets"],
        "low_degree_users": _low_degree_users(splits, first["users"]),
        "cold_start_users": splits.cold_start_users.tolist(),
        "heuristics": {
            name: {
                **{key: value for key, value in report.items() if key != "per_user"},
                **{f"hits@{k}": per_user[name][f"hits@{k}"] for k in HIT_KS},
            }
            for name, report in reports.items()
        },
    }


def _low_degree_users(splits, users) -> list[int]:
    from tfzoo.evaluation.retrieval import LOW_DEGREE_QUANTILE

    degree = splits.train.degrees()[np.asarray(users)]
    return np.asarray(users)[degree <= np.quantile(degree, LOW_DEGREE_QUANTILE)].tolist()


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _append(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as file:
        file.write(json.dumps(row) + "\n")


def _same_split(row: dict, region: str, data_options: dict) -> bool:
    return row["region"] == region and row.get("data_options", {}) == data_options


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="the twitch_musae folder (one subfolder per region)")
    parser.add_argument("--regions", nargs="+", help="default: ES ENGB (--fill-fusion: every region)")
    parser.add_argument("--grid", choices=sorted(GRIDS), default="objectives")
    parser.add_argument("--variants", nargs="+", help="a subset of the grid's variants (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--cold-start-share",
        type=float,
        default=0.0,
        help="users kept with one training friendship (the split's cold-start slice)",
    )
    parser.add_argument("--patience", type=int, help="default: tfzoo train ssmtl's")
    parser.add_argument("--max-epochs", type=int, help="default: tfzoo train ssmtl's")
    parser.add_argument("--out", type=Path, help=f"JSON lines, one per run (default: {DEFAULT_OUT})")
    parser.add_argument(
        "--keep-runs",
        type=Path,
        metavar="DIR",
        help="keep each run directory as DIR/REGION/GRID/VARIANT/seedN (e.g. to export it)",
    )
    parser.add_argument("--table", type=Path, help="print the tables of this file and stop")
    parser.add_argument(
        "--figures",
        type=Path,
        metavar="DIR",
        help="with --table: also draw each grid's Recall@K figure and its paired differences into DIR",
    )
    parser.add_argument(
        "--fill-fusion",
        action="store_true",
        help="recompute the served fusion of --out's rows written before the current one (all of --regions "
        "when given), from the runs kept in --keep-runs, and stop",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a generated {QUICK_USERS}-user friend graph, the grid's first variant (or --variants), the first "
        "seed, one epoch, --out in a temporary directory unless given, then the tables: checks that the bench runs",
    )
    args = parser.parse_args(argv)
    if args.quick and not (args.table or args.fill_fusion):
        if args.data is not None:
            parser.error("--quick generates its graph: drop --data")
        if args.out is None:
            with tempfile.TemporaryDirectory() as scratch:
                _experiments(parser, args, Path(scratch) / DEFAULT_OUT.name, argv)
        else:
            _experiments(parser, args, args.out, argv)
        return
    args.out = args.out or DEFAULT_OUT
    if args.table:
        print(tables(_read(args.table)))
        if args.figures:
            rows = _read(args.table)
            for path in [*recall_figures(rows, args.figures), *difference_figures(rows, args.figures)]:
                print(f"wrote {path}")
        return
    if args.fill_fusion:
        if args.keep_runs is None:
            parser.error("--fill-fusion reads the kept runs: pass --keep-runs DIR")
        fill_fusion(args.out, args.keep_runs, args.regions)
        return
    if args.data is None:
        parser.error("--data is required to run experiments (or --quick)")
    _experiments(parser, args, args.out, argv)


def _experiments(parser: argparse.ArgumentParser, args: argparse.Namespace, out: Path, argv: list[str] | None) -> None:
    """The grid's runs missing from `out`, each appended as it finishes; with `--quick`,
    one small run on the generated graph, then the tables of `out`."""
    variants = args.variants or list(GRIDS[args.grid])
    unknown = sorted(set(variants) - set(GRIDS[args.grid]))
    if unknown:
        parser.error(f"unknown variants {unknown} of grid {args.grid!r}; it has {list(GRIDS[args.grid])}")
    data_options = {"cold_start_share": args.cold_start_share} if args.cold_start_share else {}
    # (dataset, data path) per region; the split, the runs and the reports are the same.
    if args.quick:
        # One variant, seed and epoch show that a run goes through; under the default grid
        # the first variant is `retrieval`, which needs no calibration of eq. 6's weights.
        variants, seeds, max_epochs = variants[:1], args.seeds[:1], 1
        data_options = {**data_options, "num_users": QUICK_USERS}
        sources = {"friend_graph": ("friend_graph", None)}
    else:
        seeds, max_epochs = args.seeds, args.max_epochs
        sources = {region: ("twitch", str(args.data / region)) for region in args.regions or ["ES", "ENGB"]}
    # The command that reproduces the rows: the process's own, or the arguments a caller passed.
    command = reproducing_command(
        *((sys.argv[0], sys.argv[1:]) if argv is None else (f"bench/{Path(__file__).name}", argv))
    )
    for region, (dataset, data) in sources.items():
        rows = [r for r in _read(out) if _same_split(r, region, data_options)]
        if not any(r["kind"] == "baselines" for r in rows):
            _append(out, {**baselines_row(dataset, data, region, data_options), "command": command})
    for seed in seeds:  # seed-major: a partial grid covers every variant
        for region, (dataset, data) in sources.items():
            rows = [r for r in _read(out) if _same_split(r, region, data_options)]
            num_users = next(r["num_users"] for r in rows if r["kind"] == "baselines")
            for name in variants:
                if any(
                    r["kind"] == "run" and r["grid"] == args.grid and r["variant"] == name and r["seed"] == seed
                    for r in rows
                ):
                    continue
                keep = None if args.keep_runs is None else args.keep_runs / region / args.grid / name / f"seed{seed}"
                row = run_one(
                    dataset,
                    data,
                    region,
                    args.grid,
                    name,
                    seed,
                    data_options=data_options,
                    num_users=num_users,
                    patience=args.patience,
                    max_epochs=max_epochs,
                    keep=keep,
                )
                _append(out, {**row, "command": command})
                print(
                    f"{region} {name} seed {seed}: best epoch {row['best_epoch']}/{row['epochs_trained']}, "
                    f"{row['seconds']:.0f} s, test {row['test']['all']}",
                    flush=True,
                )
    if args.quick:  # the `--table` code on the rows just written
        print(tables(_read(out)))


def _recall(hits: list[int], targets: np.ndarray) -> np.ndarray:
    return np.asarray(hits) / targets


def recall_figures(rows: list[dict], directory: Path) -> list[Path]:
    """Recall@K against K (test; all users and the low-degree slice) of each grid's reference
    variant, the model alone and as served (mean over seeds), beside the heuristics, one
    figure per split and grid:
    `directory/ssmtl_<region>_<grid>_recall_at_k.png`."""
    written = []
    for base in (r for r in rows if r["kind"] == "baselines"):
        here = [r for r in rows if r["kind"] == "run" and _same_split(r, base["region"], base.get("data_options", {}))]
        for grid in dict.fromkeys(r["grid"] for r in here):
            targets, users = np.asarray(base["targets"], np.float64), np.asarray(base["users"])
            slices = {"all": np.ones(len(users), bool), "low_degree": np.isin(users, base["low_degree_users"])}
            reports = {}
            # The grid's reference (its first variant): the tables carry the others' differences.
            for variant in list(dict.fromkeys(r["variant"] for r in here if r["grid"] == grid))[:1]:
                mine = [r for r in here if r["grid"] == grid and r["variant"] == variant]
                reports[f"ssmtl {variant}, model alone ({len(mine)} seeds)"] = {
                    part: {
                        k: float(np.mean([r["test"][part][k] for r in mine])) for k in mine[0]["test"][part] if "@" in k
                    }
                    for part in slices
                }
                if all(r.get("fused") for r in mine):  # what the export serves (hits kept at HIT_KS)
                    reports[f"ssmtl {variant}, served ({len(mine)} seeds)"] = {
                        part: {
                            f"recall@{k}": float(
                                np.mean([_recall(r["fused"][f"hits@{k}"], targets)[chosen].mean() for r in mine])
                            )
                            for k in HIT_KS
                        }
                        for part, chosen in slices.items()
                    }
            for name, report in base["heuristics"].items():
                reports[name] = {part: report[part] for part in ("all", "low_degree")}
            path = directory / f"ssmtl_{base['region'].lower()}_{grid}_recall_at_k.png"
            figures.recall_at_k(reports, path, title=f"Twitch {base['region']}: test Recall@K, grid `{grid}`")
            written.append(path)
    return written


def tables(rows: list[dict]) -> str:
    """Markdown: per split and grid, heuristics then variants (mean ± sample std over
    seeds), and each variant minus the grid's reference with a paired bootstrap 95%
    interval over users (seeds paired, then averaged) and the minimum detectable effect."""
    out = []
    splits = list(dict.fromkeys((r["region"], json.dumps(r.get("data_options", {}), sort_keys=True)) for r in rows))
    for region, options in splits:
        here = [
            r
            for r in rows
            if r["region"] == region and json.dumps(r.get("data_options", {}), sort_keys=True) == options
        ]
        base = next(r for r in here if r["kind"] == "baselines")
        targets = np.asarray(base["targets"], np.float64)
        users = np.asarray(base["users"])
        slices = {"all": np.ones(len(users), bool), "low": np.isin(users, base["low_degree_users"])}
        if base["cold_start_users"]:
            slices["cold"] = np.isin(users, base["cold_start_users"])
        columns = [(part, k) for part in slices for k in HIT_KS]
        header = " | ".join(f"{'' if part == 'all' else part + ' '}R@{k}" for part, k in columns)
        out.append(f"\n### {region} {json.loads(options) or ''}\n\nsplit: {base['split']}\n")
        for grid in dict.fromkeys(r["grid"] for r in here if r["kind"] == "run"):
            runs = [r for r in here if r["kind"] == "run" and r["grid"] == grid]
            out.append(
                f"\ngrid `{grid}`\n\n| variant | seeds | best epoch | {header} |\n|" + " --- |" * (3 + len(columns))
            )
            for name, report in base["heuristics"].items():
                cells = [f"{_recall(report[f'hits@{k}'], targets)[slices[part]].mean():.3f}" for part, k in columns]
                out.append(f"| {name} (heuristic) | - | - | " + " | ".join(cells) + " |")
            variants = list(dict.fromkeys(r["variant"] for r in runs))
            for name in variants:
                mine = [r for r in runs if r["variant"] == name]
                cells = []
                for part, k in columns:
                    values = np.array([_recall(r[f"hits@{k}"], targets)[slices[part]].mean() for r in mine])
                    spread = f" ± {values.std(ddof=1):.3f}" if len(values) > 1 else ""
                    cells.append(f"{values.mean():.3f}{spread}")
                epochs = np.mean([r["best_epoch"] for r in mine])
                out.append(f"| {name} | {len(mine)} | {epochs:.1f} | " + " | ".join(cells) + " |")
                # What the export serves, and (rows refilled since) what it served before the
                # popularity term, with the term's paired effect.
                for key in ("fused_without_popularity", "fused"):
                    if not all(r.get(key) for r in mine):
                        continue
                    cells = []
                    for part, k in columns:
                        values = np.array([_recall(r[key][f"hits@{k}"], targets)[slices[part]].mean() for r in mine])
                        spread = f" ± {values.std(ddof=1):.3f}" if len(values) > 1 else ""
                        cells.append(f"{values.mean():.3f}{spread}")
                    label = f"+ w x log(1 + {mine[0][key]['heuristic']})"
                    weights = "w = " + "/".join(f"{r[key]['weight']:g}" for r in mine)
                    if key == "fused":
                        label += " + p x log(1 + degree)"
                        weights += ", p = " + "/".join(f"{r[key].get('popularity_weight', 0):g}" for r in mine)
                    out.append(
                        f"| {name}, served: {label}, {weights} | {len(mine)} | {epochs:.1f} | "
                        + " | ".join(cells)
                        + " |"
                    )
                if all(r.get("fused") and r.get("fused_without_popularity") for r in mine):
                    cells = []
                    for part, k in columns:
                        a = np.array([_recall(r["fused"][f"hits@{k}"], targets)[slices[part]] for r in mine])
                        b = np.array(
                            [_recall(r["fused_without_popularity"][f"hits@{k}"], targets)[slices[part]] for r in mine]
                        )
                        interval = paired_bootstrap(a, b)
                        cells.append(f"{interval['difference']:+.3f} [{interval['low']:+.3f}, {interval['high']:+.3f}]")
                    out.append(
                        f"| {name}, served: the popularity term's effect (95% interval) | {len(mine)} | - | "
                        + " | ".join(cells)
                        + " |"
                    )
            reference = REFERENCES.get(grid)
            if reference in variants:
                out.append(
                    f"\ndifferences from `{reference}` (paired bootstrap 95% interval over users; MDE: the "
                    "smallest difference this design detects with 80% power)\n"
                )
                out.append(f"| variant | seeds | {header} |\n|" + " --- |" * (2 + len(columns)))
                for name, (seeds, cells) in _differences(runs, reference, targets, slices, columns).items():
                    out.append(f"| {name} | {seeds} | " + " | ".join(_interval_cells(cells)) + " |")
            ladder = LADDERS.get(grid, [])
            steps = [(a, b) for a, b in zip(ladder, ladder[1:]) if a in variants and b in variants]
            if steps:  # consecutive steps only: a missing one is not bridged
                out.append("\neach step minus the step before it (paired bootstrap 95% interval over users)\n")
                out.append(f"| step | seeds | {header} |\n|" + " --- |" * (2 + len(columns)))
                for previous, step in steps:
                    pair = [r for r in runs if r["variant"] in (previous, step)]
                    for name, (seeds, cells) in _differences(pair, previous, targets, slices, columns).items():
                        out.append(f"| {name} | {seeds} | " + " | ".join(_interval_cells(cells)) + " |")
    return "\n".join(out)


def _interval_cells(cells: dict) -> list[str]:
    return [f"{i['difference']:+.3f} [{i['low']:+.3f}, {i['high']:+.3f}] (MDE {i['mde']:.3f})" for i in cells.values()]


def _differences(runs: list[dict], reference: str, targets, slices: dict, columns: list) -> dict:
    """{variant: (seeds, {(slice, K): paired bootstrap interval of variant - reference, with
    its "mde"})}, each variant's seeds paired with the reference's."""
    differences = {}
    for name in dict.fromkeys(r["variant"] for r in runs):
        pairs = [
            (r, s)
            for r in runs
            if r["variant"] == name and name != reference
            for s in runs
            if s["variant"] == reference and s["seed"] == r["seed"]
        ]
        if not pairs:
            continue
        cells = {}
        for part, k in columns:
            a = np.array([_recall(r[f"hits@{k}"], targets)[slices[part]] for r, _ in pairs])
            b = np.array([_recall(s[f"hits@{k}"], targets)[slices[part]] for _, s in pairs])
            cells[part, k] = {**paired_bootstrap(a, b), "mde": minimum_detectable_effect(a, b)}
        differences[name] = (len(pairs), cells)
    return differences


# The slices and cutoffs the difference figures show: the headline and the two slices.
FIGURE_COLUMNS = (("all", 50), ("low", 100), ("cold", 100))


def difference_figures(rows: list[dict], directory: Path) -> list[Path]:
    """Each grid's variants minus its reference (`REFERENCES`), every split in one figure:
    test R@50 overall, R@100 on the low-degree and the cold-start slices, each with its
    paired bootstrap 95% interval (the tables' differences):
    `directory/ssmtl_<grid>_differences.png`."""
    panels: dict[str, dict] = {}
    for base in (r for r in rows if r["kind"] == "baselines"):
        here = [r for r in rows if r["kind"] == "run" and _same_split(r, base["region"], base.get("data_options", {}))]
        targets, users = np.asarray(base["targets"], np.float64), np.asarray(base["users"])
        slices = {"all": np.ones(len(users), bool), "low": np.isin(users, base["low_degree_users"])}
        if base["cold_start_users"]:
            slices["cold"] = np.isin(users, base["cold_start_users"])
        columns = [column for column in FIGURE_COLUMNS if column[0] in slices]
        for grid in dict.fromkeys(r["grid"] for r in here):
            reference = REFERENCES.get(grid)
            runs = [r for r in here if r["grid"] == grid]
            if reference not in {r["variant"] for r in runs}:
                continue
            for name, (seeds, cells) in _differences(runs, reference, targets, slices, columns).items():
                for (part, k), interval in cells.items():
                    panel = panels.setdefault(grid, {}).setdefault(f"{'' if part == 'all' else part + ' '}R@{k}", {})
                    label = f"{base['region']} {name} ({seeds} seed{'s' if seeds > 1 else ''})"
                    panel[label] = (interval["difference"], interval["low"], interval["high"])
    written = []
    for grid, grid_panels in panels.items():
        path = directory / f"ssmtl_{grid}_differences.png"
        figures.paired_differences(
            grid_panels,
            path,
            xlabel=f"test recall minus `{REFERENCES[grid]}`",
            title=f"Twitch, grid `{grid}`: paired differences with 95% intervals over users",
        )
        written.append(path)
    return written


if __name__ == "__main__":
    main()
