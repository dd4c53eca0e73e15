"""Top-K indexes over candidate embeddings: ScaNN (approximate) or brute force (exact).

Both are `tfrs.layers.factorized_top_k` layers, so they are saved inside a SavedModel.
A ScaNN index needs the ScaNN TensorFlow ops to load (TF Serving: a build with them);
the brute-force one needs nothing beyond TensorFlow.

`ScannSettings.for_size` picks the tree and reordering settings from the number of
candidates. The large-index defaults are the best trade-off measured with `bench/ann.py`
(1M random 64-dim candidates, dot product; see docs/benchmarks.md): random Gaussian
vectors are the worst case for a partition tree, so on learned (clustered) embeddings
they scan more leaves than a given recall needs.

`target_recall` fits the number of leaves scanned to the embeddings at hand instead: the
tree is built once with the given settings, then the cheapest number of leaves to search
(from `LEAF_SHARES` of the leaves, in increasing order, without rebuilding the tree) whose
recall@10 on a seeded sample of the candidates reaches the target is kept in the layer
(a variable its `call` reads, so it is saved with the SavedModel). Each sampled candidate
is a query whose own row is excluded from both the exact and the ScaNN top 10, so the
sample stands for queries from the same distribution that are not in the index. When no
share reaches the target, all leaves are searched and the recall they reach is recorded
(`RecallTuning`, `index_metadata`).

`measure_recall_latency` records the whole trade-off of a built tree: the recall@10 of
every share of leaves on the same sample, and the search latency of a batch of queries
at that share, beside the latency of exact search (`RecallLatency`; `tfzoo export
--recall-latency` writes it to `ann_index.json`, `tfzoo report --export` plots it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import numbers
import os
import sys
import tempfile
import time
import uuid
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs
from scann.scann_ops.py import scann_ops

from tfzoo import progress

INDEX_KINDS = ("scann", "brute_force")

# Recall of `target_recall` is measured at top 10 on at most 1,000 sampled candidates (a
# tenth of a small index): enough for a standard error below 0.01 at recall 0.9, and a
# second or two of exact search at 1M candidates.
RECALL_K = 10
RECALL_SAMPLE_SIZE = 1000
RECALL_SAMPLE_SEED = 0
# Shares of the leaves tried by `target_recall`, cheapest first: fine steps at the low end,
# where clustered embeddings reach high recall, coarse ones towards the random-vector
# worst case (40% for 0.95, docs/benchmarks.md).
LEAF_SHARES = (0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0)
# `measure_recall_latency`: the latency of one call for a batch of this many queries,
# median of this many calls after a warm-up one.
LATENCY_BATCH = 100
LATENCY_REPEATS = 5


@dataclasses.dataclass(frozen=True)
class ScannSettings:
    """ScaNN tree-AH settings.

    Attributes:
      num_leaves: k-means partitions of the candidates.
      num_leaves_to_search: partitions scanned per query (replaced by the one chosen when
        the index is built with a `target_recall`).
      dimensions_per_block: dimensions per anisotropic-quantisation block (smaller: more
        accurate, slower).
      num_reordering_candidates: candidates rescored exactly after the quantised search
        (None: no reordering).
      training_iterations: k-means iterations when building the tree.
      training_sample_size: candidates sampled to train the tree (all when fewer).
      anisotropic_quantization_threshold: the score threshold of ScaNN's anisotropic
        (score-aware) quantisation loss; 0.2 is ScaNN's recommendation for dot product.
    """

    num_leaves: int
    num_leaves_to_search: int
    dimensions_per_block: int = 2
    num_reordering_candidates: int | None = 200
    training_iterations: int = 12
    # The TFRS layer leaves both at ScaNN's builder defaults (100k, none); on 1M random
    # vectors the tree trained on 250k and the anisotropic loss lift recall@10 at 40% of
    # the leaves from 0.93 to 0.95 (bench/ann.py).
    training_sample_size: int = 250_000
    anisotropic_quantization_threshold: float = 0.2

    def __post_init__(self):
        if not 1 <= self.num_leaves_to_search <= self.num_leaves:
            raise ValueError(
                "Need 1 <= num_leaves_to_search <= num_leaves. Received: "
                f"num_leaves={self.num_leaves}, num_leaves_to_search={self.num_leaves_to_search}"
            )
        for field in ("dimensions_per_block", "training_iterations", "training_sample_size"):
            if getattr(self, field) < 1:
                raise ValueError(f"`{field}` must be >= 1. Received: {field}={getattr(self, field)}")
        if self.num_reordering_candidates is not None and self.num_reordering_candidates < 1:
            raise ValueError(
                "`num_reordering_candidates` must be >= 1 or None. "
                f"Received: num_reordering_candidates={self.num_reordering_candidates}"
            )

    @classmethod
    def for_size(cls, num_candidates: int) -> ScannSettings:
        """Defaults by index size.

        Large indexes (>= 100k candidates) use the settings tuned on 1M candidates,
        scaled with sqrt(n) leaves; smaller ones search a larger share of leaves,
        which costs little there.
        """
        if num_candidates >= 100_000:
            num_leaves = max(1, round(LARGE_INDEX.num_leaves * math.sqrt(num_candidates / 1_000_000)))
            share = LARGE_INDEX.num_leaves_to_search / LARGE_INDEX.num_leaves
            return dataclasses.replace(
                LARGE_INDEX, num_leaves=num_leaves, num_leaves_to_search=max(1, round(share * num_leaves))
            )
        num_leaves = max(1, round(math.sqrt(num_candidates)))
        # Half the leaves: a quarter gave recall@5 between 0.69 and 1.0 across k-means
        # initialisations on 300 clustered embeddings; half stays >= 0.95 and costs little.
        return cls(num_leaves=num_leaves, num_leaves_to_search=max(1, num_leaves // 2), num_reordering_candidates=200)


# Tuned with bench/ann.py on 1M x 64 random Gaussian candidates, dot product, on a quiet
# 2-core machine (docs/benchmarks.md, section SSMTL): the cheapest tree that reaches
# recall@10 >= 0.95 there (0.952; 3-4x faster than brute force for batches of 100, 8x
# for single queries; the ScaNN library outside TensorFlow, SOAR included, does no better).
# Random Gaussian vectors are the worst case for a partition tree: no cluster structure,
# so 0.95 needs 40% of the leaves scanned whatever the number of leaves; clustered
# embeddings reach the same recall scanning far fewer (build with `target_recall`, or
# pass `ScannSettings` to trade).
LARGE_INDEX = ScannSettings(
    num_leaves=2000, num_leaves_to_search=800, dimensions_per_block=2, num_reordering_candidates=1000
)


@dataclasses.dataclass(frozen=True)
class RecallTuning:
    """What `target_recall` chose for a ScaNN index.

    Attributes:
      target_recall: the recall@`k` asked for.
      leaves_to_search: the leaves the index searches per query: the fewest tried whose
        recall reaches the target, or all of them when none does.
      measured_recall: recall@`k` at `leaves_to_search` on the sample.
      target_reached: whether `measured_recall` >= `target_recall`.
      sample_queries: sampled candidates used as queries (own row excluded).
      k: the top-k the recall is measured at.
      seed: seeds the sample.
      recall_by_leaves: (leaves searched, recall) of every setting tried, in order.
    """

    target_recall: float
    leaves_to_search: int
    measured_recall: float
    target_reached: bool
    sample_queries: int
    k: int
    seed: int
    recall_by_leaves: tuple[tuple[int, float], ...]


@dataclasses.dataclass(frozen=True)
class RecallLatency:
    """Recall against latency of a built ScaNN tree (`ScaNNIndex.measure_recall_latency`).

    Attributes:
      k: the top-k the recall is measured at.
      sample_queries: sampled candidates used as queries for the recall (own row excluded).
      seed: seeds the sample.
      batch: queries per timed search call.
      points: (leaves searched, recall@k, median latency in ms of one call) per setting,
        fewest leaves first.
      brute_force_latency_ms: the same batch's exact top-k (a matrix product and `top_k`).
    """

    k: int
    sample_queries: int
    seed: int
    batch: int
    points: tuple[tuple[int, float, float], ...]
    brute_force_latency_ms: float

    def to_json(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "sample_queries": self.sample_queries,
            "seed": self.seed,
            "queries": self.batch,
            "scann": [
                {"leaves_to_search": leaves, "recall": found, "latency_ms": ms} for leaves, found, ms in self.points
            ],
            "brute_force_latency_ms": self.brute_force_latency_ms,
        }


def median_ms(call, repeats: int) -> float:
    """Median wall time of `call()` over `repeats` calls, in ms, after one warm-up call."""
    call()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return 1000 * float(np.median(times))


def check_target_recall(target_recall: float | None) -> None:
    """Raises a ValueError unless `target_recall` is None or a number in (0, 1]."""
    if target_recall is None:
        return
    valid = isinstance(target_recall, numbers.Real) and not isinstance(target_recall, bool)
    if not (valid and 0 < target_recall <= 1):  # also false for NaN
        raise ValueError(
            f"`target_recall` must be a number in (0, 1] or None. Received: target_recall={target_recall!r}"
        )


def leaves_to_try(num_leaves: int) -> list[int]:
    """Numbers of leaves `target_recall` tries, cheapest first: `LEAF_SHARES` of `num_leaves`."""
    return sorted({min(num_leaves, max(1, round(share * num_leaves))) for share in LEAF_SHARES})


def exact_top_k(candidates: tf.Tensor, queries: tf.Tensor, k: int) -> np.ndarray:
    """[queries, k] candidate rows of the exact top-k by dot product.

    Queries go in chunks so that a chunk's score matrix stays near 128 MiB whatever the
    number of candidates.
    """
    chunk = max(1, 2**25 // max(1, int(candidates.shape[0])))
    out = [
        tf.math.top_k(tf.matmul(queries[start : start + chunk], candidates, transpose_b=True), k=k).indices.numpy()
        for start in range(0, int(queries.shape[0]), chunk)
    ]
    return np.concatenate(out) if out else np.zeros((0, k), np.int32)


def _without_own_row(found: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """[queries, k] the first k of each row of `found` [queries, k + 1] other than its query's row."""
    own = found == rows[:, np.newaxis]
    order = np.argsort(own, axis=1, kind="stable")[:, :k]  # the own row, when found, goes last
    return np.take_along_axis(found, order, axis=1)


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    """Share of the rows of `exact` [queries, k] found in the same row of `found`.

    Counted as hits over queries x k, which is the mean per query with an exact quotient
    (recalls read as 0.9193, not 0.9192999999999999).
    """
    hits = sum(len(np.intersect1d(f, e)) for f, e in zip(found, exact))
    return hits / exact.size if exact.size else 1.0


@contextlib.contextmanager
def native_logs_quiet():
    """ScaNN logs through absl's C++ logging, which `TF_CPP_MIN_LOG_LEVEL` does not govern
    (its k-means partitioner's progress lines, a warning for each empty centroid). Where
    TensorFlow's C++ logs are quiet (level 3, as the `tfzoo` command sets them), the
    process's stderr (file descriptor 2) goes to a temporary file meanwhile, and comes
    back to stderr if the block fails; elsewhere nothing changes."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") < "3":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class ScaNNIndex(tfrs.layers.factorized_top_k.ScaNN):
    """`tfrs.layers.factorized_top_k.ScaNN` that can return more than its reordering budget,
    and can pick its number of leaves to search for a target recall.

    The TFRS layer leaves ScaNN's pre-reordering count at `num_reordering_candidates`,
    which caps the results at that many; queries that ask for more (top K plus a user's
    known friends, which are removed afterwards) get `max(k, num_reordering_candidates)`
    candidates before the exact rescoring.

    Args:
      settings: the tree and quantisation settings.
      k: results per query unless `call` asks for another number.
      target_recall: if set, `index` keeps the fewest leaves to search whose recall@10
        on a sample of the candidates reaches it (see the module docstring); the choice
        is in `tuning` and `leaves_to_search`.
      name: the layer name.
    """

    def __init__(
        self, settings: ScannSettings, *, k: int = 10, target_recall: float | None = None, name: str | None = None
    ):
        check_target_recall(target_recall)
        super().__init__(
            k=k,
            distance_measure="dot_product",
            num_leaves=settings.num_leaves,
            num_leaves_to_search=settings.num_leaves_to_search,
            training_iterations=settings.training_iterations,
            dimensions_per_block=settings.dimensions_per_block,
            num_reordering_candidates=settings.num_reordering_candidates,
            name=name,
        )
        self.settings = settings
        self.target_recall = target_recall
        self.tuning: RecallTuning | None = None
        self.recall_latency: RecallLatency | None = None
        # A variable, not a Python int: the traced `call` reads it, so a SavedModel serves
        # the number chosen after the tree was built, and retuning needs no retracing.
        self._leaves_to_search = tf.Variable(
            settings.num_leaves_to_search, dtype=tf.int32, trainable=False, name="leaves_to_search"
        )

        def build_searcher(candidates):
            builder = scann_ops.builder(db=candidates, num_neighbors=k, distance_measure="dot_product")
            builder = builder.tree(
                num_leaves=settings.num_leaves,
                num_leaves_to_search=settings.num_leaves_to_search,
                training_sample_size=min(settings.training_sample_size, int(candidates.shape[0])),
                training_iterations=settings.training_iterations,
            )
            builder = builder.score_ah(
                settings.dimensions_per_block,
                anisotropic_quantization_threshold=settings.anisotropic_quantization_threshold,
            )
            if settings.num_reordering_candidates is not None:
                builder = builder.reorder(settings.num_reordering_candidates)
            with native_logs_quiet():
                return builder.build(shared_name=f"{self.name}/{uuid.uuid4()}")

        # Replaces the TFRS layer's builder, which has no way to set the last two settings.
        self._build_searcher = build_searcher

    def get_config(self) -> dict[str, Any]:
        # Not chained to the TFRS layer's: it has none, and Keras's default for a Model
        # subclass collects the constructor's arguments, warning that `settings` (a
        # dataclass) is not serializable every time an export saves the index.
        return {
            "settings": dataclasses.asdict(self.settings),
            "k": self._k,
            "target_recall": self.target_recall,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ScaNNIndex:
        return cls(**{**config, "settings": ScannSettings(**config["settings"])})

    @property
    def leaves_to_search(self) -> int:
        """Leaves searched per query."""
        return int(self._leaves_to_search.numpy())

    def index(
        self, candidates: tf.Tensor, identifiers: tf.Tensor | None = None, *, row_queries: tf.Tensor | None = None
    ) -> ScaNNIndex:
        """Builds the tree over `candidates` [n, d] and, with a `target_recall`, tunes it.

        `row_queries` [n, d]: the query vector of each candidate row's user, which the
        tuning samples instead of the candidates themselves (each still excluded from its
        own results), for indexes whose queries and candidates differ (a candidate bias).
        """
        candidates = tf.convert_to_tensor(candidates, tf.float32)
        with progress.step(f"building a ScaNN index over {int(candidates.shape[0]):,} candidates"):
            super().index(candidates, identifiers)
        self._leaves_to_search.assign(self.settings.num_leaves_to_search)
        self.tuning = self.recall_latency = None
        if self.target_recall is not None:
            self.tune(candidates, self.target_recall, row_queries=row_queries)
        return self

    def tune(
        self,
        candidates: tf.Tensor,
        target_recall: float,
        *,
        row_queries: tf.Tensor | None = None,
        seed: int = RECALL_SAMPLE_SEED,
    ) -> RecallTuning:
        """Keeps the fewest leaves to search that reach `target_recall` on the built tree.

        `candidates` must be those the index was built on. Tries `leaves_to_try` in
        increasing order and stops at the first that reaches the target (all leaves when
        none does); sets `leaves_to_search` and `tuning`, and returns the latter.
        """
        if target_recall is None:
            raise ValueError("`target_recall` must be a number in (0, 1]. Received: target_recall=None")
        check_target_recall(target_recall)
        if self._serialized_searcher is None:
            raise ValueError("The `index` method must be called first to create the retrieval index.")
        candidates = tf.convert_to_tensor(candidates, tf.float32)
        rows, sample, exact, k = self._recall_sample(candidates, row_queries, seed, "target_recall")
        size = len(rows)
        searcher = scann_ops.searcher_from_module(self._serialized_searcher)
        tried = []
        for leaves in leaves_to_try(self.settings.num_leaves):
            _, found = self._search(searcher, sample, k + 1, leaves)
            tried.append((leaves, recall(_without_own_row(found.numpy(), rows, k), exact)))
            if tried[-1][1] >= target_recall:
                break
        leaves, reached = tried[-1]
        self._leaves_to_search.assign(leaves)
        self.tuning = RecallTuning(
            target_recall=float(target_recall),
            leaves_to_search=leaves,
            measured_recall=reached,
            target_reached=reached >= target_recall,
            sample_queries=size,
            k=k,
            seed=seed,
            recall_by_leaves=tuple(tried),
        )
        return self.tuning

    def _recall_sample(
        self, candidates: tf.Tensor, row_queries: tf.Tensor | None, seed: int, what: str
    ) -> tuple[np.ndarray, tf.Tensor, np.ndarray, int]:
        """(sampled rows, their queries [size, d], each one's exact top-k rows without its
        own [size, k], k) of the recall measurements: a seeded sample of at most
        `RECALL_SAMPLE_SIZE` rows (a tenth of a small index)."""
        num_candidates = int(candidates.shape[0])
        queries = candidates if row_queries is None else tf.convert_to_tensor(row_queries, tf.float32)
        if queries.shape != candidates.shape:
            raise ValueError(
                "`row_queries` must have the shape of the candidates. Received: "
                f"row_queries.shape={tuple(queries.shape)}, candidates.shape={tuple(candidates.shape)}"
            )
        if num_candidates < 2:
            raise ValueError(
                f"`{what}` needs at least 2 candidates (one query, one other row). Received: {num_candidates} candidates"
            )
        k = min(RECALL_K, num_candidates - 1)
        size = min(RECALL_SAMPLE_SIZE, max(1, num_candidates // 10))
        rows = np.sort(np.random.default_rng(seed).choice(num_candidates, size=size, replace=False))
        sample = tf.gather(queries, rows)
        # Ask one more and drop the query's own row: the sample stands for queries that are
        # not in the index.
        exact = _without_own_row(exact_top_k(candidates, sample, k + 1), rows, k)
        return rows, sample, exact, k

    def measure_recall_latency(
        self,
        candidates: tf.Tensor,
        *,
        row_queries: tf.Tensor | None = None,
        seed: int = RECALL_SAMPLE_SEED,
        batch: int = LATENCY_BATCH,
        repeats: int = LATENCY_REPEATS,
    ) -> RecallLatency:
        """Recall@10 (on `tune`'s sample) and the latency of one search of `batch` queries
        at every number of leaves `leaves_to_try` gives, and exact search's latency for
        the same batch; kept in `recall_latency` (and the metadata). Changes nothing the
        index serves. `candidates` and `row_queries` as for `tune`."""
        if self._serialized_searcher is None:
            raise ValueError("The `index` method must be called first to create the retrieval index.")
        candidates = tf.convert_to_tensor(candidates, tf.float32)
        rows, sample, exact, k = self._recall_sample(candidates, row_queries, seed, "measure_recall_latency")
        searcher = scann_ops.searcher_from_module(self._serialized_searcher)
        block = tf.gather(sample, np.arange(batch) % len(rows))  # [batch, d]: the sample, repeated if small
        points = []
        for leaves in leaves_to_try(self.settings.num_leaves):
            _, found = self._search(searcher, sample, k + 1, leaves)
            found_recall = recall(_without_own_row(found.numpy(), rows, k), exact)
            latency = median_ms(lambda leaves=leaves: self._search(searcher, block, self._k, leaves), repeats)
            points.append((leaves, found_recall, latency))
        exact_k = min(self._k, int(candidates.shape[0]))
        brute = median_ms(lambda: tf.math.top_k(tf.matmul(block, candidates, transpose_b=True), k=exact_k), repeats)
        self.recall_latency = RecallLatency(
            k=k, sample_queries=len(rows), seed=seed, batch=batch, points=tuple(points), brute_force_latency_ms=brute
        )
        return self.recall_latency

    def _search(self, searcher, queries: tf.Tensor, k, leaves_to_search) -> tuple[tf.Tensor, tf.Tensor]:
        """(scores, candidate rows) [batch, k]: the search `call` serves, at `leaves_to_search`."""
        pre_reorder = None
        if self._num_reordering_candidates is not None:
            pre_reorder = tf.maximum(tf.cast(k, tf.int32), self._num_reordering_candidates)
        result = searcher.search_batched_parallel(
            queries, final_num_neighbors=k, pre_reorder_num_neighbors=pre_reorder, leaves_to_search=leaves_to_search
        )
        return result.distances, result.indices

    def call(self, queries: tf.Tensor, k=None):
        if self._serialized_searcher is None:
            raise ValueError("The `index` method must be called first to create the retrieval index.")
        k = self._k if k is None else k
        searcher = scann_ops.searcher_from_module(self._serialized_searcher)
        scores, rows = self._search(searcher, queries, k, self._leaves_to_search)
        # Where the searched leaves hold fewer than k points, ScaNN pads with NaN scores (and
        # arbitrary rows): those are no answer, scored -inf so that they rank last.
        scores = tf.where(tf.math.is_nan(scores), tf.constant(-np.inf, scores.dtype), scores)
        if self._identifiers is None:
            return scores, rows
        return scores, tf.gather(self._identifiers, rows)

    def metadata(self) -> dict[str, Any]:
        """The index's settings and, when tuned, what `target_recall` chose (JSON-ready)."""
        tuning = self.tuning
        return {
            "kind": "scann",
            "settings": dataclasses.asdict(self.settings),
            "leaves_to_search": self.leaves_to_search,
            "target_recall": None if tuning is None else tuning.target_recall,
            "measured_recall": None if tuning is None else tuning.measured_recall,
            "target_reached": None if tuning is None else tuning.target_reached,
            "sample_queries": None if tuning is None else tuning.sample_queries,
            "recall_k": None if tuning is None else tuning.k,
            "sample_seed": None if tuning is None else tuning.seed,
            "recall_by_leaves_to_search": None
            if tuning is None
            else [{"leaves_to_search": leaves, "recall": found} for leaves, found in tuning.recall_by_leaves],
            "recall_latency": None if self.recall_latency is None else self.recall_latency.to_json(),
        }


def build_index(
    kind: str,
    candidates: tf.Tensor,
    identifiers: tf.Tensor | None = None,
    *,
    k: int = 10,
    settings: ScannSettings | None = None,
    target_recall: float | None = None,
    row_queries: tf.Tensor | None = None,
    recall_latency: bool = False,
) -> tfrs.layers.factorized_top_k.TopK:
    """A top-`k` index over `candidates` [n, d] (dot product), returning `identifiers` [n].

    Args:
      kind: "scann" or "brute_force".
      candidates: [n, d] the vectors to index.
      identifiers: [n] what the index returns for each row (default: the row).
      k: results per query unless the call asks for another number.
      settings: ScaNN settings (default `ScannSettings.for_size(n)`).
      target_recall: ScaNN: tune the leaves to search to reach this recall@10 (see
        `ScaNNIndex`). Brute force is exact (recall 1) and ignores it once validated, so
        one call serves both kinds.
      row_queries: [n, d] ScaNN with `target_recall` or `recall_latency`: the query
        vector of each row's user, sampled instead of the candidates to measure the recall.
      recall_latency: ScaNN: measure recall against latency at every number of leaves
        (`ScaNNIndex.measure_recall_latency`, in the metadata). Ignored by brute force.
    """
    if kind not in INDEX_KINDS:
        raise ValueError(f"`kind` must be one of {INDEX_KINDS}. Received: kind={kind!r}")
    check_target_recall(target_recall)
    candidates = tf.convert_to_tensor(candidates, tf.float32)
    if kind == "brute_force":
        return tfrs.layers.factorized_top_k.BruteForce(k=k).index(candidates, identifiers)
    settings = settings or ScannSettings.for_size(int(candidates.shape[0]))
    index = ScaNNIndex(settings, k=k, target_recall=target_recall)
    index.index(candidates, identifiers, row_queries=row_queries)
    if recall_latency:
        index.measure_recall_latency(candidates, row_queries=row_queries)
    return index


def index_metadata(index: tfrs.layers.factorized_top_k.TopK) -> dict[str, Any]:
    """What an exported index records about itself (`assets.extra/ann_index.json`)."""
    if isinstance(index, ScaNNIndex):
        return index.metadata()
    if isinstance(index, tfrs.layers.factorized_top_k.BruteForce):
        return {"kind": "brute_force", "exact": True}
    raise ValueError(f"`index` must be built by `build_index`. Received: index={index!r}")


def scann_op_library_path() -> str:
    """Path of the ScaNN TensorFlow op library: `tf.load_op_library` it before loading a
    SavedModel that holds a ScaNN index in a process that does not import scann."""
    import os

    import scann

    return os.path.join(os.path.dirname(scann.__file__), "scann_ops", "cc", "_scann_ops.so")
