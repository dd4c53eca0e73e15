"""Cost of building and tracing a subgraph sampler, side by side in one process: TF-GNN's
sampler as it comes ("vectorized" index operations, its Keras sampling model, its
parallel-edge removal), with the zoo's flat-value index operations only (the zoo's
sampler until 2026-11), and the zoo's sampler today (`tfzoo.graph.sampler_ops`: flat-value
index operations and parallel-edge removal; TF-GNN's sampling pipeline called in the
traced function, without the Keras model that traces it once more when built).

    .venv/bin/python bench/sampler_trace.py [--users 4648] [--fanouts 10 5] [--repeats 2]
    .venv/bin/python bench/sampler_trace.py --quick      # a small graph, one repeat

Every `tfzoo train ssmtl` builds and traces samplers several times (calibration and
training stream, each input pipeline, evaluation, export), so their cost is paid per run
and per test. Each repeat builds a fresh sampler of each variant (alternating, so that
drift in the machine's load hits all) and times the build, the first call (which
traces and optimises the graph) and a warm call, on a generated graph of the given size.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np
import tensorflow as tf

from tfzoo.data import make_friend_graph, split_friendships
from tfzoo.graph import SubgraphSampler, sampler_ops

# name -> (index operations, wrapped in TF-GNN's Keras sampling model, TF-GNN's edge removal)
VARIANTS = {
    "TF-GNN as it comes": ("vectorized", True, True),
    "flat index ops only (zoo until 2026-11)": (sampler_ops.IMPLEMENTATION, True, True),
    "zoo today": (sampler_ops.IMPLEMENTATION, False, False),
}


@contextlib.contextmanager
def variant(name: str):
    """The sampler built as `name` builds it, restored to the zoo's after."""
    implementation, keras_model, tf_gnn_removal = VARIANTS[name]
    sampler_ops.ext_ops.set_ops_implementation(implementation)
    if tf_gnn_removal:
        sampler_ops.sampler_core._remove_parallel_edges = sampler_ops.TF_GNN_REMOVE_PARALLEL_EDGES
    try:
        yield keras_model
    finally:
        sampler_ops.install()


def measure(graph, fanouts, users: np.ndarray, *, keras_model: bool) -> dict[str, float]:
    started = time.perf_counter()
    sampler = SubgraphSampler(graph, fanouts=fanouts, seed=0)
    if keras_model:  # what `create_sampling_model_from_spec` returns: the pipeline traced symbolically
        pipeline = sampler._model
        seeds = tf.keras.Input(type_spec=tf.RaggedTensorSpec([None, None], tf.int64, ragged_rank=1))
        sampler._model = tf.keras.Model(inputs=seeds, outputs=pipeline(seeds))
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
    times = {name: [] for name in VARIANTS}
    for _ in range(args.repeats):
        for name in VARIANTS:
            with variant(name) as keras_model:
                times[name].append(measure(graph, args.fanouts, users, keras_model=keras_model))
    means = {name: {k: float(np.mean([t[k] for t in runs])) for k in runs[0]} for name, runs in times.items()}
    print(f"{args.users} users, fan-outs {args.fanouts}, {len(users)} users per call, mean of {args.repeats}")
    print("| sampler | build s | first call s | warm call ms | build + first call vs TF-GNN as it comes |")
    print("|---|---:|---:|---:|---:|")
    reference = means["TF-GNN as it comes"]["build"] + means["TF-GNN as it comes"]["first call"]
    for name, m in means.items():
        total = m["build"] + m["first call"]
        print(
            f"| {name} | {m['build']:.2f} | {m['first call']:.2f} | {1000 * m['warm call']:.1f} | "
            f"{reference / total:.2f}x faster |"
        )
    return means


if __name__ == "__main__":
    main()
