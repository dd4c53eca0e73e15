"""GRec's expert capacity: dropped assignments, FLOPs and AUC per capacity factor.

With E experts, top-k and capacity factor c, each expert takes at most
C = ceil(c * units * k / E) units per call (`MixtureOfExperts.capacity`). With E = 8,
k = 4 and c = 2, C = units: an expert can take every unit, so nothing is ever dropped
and the capacity does nothing. This bench trains GRec with token and sentence routing
at each `--factors` value through `tfzoo.training` runs (the same path as
`tfzoo train grec`) and prints, per (routing, factor):

- dropped: share of (unit, expert) assignments dropped by the capacity, mean over the
  training batches of the last epoch (`moe_dropped_fraction`);
- MFLOPs/ex: inference float ops per example of the whole model (a batch of 256 test
  rows, `tfzoo.evaluation.flops_per_example_of_model`): the expert einsum runs over all
  E x C slots, so the cost grows with the factor whether slots are filled or not;
- test AUC per use case (mean over `--seeds`).

    python bench/grec_capacity.py                                   # census_flows, 2 epochs
    python bench/grec_capacity.py --dataset synthetic --epochs 1    # generated, quick
    python bench/grec_capacity.py --quick    # one token-routing run, factor 1, 2,000 training rows: checks that it runs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import tfzoo  # noqa: E402,F401  (Keras 2 switch)
from tfzoo.data.pipeline import make_dataset  # noqa: E402
from tfzoo.data.readers.census import census_token_groups  # noqa: E402
from tfzoo.data.registry import load_dataset  # noqa: E402
from tfzoo.evaluation.flops import flops_per_example_of_model  # noqa: E402
from tfzoo.training import RunConfig, load_run, train  # noqa: E402

FLOPS_BATCH = 256
QUICK_TRAIN_ROWS = 2000
ROUTINGS = ("token", "sentence")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="census_flows", choices=["census_flows", "synthetic"])
    parser.add_argument("--routings", nargs="+", choices=ROUTINGS, help=f"default {' '.join(ROUTINGS)}; --quick: token")
    parser.add_argument("--factors", type=float, nargs="+", default=[1.0, 1.25, 2.0])
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--top-k", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument(
        "--data-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="data option, e.g. upsample_tasks=flow (value parsed as JSON)",
    )
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"one epoch, factor 1 (it drops), token routing unless --routings, {QUICK_TRAIN_ROWS:,} training rows: "
        "checks that the bench runs",
    )
    args = parser.parse_args(argv)

    data_options = {}
    for item in args.data_option:
        key, value = item.split("=", 1)
        try:
            data_options[key] = json.loads(value)
        except json.JSONDecodeError:
            data_options[key] = value
    if args.quick:
        args.factors, args.epochs, args.seeds = [1.0], 1, 1
        data_options.setdefault("train_rows", QUICK_TRAIN_ROWS)
    # Quick: one run exercises the loop; each routing more costs a training run.
    args.routings = args.routings or (["token"] if args.quick else list(ROUTINGS))
    splits = load_dataset(args.dataset, options=data_options)
    options = {
        "flow_feature": "flow",
        "num_experts": args.experts,
        "top_k": args.top_k,
        "model_dim": 32,
        "num_heads": 4,
        "expert_units": [64],
        "tower_units": [32],
    }
    if args.dataset == "census_flows":
        options["token_features"] = census_token_groups(splits.train.spec.feature_names)
    print(
        f"{args.dataset}: {len(splits.train)} training rows; {args.experts} experts, top-{args.top_k}; "
        f"{args.epochs} epoch(s), batch {args.batch_size}; split: {splits.split}",
        flush=True,
    )
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for routing in args.routings:
            for factor in args.factors:
                for seed in range(args.seeds):
                    directory = Path(scratch) / f"{routing}_{factor}_{seed}"
                    config = RunConfig(
                        model="grec",
                        dataset=args.dataset,
                        epochs=args.epochs,
                        batch_size=args.batch_size,
                        seed=seed,
                        patience=0,
                        data_options=data_options,
                        model_options={**options, "routing": routing, "capacity_factor": factor},
                    )
                    metrics = train(config, directory, verbose=0)
                    run = load_run(directory)
                    spec = run.inputs.feature_spec
                    test = run.prepared.data.test
                    sample = test.take(np.arange(min(FLOPS_BATCH, len(test))))
                    features = next(iter(make_dataset(sample, spec, batch_size=len(sample), with_labels=False)))
                    results.append(
                        {
                            "routing": routing,
                            "factor": factor,
                            "seed": seed,
                            "dropped": metrics["history"]["moe_dropped_fraction"][-1],
                            "flops": flops_per_example_of_model(run.model, features),
                            "auc": {t: m["auc"] for t, m in metrics["test"].items()},
                            "seconds": metrics["train_seconds"],
                        }
                    )
                    print(
                        f"{routing} x{factor} seed {seed}: dropped {results[-1]['dropped']:.4f}, "
                        f"{results[-1]['flops'] / 1e6:.3f} MFLOPs/ex, "
                        + ", ".join(f"{t} AUC {a:.4f}" for t, a in results[-1]["auc"].items()),
                        flush=True,
                    )
    tasks = list(results[0]["auc"])
    print(
        "\n| routing | capacity factor | dropped (last epoch) | MFLOPs/ex | "
        + " | ".join(f"{t} AUC" for t in tasks)
        + " |"
    )
    print("|---|---:|---:|---:|" + "---:|" * len(tasks))
    for routing in args.routings:
        for factor in args.factors:
            rows = [r for r in results if r["routing"] == routing and r["factor"] == factor]
            cells = [
                f"{statistics.mean(r['dropped'] for r in rows):.4f}",
                f"{statistics.mean(r['flops'] for r in rows) / 1e6:.3f}",
            ]
            cells += [f"{statistics.mean(r['auc'][t] for r in rows):.4f}" for t in tasks]
            print(f"| {routing} | {factor} | " + " | ".join(cells) + " |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, "results": results}, indent=1))


if __name__ == "__main__":
    main()
