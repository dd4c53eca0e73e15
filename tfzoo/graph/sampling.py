"""In-memory k-hop subgraph sampling around users, with `tensorflow_gnn.experimental.sampler`,
and the `tf.data` pipelines built on it.

Around each seed user, hop 1 samples up to `fanouts[0]` friends uniformly without
replacement, hop 2 up to `fanouts[1]` friends of each of those, and so on. The result
holds each user once and each sampled friendship once, pointing away from the seed
(source = the user that was expanded); the seed is the first node of its subgraph.
Sampling runs inside `tf.data` (`Dataset.map`), so it overlaps with training.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_gnn as tfgnn
from tensorflow_gnn.experimental import sampler as tfgnn_sampler
from tensorflow_gnn.experimental.sampler import subgraph_pipeline
from tensorflow_gnn.sampler import sampling_spec_builder

from tfzoo.data.friend_graph import FriendGraph
from tfzoo.graph import sampler_ops
from tfzoo.graph.ops import remove_edges_between
from tfzoo.graph.schema import FEATURES, FRIENDS, NODE_ID, USERS, friend_graph_tensor

DEFAULT_FANOUTS = (10, 5)

sampler_ops.install()  # flat-value index operations: the sampler traces in about a second


class SubgraphSampler:
    """Samples subgraphs around users of one friend graph.

    Args:
      graph: the graph to sample from (for training and evaluation: the training graph).
      fanouts: friends sampled per user at each hop, e.g. `(10, 5)` for 2 hops.
      seed: seeds the sampling ops (with the global seed); each hop gets its own stream.

    Calling the sampler with user ids `[batch]` returns a scalar GraphTensor with one
    component per user (schema: `tfzoo.graph.schema`), node features included.
    """

    def __init__(self, graph: FriendGraph, *, fanouts: Sequence[int] = DEFAULT_FANOUTS, seed: int | None = None):
        fanouts = tuple(int(f) for f in fanouts)
        if not fanouts or any(f < 1 for f in fanouts):
            raise ValueError(f"`fanouts` must be a non-empty list of positive sizes. Received: fanouts={fanouts}")
        self.graph = graph
        self.fanouts = fanouts
        self.seed = seed
        full = friend_graph_tensor(graph)
        self.features = full.node_sets[USERS][FEATURES]  # [users, (active)]
        schema = tfgnn.create_schema_pb_from_graph_spec(full.spec)
        builder = sampling_spec_builder.SamplingSpecBuilder(
            schema, default_strategy=sampling_spec_builder.SamplingStrategy.RANDOM_UNIFORM
        )
        step = builder.seed(USERS)
        for hop, fanout in enumerate(fanouts, start=1):
            step = step.sample(fanout, FRIENDS, op_name=f"hop{hop}")
        spec = builder.build()
        hops = {f"hop{hop}": hop for hop in range(1, len(fanouts) + 1)}

        edge_samplers = {}

        def edge_sampler(op):
            # One layer per hop, built here: it sorts the graph's edges once, eagerly.
            if op.op_name not in edge_samplers:
                edge_samplers[op.op_name] = tfgnn_sampler.InMemUniformEdgesSampler.from_graph_tensor(
                    full,
                    op.edge_set_name,
                    sample_size=op.sample_size,
                    name=op.op_name,
                    seed=None if seed is None else seed * 1000 + hops[op.op_name],
                )
            return edge_samplers[op.op_name]

        for op in spec.sampling_ops:
            edge_sampler(op)
        self._edge_samplers = tuple(edge_samplers.values())
        # TF-GNN's pipeline called in our traced function, not wrapped in the Keras model of
        # `create_sampling_model_from_spec`: that model traces the whole sampler once more,
        # symbolically, when it is built (about 4 s of Python per sampler).
        self._model = subgraph_pipeline.SamplingPipeline(
            graph_schema=schema, sampling_spec=spec, edge_sampler_factory=edge_sampler
        )
        # Traced once per sampler: every later call (eager, or from a `tf.data` map that
        # samples queries, candidates and negatives) reuses the one concrete function instead
        # of re-tracing the sampler's ragged ops, which costs tens of seconds per trace.
        self._sample = tf.function(
            self._sample_users,
            input_signature=[tf.TensorSpec([None], tf.int64)],
            autograph=False,
        )

    def __call__(self, users: tf.Tensor) -> tfgnn.GraphTensor:
        return self._sample(tf.reshape(tf.cast(users, tf.int64), [-1]))

    def _sample_users(self, users: tf.Tensor) -> tfgnn.GraphTensor:
        seeds = tf.RaggedTensor.from_tensor(users[:, tf.newaxis])  # [batch, (1)]
        batch = self._model(seeds).merge_batch_to_components()
        ids = batch.node_sets[USERS][NODE_ID]  # [nodes]
        return batch.replace_features(node_sets={USERS: {NODE_ID: ids, FEATURES: tf.gather(self.features, ids)}})

    def friendship_dataset(
        self,
        friendships: np.ndarray,
        *,
        batch_size: int,
        shuffle_seed: int | None = None,
        drop_remainder: bool = True,
        repeat: bool = False,
        first_epoch: int = 0,
        uniform_negatives: int = 0,
        shard: tuple[int | tf.Tensor, int] = (0, 1),
    ) -> tf.data.Dataset:
        """Batches of `{"query": graph, "candidate": graph, "candidate_probability": [batch]}`
        for pairs `friendships` ([n, 2]).

        `shard=(index, count)` deals the batches out to `count` input pipelines: this one
        samples every count-th batch of pairs from the `index`-th (a tensor index works: a
        parameter-server worker's), so that the pipelines together visit each epoch's
        batches once.

        Each pair's friendship is removed from both of its subgraphs (see
        `remove_edges_between`). With `shuffle_seed`, epoch e visits the pairs in the order
        of a stateless shuffle keyed by `(shuffle_seed, e)`, so a run resumed at
        `first_epoch` sees the same pairs as an uninterrupted one. With `repeat`, epochs
        `first_epoch, first_epoch + 1, ...` follow each other without end.

        With `uniform_negatives` = M, each batch also holds `"negatives"`: subgraphs around
        M users drawn uniformly (the extra negatives of mixed negative sampling), and
        `"negative_probability"` [M]. The probabilities are those of one draw of the mixed
        sampler for each candidate: (B * share of the pairs it ends + M / users) / (B + M),
        which log-Q correction subtracts (in log) from its logit.
        """
        if uniform_negatives < 0:
            raise ValueError(f"`uniform_negatives` must be >= 0. Received: uniform_negatives={uniform_negatives}")
        friendships = np.asarray(friendships, np.int64).reshape(-1, 2)
        pairs = tf.constant(friendships)  # [n, 2]
        num_users = self.graph.num_users
        share = np.bincount(friendships[:, 1], minlength=num_users) / max(1, len(friendships))  # [users]
        mixed = tf.constant(
            ((batch_size * share + uniform_negatives / num_users) / (batch_size + uniform_negatives)).astype(np.float32)
        )  # [users]

        def epoch_pairs(epoch):
            if shuffle_seed is None:
                return tf.data.Dataset.from_tensor_slices(pairs)
            seed = tf.stack([tf.constant(shuffle_seed, tf.int64), epoch])
            return tf.data.Dataset.from_tensor_slices(tf.random.experimental.stateless_shuffle(pairs, seed=seed))

        epochs = tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max if repeat else first_epoch + 1)
        dataset = epochs.flat_map(epoch_pairs).batch(batch_size, drop_remainder=drop_remainder)
        index, count = shard
        if count > 1:  # before sampling: each pipeline samples its own batches only
            dataset = dataset.shard(count, tf.cast(index, tf.int64))

        @tf.autograph.experimental.do_not_convert
        def sample(batch):  # [batch, 2]
            query, candidate = batch[:, 0], batch[:, 1]
            sampled = {
                "query": remove_edges_between(self(query), query, candidate),
                "candidate": remove_edges_between(self(candidate), query, candidate),
                "candidate_probability": tf.gather(mixed, candidate),  # [batch]
            }
            if uniform_negatives:
                negatives = tf.random.uniform(
                    [uniform_negatives],
                    maxval=num_users,
                    dtype=tf.int64,
                    seed=None if self.seed is None else self.seed + 7,
                )  # [M]
                sampled["negatives"] = self(negatives)
                sampled["negative_probability"] = tf.gather(mixed, negatives)  # [M]
            return sampled

        return dataset.map(sample, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    def user_dataset(self, users: np.ndarray, *, batch_size: int) -> tf.data.Dataset:
        """Batches of subgraphs around `users`, in order (sampled sequentially, so that a
        fixed `seed` gives the same subgraphs every time)."""
        dataset = tf.data.Dataset.from_tensor_slices(np.asarray(users, np.int64)).batch(batch_size)
        return dataset.map(tf.autograph.experimental.do_not_convert(self)).prefetch(tf.data.AUTOTUNE)

    def serialized_subgraphs(self, users: Sequence[int]) -> list[bytes]:
        """One serialized `tf.train.Example` per user: its sampled subgraph, as `embed` takes it."""
        return [tfgnn.write_example(self(tf.constant([user]))).SerializeToString() for user in users]


def directed_pairs(edges: np.ndarray) -> np.ndarray:
    """[2E, 2] both directions of every friendship: each user is a query for each friend."""
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    return np.concatenate([edges, edges[:, ::-1]])
