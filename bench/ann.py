"""ScaNN vs brute force top-10 retrieval: recall@10 against exact search and query latency.

    python bench/ann.py [--candidates 1000000] [--dim 64] [--queries 1000] [--target-recall 0.95]
    python bench/ann.py --candidates 0 --vectors EMBEDDINGS.npy [--query-vectors QUERIES.npy]
    python bench/ann.py --candidates 0 --fit EMBEDDINGS.npy --components 50 [--fitted-size 1000000]
    python bench/ann.py --dump-embeddings savedmodels/ssmtl_retrieval/1 EMBEDDINGS.npy
    python bench/ann.py --quick      # 2,000 random candidates, target recall 0.9: checks that it runs

Side by side in one run, on the same queries:

- brute force: `tfrs.layers.factorized_top_k.BruteForce` (exact: it is the reference);
- ScaNN (`tfzoo.export.ann.ScaNNIndex`) with the defaults for the index size
  (`tfzoo.export.ann.ScannSettings.for_size`, `LARGE_INDEX` scaled from 100k candidates
  up) and the `--grid` settings (those with at most a tenth as many leaves as
  candidates), to show the trade-off;
- with `--target-recall`, the default tree with the leaves to search chosen for that
  recall (`build_index(..., target_recall=...)`); its row shows the leaves chosen and the
  recall@10 the choice measured on its sample of the candidates, next to the recall the
  bench measures on its own queries.

Every TensorFlow index is measured as it is served: wrapped in a `tf.Module` whose
signature maps `queries` [None, d] float32 to `scores` and `ids` [None, 10], saved with
`tf.saved_model.save` (ScaNN ops whitelisted), loaded back with `tf.saved_model.load`,
and called through the loaded signature; "build s" is the index build (and tuning)
alone.

With `--library`, also the ScaNN library itself outside TensorFlow (`scann_ops_pybind`,
which a TF Serving SavedModel cannot hold, called from Python directly) at the
large-index tree, with and without SOAR spilling (each vector also stored in a second,
orthogonal leaf; the TensorFlow ops refuse it), to show what the library reaches on the
same data and machine (random set only).

Vector sets, each measured in its own table:

- `--candidates` random Gaussian vectors of `--dim` dimensions and as many fresh random
  queries as `--queries` (seeded; 0 skips the set): the worst case for a partition tree,
  which has no cluster structure to exploit;
- `--vectors FILE.npy`: any [n, d] float embeddings, e.g. those `--dump-embeddings`
  writes; queried with `--query-vectors FILE.npy`, or by default with a seeded sample of
  `--queries` of the vectors, removed from the index (queries from the same distribution
  that are not in it);
- `--fit FILE.npy`: a Gaussian mixture of `--components` full-covariance components
  (`sklearn.mixture.GaussianMixture`, seeded) fitted to the given embeddings, from which
  `--fitted-size` candidates and `--queries` fresh queries are sampled: learned
  embeddings' cluster structure at a size the real data does not reach;
- `--real DIR`: the user embeddings held by an exported friend-retrieval SavedModel,
  queried with themselves.

`--dump-embeddings SAVEDMODEL_DIR OUT.npy` writes the `user_embeddings` variable of an
exported friend-retrieval version (its query vectors, [users, d], with a trailing 1 when
the model has a candidate bias) and exits. It reads the variable from the SavedModel's
checkpoint, so it neither loads the graph nor needs the ScaNN ops: the ScaNN export and
its `_brute_force` twin both work.

Latency: median wall time of one call for a batch of 1 and of 100 queries, over
`--repeats` calls after one warm-up call.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

import tfzoo  # noqa: F401  (Keras 2 switch before TFRS)
from tfzoo.export.ann import LARGE_INDEX, ScaNNIndex, ScannSettings, build_index, exact_top_k, recall

K = 10
SEED = 0
# A leaf of the grid needs candidates to train on: settings with more leaves than a tenth
# of the candidates are skipped on smaller sets.
MIN_CANDIDATES_PER_LEAF = 10
# `--quick`: every row of the random set (brute force, the size's defaults, one grid
# setting, the tuned tree) built, saved, loaded and timed in seconds on one core.
QUICK_CANDIDATES, QUICK_DIM, QUICK_QUERIES, QUICK_REPEATS, QUICK_COMPONENTS = 2000, 16, 20, 2, 5
QUICK_GRID_SETTING = (20, 5, 50)  # leaves/searched/reorder: 100 candidates per leaf at 2,000
QUICK_TARGET_RECALL = 0.9


def latency_ms(search, queries: np.ndarray, batch: int, repeats: int) -> float:
    rng = np.random.default_rng(0)
    if len(queries) < batch:  # fewer queries than a batch (small trial runs): repeat them
        queries = np.resize(queries, (batch, queries.shape[1]))
    search(tf.constant(queries[:batch]))  # warm-up
    times = []
    for _ in range(repeats):
        start = rng.integers(0, len(queries) - batch + 1)
        block = tf.constant(queries[start : start + batch])
        began = time.perf_counter()
        search(block)
        times.append(time.perf_counter() - began)
    return 1000 * float(np.median(times))


def served(index, dim: int, directory: str) -> Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    """`index` as a server runs it: saved behind a signature, loaded back, called through it.

    Returns queries [b, dim] -> (scores [b, K], ids [b, K]) through the loaded signature.
    """
    module = tf.Module()
    module.index = index

    @tf.function(input_signature=[tf.TensorSpec([None, dim], tf.float32, name="queries")])
    def search(queries):
        scores, ids = index(queries)
        return {"scores": scores, "ids": ids}

    module.search = search
    tf.saved_model.save(
        module,
        directory,
        signatures={"serving_default": search.get_concrete_function()},
        options=tf.saved_model.SaveOptions(namespace_whitelist=["Scann"]),
    )
    loaded = tf.saved_model.load(directory)
    signature = loaded.signatures["serving_default"]

    def call(queries: tf.Tensor):
        out = signature(queries=queries)
        return out["scores"], out["ids"]

    call.loaded = loaded  # the signature's variables live as long as the loaded object
    return call


class LibrarySearcher:
    """The ScaNN library's own searcher (pybind, outside TensorFlow) behind the index-layer
    call signature: queries [b, d] -> (scores [b, K], ids [b, K])."""

    def __init__(self, candidates: np.ndarray, settings: ScannSettings, *, soar_lambda: float | None):
        import scann

        spilling = {} if soar_lambda is None else {"soar_lambda": soar_lambda, "overretrieve_factor": 2.0}
        builder = scann.scann_ops_pybind.builder(candidates, K, "dot_product").tree(
            num_leaves=settings.num_leaves,
            num_leaves_to_search=settings.num_leaves_to_search,
            training_sample_size=min(settings.training_sample_size, len(candidates)),
            training_iterations=settings.training_iterations,
            **spilling,
        )
        builder = builder.score_ah(
            settings.dimensions_per_block,
            anisotropic_quantization_threshold=settings.anisotropic_quantization_threshold,
        )
        if settings.num_reordering_candidates is not None:
            builder = builder.reorder(settings.num_reordering_candidates)
        self.searcher = builder.build()

    def __call__(self, queries: tf.Tensor):
        ids, scores = self.searcher.search_batched_parallel(np.asarray(queries))
        return scores, ids


def scann_label(settings: ScannSettings) -> str:
    return (
        f"leaves {settings.num_leaves}/{settings.num_leaves_to_search} searched, "
        f"reorder {settings.num_reordering_candidates}"
    )


def tuned_label(index: ScaNNIndex) -> str:
    tuning = index.tuning
    reached = "" if tuning.target_reached else ", not reached"
    return (
        f"scann leaves {index.settings.num_leaves}/{tuning.leaves_to_search} searched, "
        f"reorder {index.settings.num_reordering_candidates}; target recall {tuning.target_recall:g}: "
        f"sample recall {tuning.measured_recall:.4f}{reached} ({tuning.sample_queries} queries)"
    )


@dataclasses.dataclass
class Entry:
    """One row: `build()` returns a `tfzoo.export.ann` index layer (measured saved and
    loaded) or a library searcher (called directly); `label` may be replaced after the
    build (tuned indexes name the leaves they chose)."""

    label: str
    build: Callable[[], object]


def search_all(search, queries: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [np.asarray(search(tf.constant(queries[s : s + 100]))[1]) for s in range(0, len(queries), 100)]
    )


def compare(name: str, candidates: np.ndarray, queries: np.ndarray, entries: list[Entry], repeats: int):
    """Prints one table row per entry after brute force; ids are rows of `candidates`."""
    dim = candidates.shape[1]
    print(f"\n## {name}: {len(candidates):,} candidates x {dim} dims, {len(queries)} queries, top-{K}", flush=True)
    exact = exact_top_k(tf.constant(candidates), tf.constant(queries), K)
    ids = tf.range(len(candidates), dtype=tf.int64)
    with tempfile.TemporaryDirectory() as scratch:
        brute = served(build_index("brute_force", candidates, ids, k=K), dim, f"{scratch}/brute_force")
        brute_1, brute_100 = latency_ms(brute, queries, 1, repeats), latency_ms(brute, queries, 100, repeats)
        rows = [("brute force", recall(search_all(brute, queries), exact), 0.0, brute_1, brute_100)]
        del brute
        for number, entry in enumerate(entries):
            began = time.perf_counter()
            index = entry.build()
            build_seconds = time.perf_counter() - began
            label = entry.label
            if isinstance(index, ScaNNIndex):
                if index.tuning is not None:
                    label = tuned_label(index)
                search = served(index, dim, f"{scratch}/{number}")
            else:
                search = index
            rows.append(
                (
                    label,
                    recall(search_all(search, queries), exact),
                    build_seconds,
                    latency_ms(search, queries, 1, repeats),
                    latency_ms(search, queries, 100, repeats),
                )
            )
            print(f"  measured {label}", flush=True)
            del index, search
            gc.collect()
    print("| index | recall@10 | build s | batch 1 ms | batch 100 ms | speed-up batch 1 | speed-up batch 100 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, found, build_seconds, ms_1, ms_100 in rows:
        print(
            f"| {label} | {found:.4f} | {build_seconds:.1f} | {ms_1:.2f} | {ms_100:.2f} | "
            f"{brute_1 / ms_1:.1f}x | {brute_100 / ms_100:.1f}x |",
            flush=True,
        )


def scann_entries(candidates: np.ndarray, grid, target_recall: float | None) -> list[Entry]:
    """The size's defaults, the grid settings the set is large enough for, and the
    defaults' tree tuned for `target_recall`."""
    ids = tf.range(len(candidates), dtype=tf.int64)
    default = ScannSettings.for_size(len(candidates))
    fitting = [row for row in grid if row[0] * MIN_CANDIDATES_PER_LEAF <= len(candidates)]
    if len(fitting) < len(grid):
        print(
            f"  grid settings with more than {len(candidates) // MIN_CANDIDATES_PER_LEAF} leaves skipped: "
            f"{[row for row in grid if row not in fitting]}"
        )
    settings = [default] + [
        dataclasses.replace(
            default, num_leaves=leaves, num_leaves_to_search=searched, num_reordering_candidates=reorder
        )
        for leaves, searched, reorder in fitting
    ]
    entries = [
        Entry(f"scann {scann_label(s)}", lambda s=s: build_index("scann", candidates, ids, k=K, settings=s))
        for s in settings
    ]
    if target_recall is not None:
        entries.append(
            Entry(
                f"scann leaves {default.num_leaves}, target recall {target_recall:g}",
                lambda: build_index("scann", candidates, ids, k=K, settings=default, target_recall=target_recall),
            )
        )
    return entries


def library_entries(candidates: np.ndarray) -> list[Entry]:
    """The large-index tree as it is and at half its leaves searched, then with SOAR
    (ScaNN's recommended lambda) at a half and a quarter of its leaves searched."""
    scaled = ScannSettings.for_size(len(candidates))
    entries = []
    share = scaled.num_leaves_to_search / scaled.num_leaves
    for fraction, soar_lambda in ((share, None), (share / 2, None), (share / 2, 1.5), (share / 4, 1.5)):
        settings = dataclasses.replace(scaled, num_leaves_to_search=max(1, round(fraction * scaled.num_leaves)))
        spill = "no spilling" if soar_lambda is None else f"SOAR lambda {soar_lambda}"
        entries.append(
            Entry(
                f"library {scann_label(settings)}, {spill}",
                lambda s=settings, soar=soar_lambda: LibrarySearcher(candidates, s, soar_lambda=soar),
            )
        )
    return entries


def held_out(vectors: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(candidates, queries): `count` rows drawn at random as queries, the rest indexed."""
    if not 1 <= count < len(vectors):
        raise ValueError(
            f"`--queries` must be in [1, {len(vectors)}) to hold queries out of {len(vectors)} vectors. "
            f"Received: queries={count}"
        )
    chosen = np.zeros(len(vectors), bool)
    chosen[rng.choice(len(vectors), size=count, replace=False)] = True
    return vectors[~chosen], vectors[chosen]


def fitted_mixture(embeddings: np.ndarray, components: int, size: int, queries: int) -> tuple[np.ndarray, np.ndarray]:
    """(candidates [size, d], queries [queries, d]) sampled from a full-covariance Gaussian
    mixture fitted to `embeddings`."""
    from sklearn.mixture import GaussianMixture

    if not 1 <= components <= len(embeddings):
        raise ValueError(
            f"`--components` must be in [1, {len(embeddings)}] (the embeddings fitted). "
            f"Received: components={components}"
        )
    mixture = GaussianMixture(n_components=components, covariance_type="full", random_state=SEED)
    mixture.fit(embeddings.astype(np.float64))
    # One draw for both: with an integer seed every `sample` call replays the same stream,
    # so two calls would query with the first candidates. `sample` groups rows by component.
    samples, _ = mixture.sample(size + queries)
    samples = samples[np.random.default_rng(SEED).permutation(len(samples))].astype(np.float32)
    return samples[:size], samples[size:]


def load_vectors(path: str) -> np.ndarray:
    vectors = np.load(path)
    if vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.number):
        raise ValueError(
            f"{path} must hold a 2-D numeric array [n, d]. Received: shape={vectors.shape}, dtype={vectors.dtype}"
        )
    return np.ascontiguousarray(vectors, np.float32)


def dump_embeddings(saved_model_dir: str, out: str) -> np.ndarray:
    """Writes the `user_embeddings` [users, d] of a friend-retrieval SavedModel to `out`."""
    # The SavedModel's checkpoint keys its variables by object path: reading it needs
    # neither the graph nor the ScaNN ops.
    checkpoint = str(Path(saved_model_dir) / "variables" / "variables")
    embeddings = tf.train.load_variable(checkpoint, "user_embeddings/.ATTRIBUTES/VARIABLE_VALUE")
    np.save(out, embeddings.astype(np.float32))
    return embeddings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=1_000_000, help="random candidates (0: no random set)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument(
        "--queries",
        type=int,
        default=1000,
        help="queries: random ones, held out of --vectors, or sampled fresh with --fit",
    )
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--grid",
        type=lambda text: tuple(int(v) for v in text.split("/")),
        nargs="*",
        default=[(2000, 100, 200), (2000, 400, 200), (2000, 600, 1000), (2000, 1000, 1000), (1000, 400, 1000)],
        help="more ScaNN settings to compare, as LEAVES/SEARCHED/REORDER",
    )
    parser.add_argument(
        "--target-recall", type=float, help="also the default tree with the leaves to search chosen for this recall@10"
    )
    parser.add_argument(
        "--library",
        action="store_true",
        help="also the ScaNN library outside TensorFlow, with and without SOAR spilling",
    )
    parser.add_argument("--vectors", help="a .npy of [n, d] embeddings to index")
    parser.add_argument("--query-vectors", help="a .npy of [m, d] queries for --vectors (default: held out of it)")
    parser.add_argument("--fit", help="a .npy of [n, d] embeddings to fit a Gaussian mixture to and sample from")
    parser.add_argument("--components", type=int, default=50, help="mixture components for --fit")
    parser.add_argument("--fitted-size", type=int, default=1_000_000, help="candidates sampled from the --fit mixture")
    parser.add_argument("--real", help="an exported brute-force friend-retrieval SavedModel version directory")
    parser.add_argument(
        "--dump-embeddings",
        nargs=2,
        metavar=("SAVEDMODEL_DIR", "OUT_NPY"),
        help="write the user embeddings of an exported friend-retrieval SavedModel and exit",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"at most {QUICK_CANDIDATES:,} candidates (and --fitted-size) of at most {QUICK_DIM} random dims, "
        f"{QUICK_QUERIES} queries, {QUICK_REPEATS} repeats; one small grid setting and target recall "
        f"{QUICK_TARGET_RECALL} unless given: checks that the bench runs",
    )
    args = parser.parse_args(argv)

    if args.quick:
        # Caps, not replacements: `--candidates 0` still skips the random set, and a
        # smaller size given next to --quick stays.
        args.candidates = min(args.candidates, QUICK_CANDIDATES)
        args.dim = min(args.dim, QUICK_DIM)
        args.queries = min(args.queries, QUICK_QUERIES)
        args.repeats = min(args.repeats, QUICK_REPEATS)
        args.fitted_size = min(args.fitted_size, QUICK_CANDIDATES)
        args.components = min(args.components, QUICK_COMPONENTS)
        if args.grid == parser.get_default("grid"):  # its settings have too many leaves for the caps
            args.grid = [QUICK_GRID_SETTING]
        if args.target_recall is None:  # the tuned row has its own code path: check it too
            args.target_recall = QUICK_TARGET_RECALL
    if args.dump_embeddings:
        embeddings = dump_embeddings(*args.dump_embeddings)
        print(f"wrote {args.dump_embeddings[1]}: {embeddings.shape[0]:,} x {embeddings.shape[1]} user embeddings")
        return
    if args.query_vectors and not args.vectors:
        parser.error("--query-vectors needs --vectors")
    if args.target_recall is not None and not 0 < args.target_recall <= 1:
        parser.error(f"--target-recall must be in (0, 1]; received {args.target_recall}")

    rng = np.random.default_rng(SEED)
    if args.candidates:
        candidates = rng.standard_normal((args.candidates, args.dim), dtype=np.float32)
        queries = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
        entries = scann_entries(candidates, args.grid, args.target_recall)
        if args.library:
            entries += library_entries(candidates)
        compare("random Gaussian", candidates, queries, entries, args.repeats)
        del candidates, queries, entries
    if args.vectors:
        vectors = load_vectors(args.vectors)
        if args.query_vectors:
            candidates, queries = vectors, load_vectors(args.query_vectors)
            source = f"queries {args.query_vectors}"
        else:
            candidates, queries = held_out(vectors, args.queries, np.random.default_rng(SEED))
            source = "queries held out of them"
        if queries.shape[1] != candidates.shape[1]:
            parser.error(f"--query-vectors has {queries.shape[1]} dims, --vectors {candidates.shape[1]}")
        compare(
            f"{args.vectors}, {source}",
            candidates,
            queries,
            scann_entries(candidates, args.grid, args.target_recall),
            args.repeats,
        )
        del vectors, candidates, queries
    if args.fit:
        candidates, queries = fitted_mixture(load_vectors(args.fit), args.components, args.fitted_size, args.queries)
        compare(
            f"{args.components}-component Gaussian mixture fitted to {args.fit}, fresh queries",
            candidates,
            queries,
            scann_entries(candidates, args.grid, args.target_recall),
            args.repeats,
        )
        del candidates, queries
    if args.real:
        embeddings = tf.saved_model.load(args.real).user_embeddings.numpy()
        real_queries = embeddings[rng.permutation(len(embeddings))[: args.queries]]
        compare(
            f"user embeddings of {args.real}",
            embeddings,
            real_queries,
            scann_entries(embeddings, (), args.target_recall),
            args.repeats,
        )
    print(f"\nlarge-index defaults: {LARGE_INDEX}")


if __name__ == "__main__":
    main(sys.argv[1:])
