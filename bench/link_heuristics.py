"""The link-prediction heuristics on the Twitch friend graphs, with tfzoo's split and
protocol (`tfzoo.evaluation.heuristics`): the numbers a friend-retrieval model must beat.

    python bench/link_heuristics.py --data ../shared/data/twitch_musae --regions ES ENGB DE \
        --out docs/results/link_heuristics.jsonl
    python bench/link_heuristics.py --quick      # a generated 200-user graph: checks that it runs

For each region: the per-user friendship split with split seed 0 (`split_friendships`, as
`tfzoo train ssmtl --dataset twitch` splits), then test Recall@K of popularity, common
neighbours, Adamic-Adar and resource allocation from the training graph, the user itself,
its training friends and its validation friends excluded, ties broken by popularity;
overall and on the low-degree slice (bottom quartile of training degree). One JSON line
per region goes to `--out`; the markdown table is printed. `--quick` reads no region: it
runs the same protocol on the zoo's generated friend graph (`friend_graph` dataset) of
200 users, as one row named `friend_graph`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import tfzoo  # noqa: F401  (the Keras 2 switch before TensorFlow)
from tfzoo.data.registry import load_dataset
from tfzoo.evaluation.heuristics import HEURISTICS, best_heuristic, heuristic_reports
from tfzoo.evaluation.report import reproducing_command

QUICK_USERS = 200  # `--quick`: the generated graph's size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="the twitch_musae folder (one subfolder per region)")
    parser.add_argument("--regions", nargs="+", default=["ES", "ENGB", "DE"])
    parser.add_argument("--cold-start-share", type=float, default=0.0)
    parser.add_argument("--out", type=Path, help="JSON lines, one per region")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a generated {QUICK_USERS}-user friend graph instead of --data's regions: checks that the bench runs",
    )
    args = parser.parse_args(argv)
    if args.quick and args.data is not None:
        parser.error("--quick generates its graph: drop --data")
    if args.data is None and not args.quick:
        parser.error("--data is required (or --quick)")
    options = {"cold_start_share": args.cold_start_share} if args.cold_start_share else {}
    # (row name, dataset, path, data options) per graph; the split and protocol are the same.
    if args.quick:
        graphs = [("friend_graph", "friend_graph", None, {**options, "num_users": QUICK_USERS})]
    else:
        graphs = [(region, "twitch", str(args.data / region), options) for region in args.regions]
    # The command that reproduces the row: the process's own, or the arguments a caller passed.
    command = reproducing_command(
        *((sys.argv[0], sys.argv[1:]) if argv is None else (f"bench/{Path(__file__).name}", argv))
    )
    rows = []
    for region, dataset, path, data_options in graphs:
        started = time.time()
        splits = load_dataset(dataset, path=path, options=data_options)
        slices = {"cold_start": splits.cold_start_users} if len(splits.cold_start_users) else {}
        reports = heuristic_reports(
            splits.test,
            train_edges=splits.train.edges,
            num_users=splits.graph.num_users,
            exclude_edges=[splits.validation],
            slices=slices,
        )
        rows.append(
            {
                "region": region,
                "split": splits.split,
                "data_options": data_options,
                "heuristics": reports,
                "seconds": round(time.time() - started, 1),
                "command": command,
            }
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as file:
            for row in rows:
                file.write(json.dumps(row) + "\n")
    slices = [s for s in ("all", "low_degree", "cold_start") if s in rows[0]["heuristics"][HEURISTICS[0]]]
    header = " | ".join(f"{s.replace('_', '-')} R@{k}" for s in slices for k in (50, 100))
    print(f"| graph | heuristic | {header} |\n|" + " --- |" * (2 + 2 * len(slices)))
    for row in rows:
        for name, report in row["heuristics"].items():
            cells = " | ".join(f"{report[s][f'recall@{k}']:.3f}" for s in slices for k in (50, 100))
            print(f"| {row['region']} | {name} | {cells} |")
    for row in rows:
        best = {s: best_heuristic(row["heuristics"], slice_name=s) for s in slices}
        print(f"{row['region']}: best at R@100 " + ", ".join(f"{s}: {name}" for s, name in best.items()))


if __name__ == "__main__":
    main()
