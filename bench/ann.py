"""ScaNN vs brute force top-10 retrieval: recall@10 against exact search and query latency.

    python bench/ann.py [--candidates 1000000] [--dim 64] [--queries 1000] \
        [--real savedmodels/ssmtl_retrieval_brute_force/1]

Side by side in one run, on the same queries:

- brute force: `tfrs.layers.factorized_top_k.BruteForce` (exact: it is the reference);
- ScaNN (`tfzoo.export.ann.ScaNNIndex`) with the large-index defaults
  (`tfzoo.export.ann.LARGE_INDEX`, scaled to the index size) and the `--grid` settings,
  to show the trade-off.

With `--library`, also the ScaNN library itself outside TensorFlow (`scann_ops_pybind`,
which a TF Serving SavedModel cannot hold) at the large-index tree, with and without
SOAR spilling (each vector also stored in a second, orthogonal leaf; the TensorFlow
ops refuse it), to show what the library reaches on the same data and machine.

Candidates: `--candidates` random Gaussian vectors of `--dim` dimensions (seeded), and,
with `--real`, the user embeddings held by an exported friend-retrieval SavedModel (its
brute-force variant, which loads without the ScaNN ops), queried with themselves.
Latency: median wall time of one call for a batch of 1 and of 100 queries, over
`--repeats` calls after one warm-up call; the index layers are called through one traced
`tf.function`, as a server runs a SavedModel signature (eager calls add about 0.4 ms of
Python dispatch per call); the library searcher is called from Python directly.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import tensorflow as tf

import tfzoo  # noqa: F401  (Keras 2 switch before TFRS)
from tfzoo.export.ann import LARGE_INDEX, ScannSettings, build_index

K = 10


def exact_top_k(candidates: np.ndarray, queries: np.ndarray, k: int = K, chunk: int = 100) -> np.ndarray:
    """[queries, k] ids of the exact top-k by dot product."""
    table = tf.constant(candidates)
    out = []
    for start in range(0, len(queries), chunk):
        scores = tf.matmul(tf.constant(queries[start:start + chunk]), table, transpose_b=True)
        out.append(tf.math.top_k(scores, k=k).indices.numpy())
    return np.concatenate(out)


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(np.intersect1d(f, e)) / len(e) for f, e in zip(found, exact)]))


def serving_function(index, dim: int):
    """The index as a SavedModel signature runs it: one traced function, queries [b, dim]."""
    return tf.function(index, input_signature=[tf.TensorSpec([None, dim], tf.float32)])


def latency_ms(index, queries: np.ndarray, batch: int, repeats: int) -> float:
    rng = np.random.default_rng(0)
    index(tf.constant(queries[:batch]))  # warm-up
    times = []
    for _ in range(repeats):
        start = rng.integers(0, len(queries) - batch + 1)
        block = tf.constant(queries[start:start + batch])
        began = time.perf_counter()
        index(block)
        times.append(time.perf_counter() - began)
    return 1000 * float(np.median(times))


class LibrarySearcher:
    """The ScaNN library's own searcher (pybind, outside TensorFlow) behind the index-layer
    call signature: queries [b, d] -> (scores [b, K], ids [b, K])."""

    def __init__(self, candidates: np.ndarray, settings: ScannSettings, *, soar_lambda: float | None):
        import scann

        spilling = {} if soar_lambda is None else {"soar_lambda": soar_lambda, "overretrieve_factor": 2.0}
        builder = scann.scann_ops_pybind.builder(candidates, K, "dot_product").tree(
            num_leaves=settings.num_leaves, num_leaves_to_search=settings.num_leaves_to_search,
            training_sample_size=min(settings.training_sample_size, len(candidates)),
            training_iterations=settings.training_iterations, **spilling)
        builder = builder.score_ah(settings.dimensions_per_block,
                                   anisotropic_quantization_threshold=settings.anisotropic_quantization_threshold)
        if settings.num_reordering_candidates is not None:
            builder = builder.reorder(settings.num_reordering_candidates)
        self.searcher = builder.build()

    def __call__(self, queries: tf.Tensor):
        ids, scores = self.searcher.search_batched_parallel(np.asarray(queries))
        return scores, ids


def scann_label(settings: ScannSettings) -> str:
    return (f"leaves {settings.num_leaves}/{settings.num_leaves_to_search} searched, "
            f"reorder {settings.num_reordering_candidates}")


def compare(name: str, candidates: np.ndarray, queries: np.ndarray, indexes: list, repeats: int):
    """Prints one table row per index; `indexes` are (label, build) pairs, build() -> a
    callable from queries [b, d] to (scores, ids), ids being rows of `candidates`."""
    print(f"\n## {name}: {len(candidates):,} candidates x {candidates.shape[1]} dims, {len(queries)} queries, top-{K}")
    exact = exact_top_k(candidates, queries)
    ids = tf.range(len(candidates), dtype=tf.int64)
    brute = serving_function(build_index("brute_force", candidates, ids, k=K), candidates.shape[1])
    brute_1, brute_100 = latency_ms(brute, queries, 1, repeats), latency_ms(brute, queries, 100, repeats)
    found = np.concatenate([brute(tf.constant(queries[s:s + 100]))[1].numpy() for s in range(0, len(queries), 100)])
    rows = [("brute force", recall_at_k(found, exact), 0.0, brute_1, brute_100)]
    for label, build in indexes:
        began = time.perf_counter()
        index = build()
        build_seconds = time.perf_counter() - began
        found = np.concatenate([np.asarray(index(tf.constant(queries[s:s + 100]))[1])
                                for s in range(0, len(queries), 100)])
        rows.append((label, recall_at_k(found, exact), build_seconds, latency_ms(index, queries, 1, repeats),
                     latency_ms(index, queries, 100, repeats)))
        print(f"  measured {label}", flush=True)
    print("| index | recall@10 | build s | batch 1 ms | batch 100 ms | speed-up batch 1 | speed-up batch 100 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, recall, build_seconds, ms_1, ms_100 in rows:
        print(f"| {label} | {recall:.4f} | {build_seconds:.1f} | {ms_1:.2f} | {ms_100:.2f} | "
              f"{brute_1 / ms_1:.1f}x | {brute_100 / ms_100:.1f}x |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=1_000_000, help="random candidates (0: only --real)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--grid", type=lambda text: tuple(int(v) for v in text.split("/")), nargs="*",
                        default=[(2000, 100, 200), (2000, 400, 200), (2000, 600, 1000), (2000, 1000, 1000), (1000, 400, 1000)],
                        help="more ScaNN settings to compare, as LEAVES/SEARCHED/REORDER")
    parser.add_argument("--library", action="store_true",
                        help="also the ScaNN library outside TensorFlow, with and without SOAR spilling")
    parser.add_argument("--real", help="an exported brute-force friend-retrieval SavedModel version directory")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    candidates = rng.standard_normal((args.candidates, args.dim), dtype=np.float32)
    queries = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
    scaled = ScannSettings.for_size(max(args.candidates, 1))
    neighbours = [scaled] + [
        dataclasses.replace(scaled, num_leaves=leaves, num_leaves_to_search=searched, num_reordering_candidates=reorder)
        for leaves, searched, reorder in args.grid]

    def tf_index(table: np.ndarray, settings: ScannSettings):
        ids = tf.range(len(table), dtype=tf.int64)
        return (f"scann {scann_label(settings)}",
                lambda: serving_function(build_index("scann", table, ids, k=K, settings=settings), table.shape[1]))

    if args.candidates:
        indexes = [tf_index(candidates, settings) for settings in neighbours]
        if args.library:
            # The large-index tree as it is and at half its leaves searched, then with SOAR
            # (ScaNN's recommended lambda) at a half and a quarter of its leaves searched.
            share = scaled.num_leaves_to_search / scaled.num_leaves
            for share, soar_lambda in ((share, None), (share / 2, None), (share / 2, 1.5), (share / 4, 1.5)):
                settings = dataclasses.replace(scaled, num_leaves_to_search=max(1, round(share * scaled.num_leaves)))
                spill = "no spilling" if soar_lambda is None else f"SOAR lambda {soar_lambda}"
                indexes.append((f"library {scann_label(settings)}, {spill}",
                                lambda s=settings, l=soar_lambda: LibrarySearcher(candidates, s, soar_lambda=l)))
        compare("random Gaussian", candidates, queries, indexes, args.repeats)
    if args.real:
        embeddings = tf.saved_model.load(args.real).user_embeddings.numpy()
        real_queries = embeddings[rng.permutation(len(embeddings))[:args.queries]]
        compare(f"user embeddings of {args.real}", embeddings, real_queries,
                [tf_index(embeddings, ScannSettings.for_size(len(embeddings)))], args.repeats)
    print(f"\nlarge-index defaults: {LARGE_INDEX}")


if __name__ == "__main__":
    main()
