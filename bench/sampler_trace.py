"""Cost of building and tracing a subgraph sampler: TF-GNN's "vectorized" index operations
against the zoo's flat-value ones (`tfzoo.graph.sampler_ops`), side by side in one process.

    .venv/bin/python bench/sampler_trace.py [--users 4648] [--fanouts 10 5] [--repeats 2]
    .venv/bin/python bench/sampler_trace.py --quick      # a small graph, one repeat

Every `tfzoo train ssmtl` builds and traces samplers several times (calibration and
training stream, each input pipeline, evaluation, export), so their cost is paid per run
and per test. Each repeat builds a fresh sampler under each implementation (alternating,
so that drift in the machine's load hits both) and times the build, the first call (which
traces and optimises the graph) and a warm call, on a generated graph of the given size.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import tensorflow as tf

from tfzoo.data import make_friend_graph, split_friendships
from tfzoo.graph import SubgraphSampler, sampler_ops

IMPLEMENTATIONS = ("vectorized", sampler_ops.IMPLEMENTATION)


def measure(graph, fanouts, users: np.ndarray) -> dict[str, float]:
    started = time.perf_counter()
    sampler = SubgraphSampler(graph, fanouts=fanouts, seed=0)
    built = time.perf_counter()
    sampler(tf.constant(users))
    first = time.perf_counter()
    sampler(tf.constant(users))
    warm = time.perf_counter()
    return {"build": built - started, "first call": first - built, "warm call": warm - first}


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=4648, help="users of the generated graph (ES has 4,648)")
    parser.add_argument("--fanouts", type=int, nargs="+", default=[10, 5])
    parser.add_argument("--batch", type=int, default=256, help="users sampled per call")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="300 users, fan-outs 4 3, one repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.fanouts, args.batch, args.repeats = 300, [4, 3], 32, 1
    graph = split_friendships(make_friend_graph(args.users, feature_dim=60, mean_degree=8, seed=0), seed=0).train
    users = np.arange(min(args.batch, args.users))
    times = {name: [] for name in IMPLEMENTATIONS}
    try:
        for _ in range(args.repeats):
            for name in IMPLEMENTATIONS:
                sampler_ops.ext_ops.set_ops_implementation(name)
                times[name].append(measure(graph, args.fanouts, users))
    finally:
        sampler_ops.ext_ops.set_ops_implementation(sampler_ops.IMPLEMENTATION)
    means = {name: {k: float(np.mean([t[k] for t in runs])) for k in runs[0]} for name, runs in times.items()}
    print(f"{args.users} users, fan-outs {args.fanouts}, {len(users)} users per call, mean of {args.repeats}")
    print("| implementation | build s | first call s | warm call ms | build + first call vs vectorized |")
    print("|---|---:|---:|---:|---:|")
    reference = means["vectorized"]["build"] + means["vectorized"]["first call"]
    for name, m in means.items():
        total = m["build"] + m["first call"]
        print(
            f"| {name} | {m['build']:.2f} | {m['first call']:.2f} | {1000 * m['warm call']:.1f} | "
            f"{reference / total:.2f}x faster |"
        )
    return means


if __name__ == "__main__":
    main()
