"""Friend-retrieval SavedModels: an index over every user's embedding, plus the encoder.

`<export_base>/<name>/<version>/` holds:

- `serving_default`: `user_ids` [batch] int64 -> `friend_ids` [batch, k] int64 and `scores`
  [batch, k] float32: the k users with the highest score (query vector . candidate
  vector, i.e. the model's retrieval logit) from the index, excluding the user and its
  known friends (rows are padded with id -1 and score -inf when fewer than k users are
  left); with a fusion, the score is the fused one (`Fusion`). Users are the graph's
  rows 0 .. n - 1, or where the graph came from files with their own ids
  (`FriendGraph.serving_ids`), those ids: int64, or string (padding "") where an id is
  not an integer;
- `embed`: `subgraphs` [batch] string, serialized `tf.train.Example`s of sampled
  subgraphs (schema in `assets/subgraph_schema.pbtxt`, root first; see
  `tfzoo.graph.SubgraphSampler.serialized_subgraphs`) -> `embedding` [batch, d]: the
  query vector of users who are not in the index yet.

Vectors are those of subgraphs sampled from the graph given at export (at serving time:
every known friendship), by `SSMTLRetrieval.user_vectors`, the function the training
report evaluates. With a candidate bias the index holds one more dimension (queries 1,
candidates their bias), and one more with a fused popularity (queries 1, candidates the
weighted log degree); `embed` returns queries with those 1s. With `index="scann"` the SavedModel needs the ScaNN ops
to load (`tf.load_op_library(tfzoo.export.ann.scann_op_library_path())`, or a TF Serving
build with them); `index="brute_force"` needs TensorFlow only.

`assets.extra/ann_index.json` records the index (`tfzoo.export.ann.index_metadata`): its
kind and, for ScaNN, its settings, the leaves searched per query and, when exported with
a `target_recall`, the recall@10 measured for that choice (on a sample of the users,
queried with their own query vectors, themselves excluded).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_gnn as tfgnn

from tfzoo.data.friend_graph import FriendGraph, neighbours
from tfzoo.evaluation.fusion import check_fusion, with_popularity
from tfzoo.evaluation.heuristics import common_friend_weights
from tfzoo.export.ann import ScannSettings, build_index, index_metadata
from tfzoo.export.saved_model import hold_untracked, next_version, save_version
from tfzoo.graph.sampling import DEFAULT_FANOUTS, SubgraphSampler
from tfzoo.graph.schema import subgraph_schema, subgraph_spec

SCHEMA_FILE = "subgraph_schema.pbtxt"
INDEX_METADATA_FILE = "ann_index.json"  # in assets.extra: files TF Serving leaves alone


@dataclasses.dataclass(frozen=True)
class Fusion:
    """What is added to the model's score at retrieval time (`tfzoo.evaluation.fusion`):
    `weight` x log(1 + `heuristic`(u, v)) + `popularity_weight` x log(1 + degree(v))."""

    heuristic: str
    weight: float
    popularity_weight: float = 0.0

    def __post_init__(self):
        check_fusion(self.heuristic)
        if self.weight < 0 or self.popularity_weight < 0 or not self.weight + self.popularity_weight > 0:
            raise ValueError(
                "`weight` and `popularity_weight` must be >= 0, one of them > 0 (both 0 serve the model alone: "
                f"pass no fusion). Received: weight={self.weight}, popularity_weight={self.popularity_weight}"
            )

    @classmethod
    def chosen(cls, fused: Mapping[str, Any] | None) -> Fusion | None:
        """The fusion a run chose on validation, from its metrics' `fused` entry
        (`tfzoo.evaluation.fusion.fused_reports`); None where there is none to serve
        (no entry, or both weights 0: the model alone was best)."""
        if not fused:
            return None
        weight, popularity_weight = float(fused["weight"]), float(fused.get("popularity_weight", 0.0))
        if not weight and not popularity_weight:
            return None
        return cls(heuristic=fused["heuristic"], weight=weight, popularity_weight=popularity_weight)


def _ragged_rows(values: tf.Tensor, row_splits: tf.Tensor) -> tf.RaggedTensor:
    """[users, (friends)] from the flat friend lists (a function, not a method: autograph
    converts helper methods of a `tf.Module` inconsistently across traces)."""
    return tf.RaggedTensor.from_row_splits(values, row_splits, validate=False)


class FriendRetrievalModule(tf.Module):
    """What the SavedModel holds: the encoder (for `embed`), the index, and the known friends.

    Only the model's encoder is saved: the heads of the self-supervised objectives serve
    no request. With a `fusion`, the candidate vectors and each user's weight as a common
    friend are saved too: results are rescored exactly (see `recommend`).
    """

    def __init__(
        self,
        model: tf.keras.Model,
        index: tf.keras.Model,
        graph: FriendGraph,
        queries: np.ndarray,
        *,
        k: int,
        candidates: np.ndarray | None = None,
        fusion: Fusion | None = None,
    ):
        super().__init__(name="friend_retrieval")
        hold_untracked(self, "encoder", model.encoder)
        # Dimensions the query side carries as 1s after the encoder's output: the candidate
        # bias's and the fused popularity's (`with_popularity`).
        self.query_ones = int(bool(getattr(model, "candidate_bias", False))) + int(
            fusion is not None and fusion.popularity_weight > 0
        )
        self.index = index
        self.user_embeddings = tf.Variable(queries, trainable=False, name="user_embeddings")  # [users, d] query vectors
        self.k = int(k)
        self.num_users = graph.num_users
        splits, ids = neighbours(graph.edges, graph.num_users)
        self.friend_splits = tf.Variable(splits, trainable=False, name="friend_splits")  # [users + 1]
        self.friend_ids = tf.Variable(ids, trainable=False, name="friend_ids")  # [2 * friendships]
        self.spec = subgraph_spec()
        self.fusion = fusion
        # Users as their files name them (`FriendGraph.serving_ids`): requests and results
        # speak those ids, looked up in a table; None where they are the row indices.
        serving_ids = graph.serving_ids()
        self.id_dtype = tf.int64 if serving_ids is None or serving_ids.dtype == np.int64 else tf.string
        if serving_ids is not None:
            self.node_ids = tf.Variable(serving_ids, trainable=False, name="node_ids", dtype=self.id_dtype)  # [users]
            self.rows_of_ids = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(serving_ids, self.id_dtype), tf.range(graph.num_users, dtype=tf.int64)
                ),
                default_value=-1,
            )
        if fusion is not None:
            if candidates is None:
                raise ValueError("A fused export rescores candidates exactly: pass `candidates` [users, d].")
            self.candidate_embeddings = tf.Variable(
                np.asarray(candidates, np.float32), trainable=False, name="candidate_embeddings"
            )  # [users, d]
            weights = common_friend_weights(fusion.heuristic, np.diff(splits)).astype(np.float32)
            self.common_friend_weights = tf.Variable(weights, trainable=False, name="common_friend_weights")  # [users]

    def _exclusions(self, user_ids: tf.Tensor) -> tf.Tensor:
        """[batch, width] each user's friends and itself, sorted, padded with the largest int64."""
        friends = _ragged_rows(self.friend_ids, self.friend_splits)  # [users, (friends)]
        own = tf.concat([tf.gather(friends, user_ids), tf.RaggedTensor.from_tensor(user_ids[:, tf.newaxis])], axis=1)
        return tf.sort(own.to_tensor(default_value=tf.int64.max), axis=1)

    def recommend(self, user_ids: tf.Tensor) -> dict[str, tf.Tensor]:
        """The top k of `user_ids` (the users' own ids where the graph has them)."""
        if not hasattr(self, "rows_of_ids"):
            return self._recommend_rows(user_ids)
        rows = self.rows_of_ids.lookup(user_ids)  # [batch], -1: unknown
        known = tf.debugging.Assert(
            tf.reduce_all(rows >= 0), ["user_ids must name indexed users; received:", user_ids], summarize=20
        )
        with tf.control_dependencies([known]):  # before any row is gathered
            found = self._recommend_rows(tf.identity(rows))
        ids = found["friend_ids"]
        padding = tf.constant(-1 if self.id_dtype == tf.int64 else "", self.id_dtype)
        found["friend_ids"] = tf.where(ids >= 0, tf.gather(self.node_ids, tf.maximum(ids, 0)), padding)
        return found

    def _recommend_rows(self, user_ids: tf.Tensor) -> dict[str, tf.Tensor]:
        known = tf.debugging.Assert(
            tf.reduce_all((user_ids >= 0) & (user_ids < self.num_users)),
            [f"user_ids must lie in [0, {self.num_users}) (the indexed users); received:", user_ids],
        )
        with tf.control_dependencies([known]):  # before any row is gathered
            user_ids = tf.identity(user_ids)
        queries = tf.gather(self.user_embeddings, user_ids)  # [batch, d]
        excluded = self._exclusions(user_ids)  # [batch, width]
        if self.fusion is not None and self.fusion.weight:
            scores, ids = self._fused_candidates(user_ids, queries, excluded)
        else:
            fetch = tf.minimum(self.k + tf.shape(excluded)[1], self.num_users)
            scores, ids = self.index(queries, k=fetch)  # [batch, fetch]
            # A candidate is excluded when it is found in its row of the sorted exclusion list.
            position = tf.minimum(tf.searchsorted(excluded, ids), tf.shape(excluded)[1] - 1)  # [batch, fetch]
            hit = tf.gather(excluded, position, batch_dims=1) == ids  # [batch, fetch]
            scores = tf.where(hit, tf.constant(-np.inf, scores.dtype), scores)
        k = tf.minimum(self.k, tf.shape(scores)[1])
        top_scores, order = tf.math.top_k(scores, k=k)  # [batch, k]
        top_ids = tf.where(
            tf.math.is_finite(top_scores), tf.gather(ids, order, batch_dims=1), tf.constant(-1, tf.int64)
        )
        padding = [[0, 0], [0, self.k - k]]
        return {
            "friend_ids": tf.pad(top_ids, padding, constant_values=-1),
            "scores": tf.pad(top_scores, padding, constant_values=-np.inf),
        }

    def _fused_candidates(
        self, user_ids: tf.Tensor, queries: tf.Tensor, excluded: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """(scores, ids) [batch, width]: every friend of a friend and the index's best
        candidates, scored query . candidate + weight x log(1 + heuristic), known friends
        and the user itself at -inf (rows padded with -inf).

        Exact but for the index's own approximation: a candidate with no common friend
        that belongs in the top k ranks, by the model alone, below fewer than k + (known
        friends) + (friends of friends) others, so the index is asked for that many.
        """
        batch = tf.shape(user_ids, out_type=tf.int64)[0]
        num_users = tf.constant(self.num_users, tf.int64)
        friends = _ragged_rows(self.friend_ids, self.friend_splits)  # [users, (friends)]
        own = tf.gather(friends, user_ids)  # [batch, (friends)]
        two_hop = tf.gather(friends, own.flat_values)  # [friends in batch, (their friends)]
        hop_rows = tf.gather(own.value_rowids(), two_hop.value_rowids())  # [paths] the query row of each path
        hop_weights = tf.gather(tf.gather(self.common_friend_weights, own.flat_values), two_hop.value_rowids())
        paths_per_row = tf.math.unsorted_segment_sum(tf.ones_like(hop_rows), hop_rows, batch)  # [batch]
        fetch = tf.cast(
            tf.minimum(self.k + tf.cast(tf.shape(excluded)[1], tf.int64) + tf.reduce_max(paths_per_row), num_users),
            tf.int32,
        )
        _, index_ids = self.index(queries, k=fetch)  # [batch, fetch]
        # Candidates as keys row x num_users + id: one heuristic sum per (row, candidate).
        index_keys = tf.reshape(tf.range(batch)[:, tf.newaxis] * num_users + index_ids, [-1])
        keys = tf.concat([hop_rows * num_users + two_hop.flat_values, index_keys], axis=0)
        values = tf.concat([hop_weights, tf.zeros(tf.shape(index_keys), hop_weights.dtype)], axis=0)
        unique_keys, position = tf.unique(keys)
        heuristic = tf.math.unsorted_segment_sum(values, position, tf.size(unique_keys))
        order = tf.argsort(unique_keys)  # rows in order, for the ragged rows below
        unique_keys, heuristic = tf.gather(unique_keys, order), tf.gather(heuristic, order)
        rows, ids = unique_keys // num_users, unique_keys % num_users
        excluded_keys = tf.reshape(tf.range(batch)[:, tf.newaxis] * num_users + excluded, [-1])
        excluded_keys = tf.sort(tf.boolean_mask(excluded_keys, tf.reshape(excluded < num_users, [-1])))
        at = tf.minimum(
            tf.searchsorted(excluded_keys, unique_keys, out_type=tf.int64), tf.size(excluded_keys, tf.int64) - 1
        )
        kept = tf.gather(excluded_keys, at) != unique_keys
        rows, ids, heuristic = tf.boolean_mask(rows, kept), tf.boolean_mask(ids, kept), tf.boolean_mask(heuristic, kept)
        logits = tf.reduce_sum(tf.gather(queries, rows) * tf.gather(self.candidate_embeddings, ids), axis=1)
        scores = logits + self.fusion.weight * tf.math.log1p(heuristic)
        scores = tf.RaggedTensor.from_value_rowids(scores, rows, nrows=batch).to_tensor(default_value=-np.inf)
        ids = tf.RaggedTensor.from_value_rowids(ids, rows, nrows=batch).to_tensor(default_value=-1)
        return scores, ids

    def embed(self, subgraphs: tf.Tensor) -> dict[str, tf.Tensor]:
        graph = tfgnn.parse_example(self.spec, subgraphs).merge_batch_to_components()
        # float32 whatever policy the encoder computes under: the index holds float32.
        embeddings = tf.cast(self.encoder(graph, training=False, roots_only=True), tf.float32)  # [batch, embedding_dim]
        if self.query_ones:  # the query side of the bias and popularity dimensions
            ones = tf.ones([tf.shape(embeddings)[0], self.query_ones], embeddings.dtype)
            embeddings = tf.concat([embeddings, ones], axis=1)
        return {"embedding": embeddings}


def export_friend_retrieval(
    model: tf.keras.Model,
    graph: FriendGraph,
    export_base: str | Path,
    name: str,
    *,
    version: int | None = None,
    index: str = "scann",
    k: int = 100,
    fanouts: Sequence[int] = DEFAULT_FANOUTS,
    scann: ScannSettings | None = None,
    sampling_seed: int = 0,
    sampler: SubgraphSampler | None = None,
    vectors: tuple[np.ndarray, np.ndarray] | None = None,
    target_recall: float | None = None,
    fusion: Fusion | None = None,
    recall_latency: bool = False,
) -> Path:
    """Exports `model` (a `tfzoo.models.SSMTLRetrieval`) with an index over `graph`'s users.

    Args:
      model: the trained model.
      graph: users, features and the known friendships (sampled from, and excluded from
        the results).
      export_base, name, version: `<export_base>/<name>/<version>/`; default version: the
        next free one.
      index: "scann" or "brute_force".
      k: friends returned per user.
      fanouts: subgraph sampling per hop, as in training.
      scann: ScaNN settings (default `ScannSettings.for_size(num_users)`).
      sampling_seed: seeds the subgraphs the indexed vectors come from.
      sampler: the sampler of the indexed vectors and the warm-up subgraphs, when the
        caller has one over `graph` (then `fanouts` and `sampling_seed` are unused).
      vectors: precomputed (queries, candidates), each [num_users, d] (skips sampling).
      target_recall: ScaNN: search the fewest leaves whose recall@10 reaches it, measured
        on a sample of the users (see `tfzoo.export.ann.ScaNNIndex`); the choice and the
        recall are written to `assets.extra/ann_index.json`. Ignored by brute force
        (exact).
      fusion: serve the model's score plus `fusion.weight` x log(1 + `fusion.heuristic`)
        + `fusion.popularity_weight` x log(1 + degree) over `graph` (the run's choice:
        `metrics.json`'s `fused`); written to `assets.extra/ann_index.json`.
      recall_latency: ScaNN: measure the index's recall@10 and search latency at every
        number of leaves, beside exact search (`tfzoo.export.ann.RecallLatency`), into
        `assets.extra/ann_index.json` (`tfzoo report --export` plots it).
    """
    if k < 1:
        raise ValueError(f"`k` must be >= 1. Received: k={k}")
    model_dir = Path(export_base) / name
    version = next_version(model_dir) if version is None else int(version)
    if sampler is None:
        sampler = SubgraphSampler(graph, fanouts=fanouts, seed=sampling_seed)
    if vectors is None:
        vectors = model.user_vectors(sampler)
    queries, candidates = (np.asarray(v, np.float32) for v in vectors)
    if fusion is not None and fusion.popularity_weight:
        # Popularity depends on the candidate alone: the index serves it exactly.
        degree = np.diff(neighbours(graph.edges, graph.num_users)[0])
        queries, candidates = with_popularity(queries, candidates, degree, fusion.popularity_weight)
    ids = tf.range(graph.num_users, dtype=tf.int64)
    top_k = build_index(
        index,
        candidates,
        ids,
        k=k,
        settings=scann,
        target_recall=target_recall,
        row_queries=queries,
        recall_latency=recall_latency,
    )
    module = FriendRetrievalModule(model, top_k, graph, queries, k=k, candidates=candidates, fusion=fusion)
    recommend = tf.function(module.recommend, input_signature=[tf.TensorSpec([None], module.id_dtype, name="user_ids")])
    embed = tf.function(module.embed, input_signature=[tf.TensorSpec([None], tf.string, name="subgraphs")])
    signatures = {"serving_default": recommend.get_concrete_function(), "embed": embed.get_concrete_function()}
    with tempfile.TemporaryDirectory() as scratch:
        schema_path = Path(scratch) / SCHEMA_FILE
        tfgnn.write_schema(subgraph_schema(), str(schema_path))
        module.schema = tf.saved_model.Asset(str(schema_path))
        options = tf.saved_model.SaveOptions(namespace_whitelist=["Scann"] if index == "scann" else None)
        metadata = {**index_metadata(top_k), "fusion": None if fusion is None else dataclasses.asdict(fusion)}
        users = np.arange(min(2, graph.num_users))
        serving_ids = graph.serving_ids()
        warmup = {
            "serving_default": {"user_ids": users.astype(np.int64) if serving_ids is None else serving_ids[users]},
            "embed": {"subgraphs": np.array(sampler.serialized_subgraphs(users), dtype=object)},
        }
        return save_version(
            module,
            signatures,
            export_base,
            name,
            version=version,
            options=options,
            warmup_inputs=warmup,
            extra_files={INDEX_METADATA_FILE: json.dumps(metadata, indent=2) + "\n"},
        )
