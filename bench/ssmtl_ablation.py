"""SSMTL ablation on Twitch friend graphs: retrieval only, +CCA-SSG, +GraphMAE, +both.

    python bench/ssmtl_ablation.py --data ../shared/data/twitch_musae --regions ES ENGB \
        --seeds 0 1 2 --steps 100 --out ssmtl_ablation.jsonl
    python bench/ssmtl_ablation.py ... --variants +both --cca-weight 3 --mae-weight 90  # a weight sweep

For each region, seed and variant: split the friendships per user (split seed 0, the same
for every run), train `SSMTLRetrieval` for `--steps` batches of directed training
friendships, embed every user from a subgraph of the training graph, and report test
Recall@10/50/100 overall and on the low-degree slice (training friends and validation
friends excluded from the candidates). One JSON line per run is appended to `--out` as
soon as the run ends, so a partial grid is usable; `--table` prints the mean +/- std table
of such a file (markdown, as in docs/ssmtl.md).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

import tfzoo
from tfzoo.export.retrieval import user_embeddings
from tfzoo.graph import SubgraphSampler, directed_pairs
from tfzoo.models.ssmtl import SSMTLRetrieval

# Weights of eq. 6. The retrieval loss is summed over the batch (tfrs.tasks.Retrieval), about
# 1,400 at the start for 256 pairs, CCA-SSG's eq. 3 about 20 and GraphMAE's eq. 4 about 0.5:
# these weights keep each self-supervised term one to two orders of magnitude below retrieval,
# as the paper recommends.
VARIANTS = {
    "retrieval": {},
    "+cca": {"cca_weight": 1.0},
    "+mae": {"mae_weight": 30.0},
    "+both": {"cca_weight": 1.0, "mae_weight": 30.0},
}


def variant_weights(variant: str, *, cca_weight: float | None = None, mae_weight: float | None = None) -> dict:
    """Eq. 6 weights of `variant` (beyond alpha = 1), with the given weights replacing the
    defaults of the objectives the variant uses."""
    weights = dict(VARIANTS[variant])
    for name, value in (("cca_weight", cca_weight), ("mae_weight", mae_weight)):
        if value is not None and name in weights:
            weights[name] = value
    return weights


def run_one(splits, *, region: str, variant: str, seed: int, steps: int, batch_size: int, fanouts, dims: int,
            weights: dict) -> dict:
    tf.keras.utils.set_random_seed(seed)
    sampler = SubgraphSampler(splits.train, fanouts=fanouts, seed=seed)
    pairs = directed_pairs(splits.train.edges)
    train = sampler.friendship_dataset(pairs, batch_size=batch_size, shuffle_seed=seed, repeat=True)
    model = SSMTLRetrieval(feature_dim=splits.graph.features.dim, hidden_dim=dims, embedding_dim=dims,
                           **weights)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
    start = time.time()
    history = model.fit(train, steps_per_epoch=steps, epochs=1, verbose=0).history
    train_seconds = time.time() - start
    embeddings = user_embeddings(model, SubgraphSampler(splits.train, fanouts=fanouts, seed=1000 + seed))
    report = tfzoo.evaluation.recall_report(embeddings, splits.test, train_edges=splits.train.edges,
                                            exclude_edges=[splits.validation])
    return {
        "region": region, "variant": variant, "seed": seed, "steps": steps, "batch_size": batch_size,
        "fanouts": list(fanouts), "dims": dims, "weights": {"retrieval_weight": 1.0, **weights},
        "train_pairs_seen": steps * batch_size, "train_pairs": len(pairs), "train_seconds": round(train_seconds, 1),
        "final_losses": {name: float(values[-1]) for name, values in history.items()},
        "test": report, "split": splits.split,
    }


def table(path: Path) -> str:
    """Mean ± std over seeds, one row per graph, variant, weights and steps."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def setting(row):
        weights = row["weights"]
        return (row["region"], list(VARIANTS).index(row["variant"]), weights.get("cca_weight", 0.0),
                weights.get("mae_weight", 0.0), row["steps"])

    lines = ["| graph | objectives | beta | gamma | steps | seeds | R@10 | R@50 | R@100 | low-deg R@10 | "
             "low-deg R@50 | low-deg R@100 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    regions = list(dict.fromkeys(r["region"] for r in rows))
    for key in sorted(dict.fromkeys(map(setting, rows)), key=lambda key: (regions.index(key[0]), *key[1:])):
        runs = [r for r in rows if setting(r) == key]
        region, variant, beta, gamma, steps = key
        cells = []
        for part in ("all", "low_degree"):
            for k in (10, 50, 100):
                values = np.array([r["test"][part][f"recall@{k}"] for r in runs])
                cells.append(f"{values.mean():.4f} ± {values.std():.4f}")
        lines.append(f"| {region} | {list(VARIANTS)[variant]} | {beta:g} | {gamma:g} | {steps} | {len(runs)} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="the twitch_musae folder (one subfolder per region)")
    parser.add_argument("--regions", nargs="+", default=["ES", "ENGB"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--cca-weight", type=float, help="beta for the variants with CCA-SSG (default: VARIANTS)")
    parser.add_argument("--mae-weight", type=float, help="gamma for the variants with GraphMAE (default: VARIANTS)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--fanouts", nargs="+", type=int, default=list(tfzoo.graph.DEFAULT_FANOUTS))
    parser.add_argument("--dims", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("ssmtl_ablation.jsonl"))
    parser.add_argument("--table", action="store_true", help="print the table of --out and stop")
    args = parser.parse_args()
    if args.table:
        print(table(args.out))
        return
    splits = {r: tfzoo.data.split_friendships(tfzoo.data.read_twitch(args.data / r), seed=0) for r in args.regions}
    for seed in args.seeds:  # seed-major: a partial grid covers every variant
        for region in args.regions:
            for variant in args.variants:
                result = run_one(splits[region], region=region, variant=variant, seed=seed, steps=args.steps,
                                 batch_size=args.batch_size, fanouts=args.fanouts, dims=args.dims,
                                 weights=variant_weights(variant, cca_weight=args.cca_weight,
                                                         mae_weight=args.mae_weight))
                with open(args.out, "a") as file:
                    file.write(json.dumps(result) + "\n")
                print(region, variant, seed, result["train_seconds"], "s", result["test"]["all"], flush=True)


if __name__ == "__main__":
    main()
