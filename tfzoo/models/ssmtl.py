"""SSMTL friend retrieval (Kolodner et al., "Robust Training Objectives Improve
Embedding-Based Retrieval in Industrial Recommendation Systems").

One GAT encoder (`tfzoo.graph.GraphEncoder`) embeds a user as the root state of a k-hop
subgraph sampled around it. Three objectives share it (eq. 6):

    L = alpha * L_retrieval + beta * L_CCA + gamma * L_MAE

- retrieval (eq. 5): query and candidate towers are the same encoder; dot-product scores
  against the batch's candidates, softmax cross-entropy with the friend as the positive
  (`tfrs.tasks.Retrieval`, summed over the batch; in-batch copies of the positive are not
  counted as negatives);
- CCA-SSG (eq. 3): two views of the query subgraphs, each with edge drop and feature
  drop, through the encoder and a Linear-ReLU-Linear head, over all their nodes;
- GraphMAE (eq. 4): a view of the query subgraphs with edge drop whose roots' inputs are
  replaced by a [MASK] token, through the encoder and a linear head; the roots are
  re-masked (set to zero) and one GATv2 layer decodes their features from their
  neighbours; scaled cosine error against the roots' multi-hot features.

A weight of 0 switches an objective off (its layers are not even built), which gives the
ablations: retrieval only, +CCA, +MAE, +both. `fit` logs each enabled part
(`retrieval_loss`, `cca_loss`, `mae_loss`) next to the weighted total `loss`.
"""

from __future__ import annotations

from typing import Any, Mapping

import tensorflow as tf
import tensorflow_gnn as tfgnn
import tensorflow_recommenders as tfrs

from tfzoo.graph.augmentations import EdgeDrop, FeatureDrop, QueryNodeMasking
from tfzoo.graph.decoder import RootAttentionDecoder
from tfzoo.graph.encoder import GraphEncoder, root_embeddings
from tfzoo.graph.ops import multi_hot, root_ids, root_indices
from tfzoo.graph.schema import FEATURES, USERS
from tfzoo.objectives.cca_ssg import cca_ssg_loss
from tfzoo.objectives.graph_mae import scaled_cosine_error


@tf.keras.utils.register_keras_serializable(package="tfzoo")
class SSMTLRetrieval(tfrs.Model):
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
        **kwargs,
    ):
        super().__init__(**kwargs)
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
        self.temperature = temperature

        self.encoder = GraphEncoder(
            feature_dim=feature_dim, hidden_dim=hidden_dim, output_dim=embedding_dim, num_layers=num_layers,
            num_heads=num_heads, dropout=dropout, name="encoder")
        self.retrieval_task = tfrs.tasks.Retrieval(temperature=temperature, remove_accidental_hits=True, name="retrieval")
        self.loss_trackers = {"loss": tf.keras.metrics.Mean(name="loss")}
        if self.retrieval_weight > 0:
            self.loss_trackers["retrieval"] = tf.keras.metrics.Mean(name="retrieval_loss")
        if self.cca_weight > 0:
            self.cca_views = tf.keras.Sequential([
                EdgeDrop(cca_edge_drop, name="edge_drop"),
                FeatureDrop(cca_feature_drop, feature_dim=feature_dim, name="feature_drop"),
            ], name="cca_view")
            self.cca_head = tf.keras.Sequential([
                tf.keras.layers.Dense(embedding_dim, activation="relu", name="linear_relu"),
                tf.keras.layers.Dense(embedding_dim, name="linear"),
            ], name="cca_head")
            self.loss_trackers["cca"] = tf.keras.metrics.Mean(name="cca_loss")
        if self.mae_weight > 0:
            self.mae_edge_drop_layer = EdgeDrop(mae_edge_drop, name="mae_edge_drop")
            self.query_masking = QueryNodeMasking(state_dim=hidden_dim, name="query_masking")
            self.mae_head = tf.keras.layers.Dense(embedding_dim, use_bias=False, name="mae_head")
            self.decoder = RootAttentionDecoder(units=feature_dim, name="mae_decoder")
            self.loss_trackers["mae"] = tf.keras.metrics.Mean(name="mae_loss")

    @property
    def metrics(self):
        return list(self.loss_trackers.values())

    def call(self, graph: tfgnn.GraphTensor, training: bool = False) -> tf.Tensor:
        """[num_components, embedding_dim] the embeddings of the subgraphs' roots."""
        return root_embeddings(graph, self.encoder(graph, training=training))

    def cca_loss(self, graph: tfgnn.GraphTensor, training: bool) -> tf.Tensor:
        view_a = self.cca_views(graph, training=training)
        view_b = self.cca_views(graph, training=training)  # a second, independent draw
        z_a = self.cca_head(self.encoder(view_a, training=training))  # [nodes, embedding_dim]
        z_b = self.cca_head(self.encoder(view_b, training=training))  # [nodes, embedding_dim]
        return cca_ssg_loss(z_a, z_b, decorrelation_weight=self.cca_decorrelation)

    def mae_loss(self, graph: tfgnn.GraphTensor, training: bool) -> tf.Tensor:
        view = self.mae_edge_drop_layer(graph, training=training)
        if not self.encoder.built:  # the steps below use the encoder's parts before any plain call
            self.encoder(view, training=False)
        node_features = dict(view.node_sets[USERS].features)
        inputs = self.encoder.input_states(view)  # [nodes, hidden_dim]
        masked = self.query_masking(view.replace_features(node_sets={USERS: {**node_features, tfgnn.HIDDEN_STATE: inputs}}))
        states = self.mae_head(self.encoder.propagate(view, masked, training=training))  # [nodes, embedding_dim]
        roots = root_indices(view)[:, tf.newaxis]  # [components, 1]
        # Re-mask: the decoder must rebuild each root from its neighbours alone.
        states = tf.tensor_scatter_nd_update(states, roots, tf.zeros([tf.shape(roots)[0], self.embedding_dim]))
        reconstructed = self.decoder(view.replace_features(node_sets={USERS: {tfgnn.HIDDEN_STATE: states}}))  # [components, feature_dim]
        targets = multi_hot(tf.gather(graph.node_sets[USERS][FEATURES], roots[:, 0]), self.feature_dim)
        return scaled_cosine_error(targets, reconstructed, gamma=self.mae_gamma)

    def build_objectives(self, inputs: Mapping[str, tfgnn.GraphTensor]) -> None:
        """Runs every switched-on objective once on `inputs`, so that all their layers exist
        (a checkpoint then restores at once), without touching the loss metrics: safe in a
        distribution strategy's cross-replica context."""
        self.loss_parts(inputs, training=False)

    def loss_parts(self, inputs: Mapping[str, tfgnn.GraphTensor], training: bool = False) -> dict[str, tuple[float, tf.Tensor]]:
        """{objective: (weight, loss)} of the switched-on objectives of eq. 6."""
        query, candidate = inputs["query"], inputs["candidate"]
        parts = {}
        if self.retrieval_weight > 0:
            queries = self(query, training=training)  # [batch, embedding_dim]
            candidates = self(candidate, training=training)  # [batch, embedding_dim]
            parts["retrieval"] = (self.retrieval_weight, self.retrieval_task(
                queries, candidates, candidate_ids=root_ids(candidate), compute_metrics=False, compute_batch_metrics=False))
        if self.cca_weight > 0:
            parts["cca"] = (self.cca_weight, self.cca_loss(query, training))
        if self.mae_weight > 0:
            parts["mae"] = (self.mae_weight, self.mae_loss(query, training))
        return parts

    def compute_loss(self, inputs: Mapping[str, tfgnn.GraphTensor], training: bool = False) -> tf.Tensor:
        parts = self.loss_parts(inputs, training=training)
        total = tf.add_n([weight * value for weight, value in parts.values()])
        self._track(parts, total)
        return total

    def _track(self, parts: Mapping[str, tuple[float, tf.Tensor]], total: tf.Tensor) -> None:
        for name, (_, value) in parts.items():
            self.loss_trackers[name].update_state(value)
        self.loss_trackers["loss"].update_state(total)

    def train_step(self, inputs):
        # Under tf.distribute each replica gets its own pairs and the optimizer sums the
        # replicas' gradients. The retrieval loss is a sum over the replica's pairs, so the
        # replicas' sum is the global batch's; the self-supervised losses (and layer losses)
        # are means over the replica's subgraphs, so they are divided by the replica count
        # to weigh what they weigh on one device.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            parts = self.loss_parts(inputs, training=True)
            total = tf.add_n([weight * value for weight, value in parts.values()])
            objective = tf.add_n([weight * (value if name == "retrieval" else value / replicas)
                                  for name, (weight, value) in parts.items()])
            if self.losses:
                objective += tf.add_n(self.losses) / replicas
        gradients = tape.gradient(objective, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        self._track(parts, total)
        # Epoch means of the total and of each part (tfrs' default would log the last batch).
        return {tracker.name: tracker.result() for tracker in self.metrics}

    def test_step(self, inputs):
        self.compute_loss(inputs, training=False)
        return {tracker.name: tracker.result() for tracker in self.metrics}

    def get_config(self) -> dict[str, Any]:
        return {
            "feature_dim": self.feature_dim, "hidden_dim": self.hidden_dim, "embedding_dim": self.embedding_dim,
            "num_layers": self.num_layers, "num_heads": self.num_heads, "dropout": self.dropout,
            "retrieval_weight": self.retrieval_weight, "cca_weight": self.cca_weight, "mae_weight": self.mae_weight,
            "cca_decorrelation": self.cca_decorrelation, "cca_edge_drop": self.cca_edge_drop,
            "cca_feature_drop": self.cca_feature_drop, "mae_edge_drop": self.mae_edge_drop,
            "mae_gamma": self.mae_gamma, "temperature": self.temperature,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)
