"""SSMTL friend retrieval (Kolodner et al., "Robust Training Objectives Improve
Embedding-Based Retrieval in Industrial Recommendation Systems").

One GAT encoder (`tfzoo.graph.GraphEncoder`) embeds a user as the root state of a k-hop
subgraph sampled around it. Three objectives share it (eq. 6):

    L = alpha * L_retrieval + beta * L_CCA + gamma * L_MAE

- retrieval (eq. 5): query and candidate towers are the same encoder; dot-product scores
  against the batch's candidates (and uniformly drawn negatives, if the batch has them),
  softmax cross-entropy with the friend as the positive (`tfrs.tasks.Retrieval`, summed
  over the batch; in-batch copies of the positive are not counted as negatives);
  optionally each logit corrected by the log of its candidate's sampling probability
  (log-Q) and given the candidate's learned bias (a popularity term);
- CCA-SSG (eq. 3): two views of the query subgraphs, each with edge drop and feature
  drop, through the encoder and a Linear-ReLU-Linear head, over the nodes that receive
  messages (roots and the friends they expanded; with messages both ways, every node):
  what the roots' embeddings are built from, not the last hop's leaves, whose states
  are their own inputs;
- GraphMAE (eq. 4): a view of the query subgraphs with edge drop whose roots' inputs are
  replaced by a [MASK] token, through the encoder and a linear head; the roots are
  re-masked (set to zero) and one GATv2 layer decodes their features from their
  neighbours; scaled cosine error against the roots' multi-hot features.

A weight of 0 switches an objective off (its layers are not even built), which gives the
ablations: retrieval only, +CCA, +MAE, +both. `fit` logs each enabled part
(`retrieval_loss`, `cca_loss`, `mae_loss`) next to the weighted total `loss`.
`encoder_gradient_norms` and `calibrated_weights` set beta and gamma as shares of
retrieval's gradient on the encoder (what `tfzoo train ssmtl` does by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_gnn as tfgnn
import tensorflow_recommenders as tfrs

from tfzoo.graph.augmentations import EdgeDrop, FeatureDrop, QueryNodeMasking
from tfzoo.graph.decoder import RootAttentionDecoder
from tfzoo.graph.encoder import GraphEncoder, hash_ids
from tfzoo.graph.ops import first_components, message_receivers, multi_hot, root_ids, root_indices, side_by_side
from tfzoo.graph.schema import FEATURES, USERS
from tfzoo.layers.kernel_options import check_kernel_options, kernel_options, kernel_options_config
from tfzoo.models.base import LossTerm, ZooModel, dtype_policy, with_other_replicas
from tfzoo.objectives.cca_ssg import cca_ssg_loss
from tfzoo.objectives.graph_mae import scaled_cosine_error
from tfzoo.progress import counted


@tf.keras.utils.register_keras_serializable(package="tfzoo")
class SSMTLRetrieval(ZooModel):
    """Friend retrieval with a shared GAT encoder and optional CCA-SSG / GraphMAE objectives.

    Training batches are `{"query": graph, "candidate": graph}` of sampled subgraphs,
    one component per friendship (`tfzoo.graph.SubgraphSampler.friendship_dataset`).
    Calling the model on a batch of subgraphs returns their roots' embeddings.

    Args:
      feature_dim: width of the multi-hot node features.
      hidden_dim, embedding_dim, num_layers, num_heads, dropout: the encoder
        (`GraphEncoder`; `embedding_dim` is its output width).
      retrieval_weight, cca_weight, mae_weight: alpha, beta, gamma of eq. 6; 0 turns an
        objective off.
      cca_decorrelation: lambda of eq. 3.
      cca_edge_drop, cca_feature_drop: augmentation rates of both CCA views.
      mae_edge_drop: edge drop rate of the GraphMAE view.
      mae_gamma: exponent of the scaled cosine error (eq. 4), >= 1.
      temperature: divides the retrieval scores (None: plain dot products, as eq. 5).
      id_buckets, message_passing, readout: the encoder's user-id embedding, message
        direction and readout (`GraphEncoder`).
      candidate_bias: adds a learned per-candidate logit (a popularity term, one per id
        bucket; needs `id_buckets`). The index serves it as one more dimension: queries
        carry a constant 1 there, candidates their bias.
      ssl_batch_size: the self-supervised objectives see the first `ssl_batch_size`
        query subgraphs of each (shuffled) batch, a random subset (None: all). Their
        losses are means, so a subset estimates the same objective at a fraction of the
        cost of their three encoder passes.
      mae_decoder_dim: the GraphMAE decoder attends in this many channels, then widens
        linearly to `feature_dim` (None: attends in `feature_dim` channels).
      logq_correction: subtracts the log of each candidate's sampling probability from
        its logit (batches carry `candidate_probability`, and `negative_probability` for
        uniformly sampled `negatives`), so that in-batch negatives, which are drawn in
        proportion to how many friends a user has, estimate a softmax over all users.
      kernel_initializer, kernel_regularizer: a Keras initializer / regularizer (a name,
        a config dict or an object) of every dense kernel: the encoder's (the input map W
        of the multi-hot features, every GATv2 round's query, value, attention and
        next-state kernels, the concat readout), the CCA-SSG head's, the GraphMAE head's
        and its decoder's (GATv2 kernels and widening map); e.g. `tfzoo train ssmtl
        --option kernel_regularizer='{"class_name": "L2", "config": {"l2": 1e-5}}'`. None
        keeps each layer's own default (a model without them is built as before). The
        user-id embedding, the candidate biases, the [MASK] token and the biases keep their
        own initialisation and no regularizer (`tfzoo.layers.kernel_options`).
    """

    def __init__(
        self,
        *,
        feature_dim: int,
        hidden_dim: int = 64,
        embedding_dim: int = 64,
        num_layers: int = 2,
        num_heads: int = 4,
        dropout: float = 0.0,
        retrieval_weight: float = 1.0,
        cca_weight: float = 0.0,
        mae_weight: float = 0.0,
        cca_decorrelation: float = 1e-3,
        cca_edge_drop: float = 0.2,
        cca_feature_drop: float = 0.2,
        mae_edge_drop: float = 0.2,
        mae_gamma: float = 2.0,
        temperature: float | None = None,
        id_buckets: int = 0,
        message_passing: str = "to_root",
        readout: str = "last",
        candidate_bias: bool = False,
        logq_correction: bool = False,
        ssl_batch_size: int | None = None,
        mae_decoder_dim: int | None = None,
        kernel_initializer=None,
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_kernel_options(kernel_initializer, kernel_regularizer)
        self.kernel_initializer = kernel_initializer
        self.kernel_regularizer = kernel_regularizer
        weights = {"retrieval_weight": retrieval_weight, "cca_weight": cca_weight, "mae_weight": mae_weight}
        if any(w < 0 for w in weights.values()) or not any(w > 0 for w in weights.values()):
            raise ValueError(f"Loss weights must be >= 0 with at least one > 0. Received: {weights}")
        if mae_gamma < 1:
            raise ValueError(f"`mae_gamma` must be >= 1. Received: mae_gamma={mae_gamma}")
        if temperature is not None and temperature <= 0:
            raise ValueError(f"`temperature` must be > 0 or None. Received: temperature={temperature}")
        self.feature_dim = int(feature_dim)
        self.hidden_dim = int(hidden_dim)
        self.embedding_dim = int(embedding_dim)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.dropout = float(dropout)
        self.retrieval_weight = float(retrieval_weight)
        self.cca_weight = float(cca_weight)
        self.mae_weight = float(mae_weight)
        self.cca_decorrelation = float(cca_decorrelation)
        self.cca_edge_drop = float(cca_edge_drop)
        self.cca_feature_drop = float(cca_feature_drop)
        self.mae_edge_drop = float(mae_edge_drop)
        self.mae_gamma = float(mae_gamma)
        if candidate_bias and not id_buckets:
            raise ValueError(
                "`candidate_bias` learns one logit per id bucket and needs `id_buckets` > 0. "
                f"Received: candidate_bias={candidate_bias}, id_buckets={id_buckets}"
            )
        if ssl_batch_size is not None and ssl_batch_size < 2:
            raise ValueError(f"`ssl_batch_size` must be >= 2 or None. Received: ssl_batch_size={ssl_batch_size}")
        self.temperature = temperature
        self.ssl_batch_size = None if ssl_batch_size is None else int(ssl_batch_size)
        self.mae_decoder_dim = None if mae_decoder_dim is None else int(mae_decoder_dim)
        self.id_buckets = int(id_buckets)
        self.message_passing = message_passing
        self.readout = readout
        self.candidate_bias = bool(candidate_bias)
        self.logq_correction = bool(logq_correction)

        self.encoder = GraphEncoder(
            feature_dim=feature_dim,
            hidden_dim=hidden_dim,
            output_dim=embedding_dim,
            num_layers=num_layers,
            num_heads=num_heads,
            dropout=dropout,
            id_buckets=id_buckets,
            message_passing=message_passing,
            readout=readout,
            name="encoder",
            **kernel_options(self),
        )
        if self.candidate_bias:
            self.bias_embedding = tf.keras.layers.Embedding(
                id_buckets, 1, embeddings_initializer="zeros", name="candidate_bias"
            )
        with dtype_policy("float32"):  # the loss in float32 under a mixed policy
            self.retrieval_task = tfrs.tasks.Retrieval(
                temperature=temperature, remove_accidental_hits=True, name="retrieval"
            )
        self.track_loss_terms([name for name in ("retrieval", "cca", "mae") if getattr(self, f"{name}_weight") > 0])
        if self.cca_weight > 0:
            self.cca_views = tf.keras.Sequential(
                [
                    EdgeDrop(cca_edge_drop, name="edge_drop"),
                    FeatureDrop(cca_feature_drop, feature_dim=feature_dim, name="feature_drop"),
                ],
                name="cca_view",
            )
            self.cca_head = tf.keras.Sequential(
                [
                    tf.keras.layers.Dense(embedding_dim, activation="relu", name="linear_relu", **kernel_options(self)),
                    tf.keras.layers.Dense(embedding_dim, name="linear", **kernel_options(self)),
                ],
                name="cca_head",
            )
        if self.mae_weight > 0:
            self.mae_edge_drop_layer = EdgeDrop(mae_edge_drop, name="mae_edge_drop")
            self.query_masking = QueryNodeMasking(state_dim=hidden_dim, name="query_masking")
            self.mae_head = tf.keras.layers.Dense(
                embedding_dim, use_bias=False, name="mae_head", **kernel_options(self)
            )
            self.decoder = RootAttentionDecoder(
                units=feature_dim, hidden_dim=mae_decoder_dim, name="mae_decoder", **kernel_options(self)
            )

    def call(self, graph: tfgnn.GraphTensor, training: bool = False) -> tf.Tensor:
        """[num_components, embedding_dim] the embeddings of the subgraphs' roots, float32
        under every dtype policy (retrieval logits and the index are not 16-bit)."""
        return tf.cast(self.encoder(graph, training=training, roots_only=True), tf.float32)

    @property
    def index_dim(self) -> int:
        """Width of the vectors the retrieval index holds (`embedding_dim`, +1 with `candidate_bias`)."""
        return self.embedding_dim + int(self.candidate_bias)

    def query_embeddings(self, graph: tfgnn.GraphTensor, training: bool = False) -> tf.Tensor:
        """[num_components, index_dim] what a user searches the index with."""
        return self._query_vectors(self(graph, training=training))

    def candidate_embeddings(self, graph: tfgnn.GraphTensor, training: bool = False) -> tf.Tensor:
        """[num_components, index_dim] what the index holds of a user: `query . candidate`
        is the retrieval logit (the embeddings' dot product, plus the candidate's bias)."""
        return self._candidate_vectors(self(graph, training=training), root_ids(graph))

    def _query_vectors(self, embeddings: tf.Tensor) -> tf.Tensor:
        if not self.candidate_bias:
            return embeddings
        return tf.concat([embeddings, tf.ones_like(embeddings[:, :1])], axis=1)  # [batch, index_dim]

    def _candidate_vectors(self, embeddings: tf.Tensor, ids: tf.Tensor) -> tf.Tensor:
        if not self.candidate_bias:
            return embeddings
        bias = tf.cast(self.bias_embedding(hash_ids(ids, self.id_buckets)), tf.float32)  # [batch, 1]
        return tf.concat([embeddings, bias], axis=1)  # [batch, index_dim]

    def user_vectors(self, sampler, *, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
        """([users, index_dim], [users, index_dim]) the query and candidate vectors of every
        user of `sampler.graph` (a `tfzoo.graph.SubgraphSampler`), each from one subgraph.

        Batches are sampled and embedded eagerly: a traced `tf.data` sampling graph costs
        more to build and optimise than the whole pass over a graph of this size.
        """
        users = np.arange(sampler.graph.num_users)
        starts = range(0, len(users), batch_size)
        batches = (sampler(tf.constant(users[start : start + batch_size])) for start in starts)
        return self.vectors(counted(batches, len(starts), f"embedding {len(users):,} users", unit="batch"))

    def vectors(self, subgraphs) -> tuple[np.ndarray, np.ndarray]:
        """(queries, candidates), each [components, index_dim], of the roots of an iterable
        of subgraph batches, in order (one encoder pass per batch serves both)."""
        queries, candidates = [], []
        for graph in subgraphs:
            embeddings = self(graph, training=False)  # [batch, embedding_dim]
            queries.append(self._query_vectors(embeddings).numpy())
            candidates.append(self._candidate_vectors(embeddings, root_ids(graph)).numpy())
        return np.concatenate(queries).astype(np.float32), np.concatenate(candidates).astype(np.float32)

    def retrieval_loss(self, inputs: Mapping[str, Any], training: bool) -> tf.Tensor:
        """Eq. 5 over the batch's candidates (and its uniformly sampled `negatives`, if any)."""
        queries = self.query_embeddings(inputs["query"], training=training)  # [batch, index_dim]
        candidates = self.candidate_embeddings(inputs["candidate"], training=training)  # [batch, index_dim]
        ids = root_ids(inputs["candidate"])  # [batch]
        probability = inputs.get("candidate_probability")
        if "negatives" in inputs:
            negatives = inputs["negatives"]
            candidates = tf.concat([candidates, self.candidate_embeddings(negatives, training=training)], axis=0)
            ids = tf.concat([ids, root_ids(negatives)], axis=0)  # [batch + negatives]
            if probability is not None:
                probability = tf.concat([probability, inputs["negative_probability"]], axis=0)
        if self.logq_correction and probability is None:
            raise ValueError(
                "`logq_correction` needs batches with `candidate_probability` "
                "(`SubgraphSampler.friendship_dataset(..., candidate_probability=...)`)."
            )
        # Under tf.distribute every query meets the candidates of the whole global batch (its
        # own replica's first, so that row i's positive stays at i): the negatives, and hence
        # the loss, are those of one device, whatever the number of replicas.
        candidates, ids, *rest = with_other_replicas(candidates, ids, *([] if probability is None else [probability]))
        probability = rest[0] if rest else None
        # The task makes layers as it runs (TFRS' accidental-hit removal): in float32 too.
        with dtype_policy("float32"):
            return self.retrieval_task(
                queries,
                candidates,
                candidate_ids=ids,
                compute_metrics=False,
                compute_batch_metrics=False,
                candidate_sampling_probability=probability if self.logq_correction else None,
            )

    def cca_loss(self, graph: tfgnn.GraphTensor, training: bool) -> tf.Tensor:
        """Eq. 3 on two augmented views of `graph` (both through one encoder pass)."""
        return self.self_supervised_losses(graph, training, cca=True, mae=False)["cca"]

    def mae_loss(self, graph: tfgnn.GraphTensor, training: bool) -> tf.Tensor:
        """Eq. 4 on a root-masked view of `graph`."""
        return self.self_supervised_losses(graph, training, cca=False, mae=True)["mae"]

    def self_supervised_losses(
        self, graph: tfgnn.GraphTensor, training: bool, *, cca: bool, mae: bool
    ) -> dict[str, tf.Tensor]:
        """{"cca": eq. 3, "mae": eq. 4} (those asked for) on views of the subgraphs `graph`.

        The views (two CCA-SSG views with edge and feature drop, one GraphMAE view with
        edge drop whose roots' input states are the [MASK] token) differ in their edges,
        features and masked inputs, not in their nodes: their input states are computed
        view by view and message passing runs once over the views side by side, as one
        graph of their components, which costs one encoder pass instead of three.
        """
        if not self.encoder.built:  # the steps below use the encoder's parts before any plain call
            self.encoder(graph, training=False)
        views, inputs = [], []
        if cca:
            for _ in range(2):  # two independent draws
                view = self.cca_views(graph, training=training)
                views.append(view)
                inputs.append(self.encoder.input_states(view))  # [nodes, hidden_dim]
        if mae:
            view = self.mae_edge_drop_layer(graph, training=training)
            unmasked = self.encoder.input_states(view)  # [nodes, hidden_dim]
            views.append(view)
            inputs.append(self.query_masking(view.replace_features(node_sets={USERS: {tfgnn.HIDDEN_STATE: unmasked}})))
        states = self.encoder.propagate(side_by_side(views), tf.concat(inputs, axis=0), training=training)
        per_view = tf.split(states, len(views), axis=0)  # the views have the same nodes: [nodes, embedding_dim] each
        losses = {}
        if cca:
            receivers = message_receivers(graph, both_ways=self.message_passing == "both")  # [receivers]
            z_a = self.cca_head(tf.gather(per_view[0], receivers))  # [receivers, embedding_dim]
            z_b = self.cca_head(tf.gather(per_view[1], receivers))  # [receivers, embedding_dim]
            # Losses in float32 under every dtype policy.
            losses["cca"] = cca_ssg_loss(
                tf.cast(z_a, tf.float32), tf.cast(z_b, tf.float32), decorrelation_weight=self.cca_decorrelation
            )
        if mae:
            view = views[-1]
            states = self.mae_head(per_view[-1])  # [nodes, embedding_dim]
            roots = root_indices(view)[:, tf.newaxis]  # [components, 1]
            # Re-mask: the decoder must rebuild each root from its neighbours alone.
            states = tf.tensor_scatter_nd_update(
                states, roots, tf.zeros([tf.shape(roots)[0], self.embedding_dim], states.dtype)
            )
            reconstructed = self.decoder(
                view.replace_features(node_sets={USERS: {tfgnn.HIDDEN_STATE: states}})
            )  # [components, feature_dim]
            targets = multi_hot(tf.gather(graph.node_sets[USERS][FEATURES], roots[:, 0]), self.feature_dim)
            losses["mae"] = scaled_cosine_error(targets, tf.cast(reconstructed, tf.float32), gamma=self.mae_gamma)
        return losses

    def build_objectives(self, inputs: Mapping[str, tfgnn.GraphTensor]) -> None:
        """Runs every switched-on objective once on `inputs`, so that all their layers exist
        (a checkpoint then restores at once), without touching the loss metrics: safe in a
        distribution strategy's cross-replica context."""
        self.loss_terms(inputs, training=False)

    def loss_terms(self, inputs: Mapping[str, Any], training: bool = False) -> dict[str, LossTerm]:
        """The switched-on objectives of eq. 6, weighted. Retrieval's loss is a sum over
        the replica's pairs (its share of the global batch's); the self-supervised losses
        are means over the replica's subgraphs."""
        query = inputs["query"]
        terms = {}
        if self.retrieval_weight > 0:
            terms["retrieval"] = LossTerm(self.retrieval_loss(inputs, training), weight=self.retrieval_weight)
        if self.cca_weight > 0 or self.mae_weight > 0:
            if self.ssl_batch_size is not None:
                query = first_components(query, self.ssl_batch_size)
            losses = self.self_supervised_losses(query, training, cca=self.cca_weight > 0, mae=self.mae_weight > 0)
            for name, value in losses.items():
                terms[name] = LossTerm(value, weight=getattr(self, f"{name}_weight"), replica_mean=True)
        return terms

    def get_config(self) -> dict[str, Any]:
        return {
            "feature_dim": self.feature_dim,
            "hidden_dim": self.hidden_dim,
            "embedding_dim": self.embedding_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "dropout": self.dropout,
            "retrieval_weight": self.retrieval_weight,
            "cca_weight": self.cca_weight,
            "mae_weight": self.mae_weight,
            "cca_decorrelation": self.cca_decorrelation,
            "cca_edge_drop": self.cca_edge_drop,
            "cca_feature_drop": self.cca_feature_drop,
            "mae_edge_drop": self.mae_edge_drop,
            "mae_gamma": self.mae_gamma,
            "temperature": self.temperature,
            "id_buckets": self.id_buckets,
            "message_passing": self.message_passing,
            "readout": self.readout,
            "candidate_bias": self.candidate_bias,
            "logq_correction": self.logq_correction,
            "ssl_batch_size": self.ssl_batch_size,
            "mae_decoder_dim": self.mae_decoder_dim,
            **kernel_options_config(self),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


def encoder_gradient_norms(config: Mapping[str, Any], batches) -> dict[str, float]:
    """{objective: mean over `batches` of the norm of its loss's gradient on the shared
    encoder}, for a freshly initialised `SSMTLRetrieval(**config)` with every objective on.

    Eq. 6's weights multiply losses of very different scales (a softmax summed over the
    batch, a Frobenius norm, a mean cosine error); these norms put them on one scale:
    `calibrated_weights` turns them into weights that give each self-supervised
    objective a chosen share of retrieval's pull on the encoder.
    """
    probe = SSMTLRetrieval(**{**config, "retrieval_weight": 1.0, "cca_weight": 1.0, "mae_weight": 1.0})

    @tf.function(reduce_retracing=True)
    def norms_of(batch):
        with tf.GradientTape(persistent=True) as tape:
            terms = probe.loss_terms(batch, training=True)
        return {
            name: tf.linalg.global_norm(
                [g for g in tape.gradient(term.value, probe.encoder.trainable_variables) if g is not None]
            )
            for name, term in terms.items()
        }

    totals: dict[str, float] = {}
    count = 0
    for batch in batches:
        if not probe.built:
            probe.build_objectives(batch)  # creates the variables outside the traced function
        for name, norm in norms_of(batch).items():
            totals[name] = totals.get(name, 0.0) + float(norm)
        count += 1
    if not count:
        raise ValueError("`batches` is empty: the gradient norms need at least one batch.")
    return {name: total / count for name, total in totals.items()}


def calibrated_weights(norms: Mapping[str, float], *, cca: float = 1.0, mae: float = 1.0) -> dict[str, float]:
    """`cca_weight` and `mae_weight` that give CCA-SSG `cca` and GraphMAE `mae` times the
    encoder-gradient norm of retrieval (`encoder_gradient_norms`); 0 switches one off."""
    for name, value in (("cca", cca), ("mae", mae)):
        if value < 0:
            raise ValueError(f"`{name}` must be >= 0. Received: {name}={value}")
    return {
        "cca_weight": cca * norms["retrieval"] / norms["cca"],
        "mae_weight": mae * norms["retrieval"] / norms["mae"],
    }
