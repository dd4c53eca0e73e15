"""Top-K indexes over candidate embeddings: ScaNN (approximate) or brute force (exact).

Both are `tfrs.layers.factorized_top_k` layers, so they are saved inside a SavedModel.
A ScaNN index needs the ScaNN TensorFlow ops to load (TF Serving: a build with them);
the brute-force one needs nothing beyond TensorFlow.

`ScannSettings.for_size` picks the tree and reordering settings from the number of
candidates. The large-index defaults are the best trade-off measured with `bench/ann.py`
(1M random 64-dim candidates, dot product); see docs/benchmarks.md.
"""

from __future__ import annotations

import dataclasses
import math
import uuid

import tensorflow as tf
import tensorflow_recommenders as tfrs
from scann.scann_ops.py import scann_ops

INDEX_KINDS = ("scann", "brute_force")


@dataclasses.dataclass(frozen=True)
class ScannSettings:
    """ScaNN tree-AH settings.

    Attributes:
      num_leaves: k-means partitions of the candidates.
      num_leaves_to_search: partitions scanned per query.
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
            raise ValueError("Need 1 <= num_leaves_to_search <= num_leaves. Received: "
                             f"num_leaves={self.num_leaves}, num_leaves_to_search={self.num_leaves_to_search}")
        for field in ("dimensions_per_block", "training_iterations", "training_sample_size"):
            if getattr(self, field) < 1:
                raise ValueError(f"`{field}` must be >= 1. Received: {field}={getattr(self, field)}")
        if self.num_reordering_candidates is not None and self.num_reordering_candidates < 1:
            raise ValueError("`num_reordering_candidates` must be >= 1 or None. "
                             f"Received: num_reordering_candidates={self.num_reordering_candidates}")

    @classmethod
    def for_size(cls, num_candidates: int) -> "ScannSettings":
        """Defaults by index size.

        Large indexes (>= 100k candidates) use the settings tuned on 1M candidates,
        scaled with sqrt(n) leaves; smaller ones search a larger share of leaves,
        which costs little there.
        """
        if num_candidates >= 100_000:
            num_leaves = max(1, round(LARGE_INDEX.num_leaves * math.sqrt(num_candidates / 1_000_000)))
            share = LARGE_INDEX.num_leaves_to_search / LARGE_INDEX.num_leaves
            return dataclasses.replace(LARGE_INDEX, num_leaves=num_leaves,
                                       num_leaves_to_search=max(1, round(share * num_leaves)))
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
# embeddings reach the same recall scanning far fewer (pass `ScannSettings` to trade).
LARGE_INDEX = ScannSettings(num_leaves=2000, num_leaves_to_search=800, dimensions_per_block=2, num_reordering_candidates=1000)


class ScaNNIndex(tfrs.layers.factorized_top_k.ScaNN):
    """`tfrs.layers.factorized_top_k.ScaNN` that can return more than its reordering budget.

    The TFRS layer leaves ScaNN's pre-reordering count at `num_reordering_candidates`,
    which caps the results at that many; queries that ask for more (top K plus a user's
    known friends, which are removed afterwards) get `max(k, num_reordering_candidates)`
    candidates before the exact rescoring.
    """

    def __init__(self, settings: ScannSettings, *, k: int = 10, name: str | None = None):
        super().__init__(
            k=k, distance_measure="dot_product", num_leaves=settings.num_leaves,
            num_leaves_to_search=settings.num_leaves_to_search, training_iterations=settings.training_iterations,
            dimensions_per_block=settings.dimensions_per_block,
            num_reordering_candidates=settings.num_reordering_candidates, name=name)
        self.settings = settings

        def build_searcher(candidates):
            builder = scann_ops.builder(db=candidates, num_neighbors=k, distance_measure="dot_product")
            builder = builder.tree(num_leaves=settings.num_leaves, num_leaves_to_search=settings.num_leaves_to_search,
                                   training_sample_size=min(settings.training_sample_size, int(candidates.shape[0])),
                                   training_iterations=settings.training_iterations)
            builder = builder.score_ah(settings.dimensions_per_block,
                                       anisotropic_quantization_threshold=settings.anisotropic_quantization_threshold)
            if settings.num_reordering_candidates is not None:
                builder = builder.reorder(settings.num_reordering_candidates)
            return builder.build(shared_name=f"{self.name}/{uuid.uuid4()}")

        # Replaces the TFRS layer's builder, which has no way to set the last two settings.
        self._build_searcher = build_searcher

    def call(self, queries: tf.Tensor, k=None):
        if self._serialized_searcher is None:
            raise ValueError("The `index` method must be called first to create the retrieval index.")
        k = self._k if k is None else k
        searcher = scann_ops.searcher_from_module(self._serialized_searcher)
        pre_reorder = None
        if self._num_reordering_candidates is not None:
            pre_reorder = tf.maximum(tf.cast(k, tf.int32), self._num_reordering_candidates)
        result = searcher.search_batched_parallel(queries, final_num_neighbors=k, pre_reorder_num_neighbors=pre_reorder)
        if self._identifiers is None:
            return result.distances, result.indices
        return result.distances, tf.gather(self._identifiers, result.indices)


def build_index(kind: str, candidates: tf.Tensor, identifiers: tf.Tensor | None = None, *, k: int = 10,
                settings: ScannSettings | None = None) -> tfrs.layers.factorized_top_k.TopK:
    """A top-`k` index over `candidates` [n, d] (dot product), returning `identifiers` [n]."""
    if kind not in INDEX_KINDS:
        raise ValueError(f"`kind` must be one of {INDEX_KINDS}. Received: kind={kind!r}")
    candidates = tf.convert_to_tensor(candidates, tf.float32)
    if kind == "brute_force":
        return tfrs.layers.factorized_top_k.BruteForce(k=k).index(candidates, identifiers)
    settings = settings or ScannSettings.for_size(int(candidates.shape[0]))
    return ScaNNIndex(settings, k=k).index(candidates, identifiers)


def scann_op_library_path() -> str:
    """Path of the ScaNN TensorFlow op library: `tf.load_op_library` it before loading a
    SavedModel that holds a ScaNN index in a process that does not import scann."""
    import os

    import scann

    return os.path.join(os.path.dirname(scann.__file__), "scann_ops", "cc", "_scann_ops.so")
