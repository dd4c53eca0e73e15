"""GRec: the Generalist Recommender (Wang et al., CIKM 2023).

One model for many tasks, a task being a (flow, use case) pair: e.g. (upgrade, CVR).

```
features ──► row tokens: one per token group (WideDeepEncoder -> Dense(d)),
             one per behaviour sequence (channel embeddings + positions ->
             ParallelTransformerBlock(s) over the sequence with its padding mask -> masked mean)
for each use case u of the row (the row's flow f is a feature):
  [row tokens..., flow token f, use-case token u] ──► ParallelTransformerBlock(s) ─► LayerNorm
  ──► MixtureOfExperts routed by token / sentence / task (f, u) / task sentence [f, u] / dense
  ──► mean over tokens ──► tower of u ──► logit of (row, u)
```

A row with labels for several use cases (Census: income and never-married) is expanded
into one (row, task) pair per use case inside the model, so each pair is routed as its
own task; the loss, metrics and outputs stay per use case (`MultiTaskModel`).

With task or task-sentence routing the experts of a task do not depend on the input:
`GRec.extract()` returns an `ExtractedGRec` that holds, for every task, only its top-k
experts with fixed gates (no router), and computes the same outputs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tfzoo.data.features import CategoricalFeature, DatasetSpec, SequenceFeature
from tfzoo.layers.kernel_options import check_kernel_options, kernel_options, kernel_options_config
from tfzoo.layers.moe import MixtureOfExperts, recording_routing
from tfzoo.layers.parallel_transformer import ParallelTransformerBlock
from tfzoo.layers.row_tokens import RowTokens
from tfzoo.models.baselines import _tower
from tfzoo.models.multitask import MultiTaskModel

ROUTINGS = ("token", "sentence", "task", "task_sentence", "dense")
TASK_LEVEL_ROUTINGS = ("task", "task_sentence")
# Expert capacity factor of token / sentence routing (Switch Transformer's 1.25): at 8
# experts and top-4, factor 2 would give every expert room for every unit (never a drop).
DEFAULT_CAPACITY_FACTOR = 1.25


def _signature_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", str(text)).strip("_").lower() or "flow"


class _PairForward:
    """What GRec and its extracted form share: (row, use case) pairs -> logits.

    Uses `row_encoder`, `task_tokens`, `token_transformer`, `towers`, `tasks`,
    `num_flows` (0 without a flow feature) and `flow_feature` of the host.
    """

    def _flow_ids(self, features) -> tf.Tensor:
        if not self.num_flows:
            return None
        return tf.cast(features[self.flow_feature], tf.int32)  # [batch]

    def task_id(self, flow: int | tf.Tensor, use_case: int | tf.Tensor):
        """Task id of (flow index, use-case index): flow * U + use case (use case alone without flows)."""
        return flow * len(self.tasks) + use_case if self.num_flows else use_case

    def _pair_logits(self, row_tokens, flow, use_cases: Sequence[int], mix, training):
        """Logits of `use_cases` (indices into `tasks`) for each row; `mix(tokens, flow, use_case)`
        is the mixture-of-experts step on [pairs, S, d] tokens with [pairs] flow / use-case ids."""
        batch = tf.shape(row_tokens)[0]
        n = len(use_cases)
        use_case = tf.broadcast_to(tf.constant(list(use_cases), tf.int32)[tf.newaxis], [batch, n])  # [batch, n]
        task_token_ids = [self.num_flows + use_case]  # use-case tokens follow the flow tokens
        if self.num_flows:
            flow = tf.broadcast_to(flow[:, tf.newaxis], [batch, n])  # [batch, n]
            task_token_ids.insert(0, flow)
        task_token_ids = tf.stack(task_token_ids, axis=-1)  # [batch, n, S_task]
        row = tf.broadcast_to(row_tokens[:, tf.newaxis], [batch, n, *row_tokens.shape[1:]])  # [batch, n, S_row, d]
        tokens = tf.concat([row, self.task_tokens(task_token_ids)], axis=2)  # [batch, n, S, d]
        tokens = tf.reshape(tokens, [batch * n, tokens.shape[2], tokens.shape[3]])  # [pairs, S, d]
        tokens = self.token_transformer(tokens, training=training)  # [pairs, S, d]
        flat_flow = tf.reshape(flow, [-1]) if self.num_flows else None  # [pairs]
        mixed = mix(tokens, flat_flow, tf.reshape(use_case, [-1]))  # [pairs, S, h]
        pooled = tf.reshape(tf.reduce_mean(mixed, axis=1), [batch, n, mixed.shape[-1]])  # [batch, n, h]
        # Logits in float32 under every dtype policy: the served probabilities are float32.
        return {
            self.tasks[u]: tf.cast(
                tf.squeeze(self.towers[self.tasks[u]](pooled[:, j], training=training), -1), "float32"
            )
            for j, u in enumerate(use_cases)
        }  # each [batch]


@tf.keras.utils.register_keras_serializable(package="tfzoo")
class GRec(_PairForward, MultiTaskModel):
    """The Generalist Recommender: tokens -> parallel transformer -> routed MoE -> towers.

    Args:
      feature_spec, tasks, task_weights: see `MultiTaskModel`; `tasks` are the use
        cases (labels).
      flow_feature: the categorical feature holding each row's flow; its indices
        (vocabulary + OOV buckets) are the flows. None: tasks are the use cases alone.
      token_features: token name -> features encoded into that token by a
        `WideDeepEncoder` (e.g. {"user": [...], "item": [...], "query": ["query_vector"]}).
        Default: one "user" token of every feature that is not the flow or in a
        behaviour sequence.
      behaviour_sequences: token name -> aligned sequence features encoded into that
        token by a `BehaviourSequenceEncoder` (e.g. {"history": ["history", "history_rating"]}).
      model_dim: token width d.
      embedding_dim: embedding width of categorical features inside the encoders.
      num_heads: query heads of the multi-query attention.
      num_layers: parallel transformer blocks over the task-sentence token sequence.
      sequence_layers: parallel transformer blocks inside each behaviour sequence.
      routing: "token" (eq. 5), "sentence" (eq. 6), "task" (eq. 7, gate per (flow,
        use case)), "task_sentence" (eq. 8, mean of the flow and use-case token
        embeddings) or "dense" (MMoE: every expert, one softmax gate per use case from
        the sentence mean).
      num_experts, top_k: experts, and experts per routing unit (ignored by "dense").
      capacity_factor: expert capacity of token and sentence routing: each expert takes
        at most ceil(capacity_factor x units x top_k / num_experts) units per call, the
        overflow is dropped. Default `DEFAULT_CAPACITY_FACTOR` = 1.25 (Switch
        Transformer's), a capacity that bites: the paper's "expert capacity of 2" read as
        factor 2 gives 8 experts at top-4 a capacity of every unit, so nothing could ever
        be dropped (`bench/grec_capacity.py` measures drops, FLOPs and AUC per factor).
        None: dropless. Task-level and dense routing are always dropless.
      expert_units: widths of each expert's layers.
      load_balance_weight, z_loss_weight: auxiliary routing losses.
      tower_units: hidden widths of each use case's tower.
      dropout: dropout in the transformer blocks and the towers.
      kernel_initializer, kernel_regularizer: a Keras initializer / regularizer (a name,
        a config dict or an object) of every dense kernel of the model: the row
        encoders' deep towers, wide feed-forwards and token projections, the behaviour
        sequences' numeric projections, every transformer block's attention (query, key,
        value, output) and feed-forward kernels, the expert bank of the mixture, and the
        towers with their logit layers; e.g. `tfzoo train grec --option
        kernel_regularizer='{"class_name": "L2", "config": {"l2": 1e-5}}'`. None keeps each
        layer's own default (a model without them is built as before). Embedding tables
        (features, task tokens, positions), the router, biases and layer norms keep their
        own initialisation and no regularizer (`tfzoo.layers.kernel_options`).
    """

    def __init__(
        self,
        *,
        feature_spec: DatasetSpec | Mapping[str, Any],
        tasks: Sequence[str] | None = None,
        task_weights: Mapping[str, float] | None = None,
        flow_feature: str | None = "flow",
        token_features: Mapping[str, Sequence[str]] | None = None,
        behaviour_sequences: Mapping[str, Sequence[str]] | None = None,
        model_dim: int = 32,
        embedding_dim: int = 8,
        num_heads: int = 4,
        num_layers: int = 1,
        sequence_layers: int = 1,
        routing: str = "task_sentence",
        num_experts: int = 8,
        top_k: int = 4,
        capacity_factor: float | None = DEFAULT_CAPACITY_FACTOR,
        expert_units: Sequence[int] = (64,),
        load_balance_weight: float = 0.01,
        z_loss_weight: float = 1e-3,
        tower_units: Sequence[int] = (32,),
        dropout: float = 0.0,
        kernel_initializer=None,
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(feature_spec=feature_spec, tasks=tasks, task_weights=task_weights, **kwargs)
        spec = self.feature_spec
        check_kernel_options(kernel_initializer, kernel_regularizer)
        if routing not in ROUTINGS:
            raise ValueError(f"`routing` must be one of {ROUTINGS}. Received: routing={routing!r}")
        if model_dim < 1 or num_heads < 1 or num_layers < 0 or sequence_layers < 0:
            raise ValueError(
                "`model_dim` and `num_heads` must be >= 1, `num_layers` and `sequence_layers` >= 0. Received: "
                f"model_dim={model_dim}, num_heads={num_heads}, num_layers={num_layers}, sequence_layers={sequence_layers}"
            )
        if flow_feature is not None:
            if flow_feature not in spec.feature_names:
                raise ValueError(
                    f"`flow_feature` {flow_feature!r} is not a feature of the spec ({list(spec.feature_names)}); "
                    "pass flow_feature=None to use the use cases alone as tasks."
                )
            if not isinstance(spec.feature(flow_feature), CategoricalFeature):
                raise ValueError(
                    f"`flow_feature` must name a categorical feature. Received: flow_feature={flow_feature!r}"
                )
        behaviour_sequences = {k: list(v) for k, v in (behaviour_sequences or {}).items()}
        in_sequences = {name for names in behaviour_sequences.values() for name in names}
        if token_features is None:
            rest = [n for n in spec.feature_names if n != flow_feature and n not in in_sequences]
            token_features = {"user": rest} if rest else {}
        token_features = {k: list(v) for k, v in token_features.items()}
        self._check_groups(token_features, behaviour_sequences, flow_feature)

        self.flow_feature = flow_feature
        self.token_features = token_features
        self.behaviour_sequences = behaviour_sequences
        self.model_dim = model_dim
        self.embedding_dim = embedding_dim
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.sequence_layers = sequence_layers
        self.routing = routing
        self.num_experts = num_experts
        self.top_k = top_k
        self.capacity_factor = capacity_factor
        self.expert_units = tuple(expert_units)
        self.load_balance_weight = load_balance_weight
        self.z_loss_weight = z_loss_weight
        self.tower_units = tuple(tower_units)
        self.dropout = dropout
        self.kernel_initializer = kernel_initializer
        self.kernel_regularizer = kernel_regularizer
        self.num_flows = spec.feature(flow_feature).cardinality if flow_feature else 0

        self.row_encoder = RowTokens(
            spec,
            token_features=token_features,
            behaviour_sequences=behaviour_sequences,
            model_dim=model_dim,
            embedding_dim=embedding_dim,
            num_heads=num_heads,
            sequence_layers=sequence_layers,
            dropout=dropout,
            name="row_tokens",
            **kernel_options(self),
        )
        self.task_tokens = tf.keras.layers.Embedding(self.num_flows + len(self.tasks), model_dim, name="task_tokens")
        self.token_transformer = tf.keras.Sequential(
            [
                ParallelTransformerBlock(num_heads, dropout=dropout, name=f"block_{i}", **kernel_options(self))
                for i in range(num_layers)
            ]
            + [tf.keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm")],
            name="token_transformer",
        )
        router_options = {
            "token": {},
            "sentence": {},
            "task": {"num_tasks": max(self.num_flows, 1) * len(self.tasks)},
            "task_sentence": {"vocabulary_size": self.num_flows + len(self.tasks)},
            "dense": {"num_gates": len(self.tasks)},
        }[routing]
        self.moe = MixtureOfExperts(
            num_experts,
            self.expert_units,
            router=routing,
            router_options=router_options,
            top_k=None if routing == "dense" else top_k,
            capacity_factor=capacity_factor if routing in ("token", "sentence") else None,
            load_balance_weight=load_balance_weight if routing != "dense" else 0.0,
            z_loss_weight=z_loss_weight,
            expert_options=kernel_options(self),
            name="moe",
        )
        self.towers = {t: _tower(self.tower_units, dropout, f"{t}_tower", kernel_options(self)) for t in self.tasks}

    def _check_groups(self, token_features, behaviour_sequences, flow_feature):
        spec = self.feature_spec
        if not token_features and not behaviour_sequences:
            raise ValueError("GRec needs at least one token: `token_features` and `behaviour_sequences` are empty.")
        seen: dict[str, str] = {}
        for group, names in list(token_features.items()) + list(behaviour_sequences.items()):
            if not names:
                raise ValueError(f"Token {group!r} has no features.")
            for name in names:
                if name not in spec.feature_names:
                    raise ValueError(
                        f"Token {group!r} names unknown feature {name!r}; the spec has {list(spec.feature_names)}."
                    )
                if name == flow_feature:
                    raise ValueError(f"The flow feature {name!r} is a task token; remove it from token {group!r}.")
                if name in seen:
                    raise ValueError(f"Feature {name!r} is in two tokens: {seen[name]!r} and {group!r}.")
                seen[name] = group
        for group, names in behaviour_sequences.items():
            not_sequences = [n for n in names if not isinstance(spec.feature(n), SequenceFeature)]
            if not_sequences:
                raise ValueError(f"Behaviour sequence {group!r} holds non-sequence features {not_sequences}.")

    # ----------------------------------------------------------------------------- forward

    def _routing_ids(self, flow, use_case):
        if self.routing == "task":
            return self.task_id(flow, use_case)  # [pairs]
        if self.routing == "task_sentence":
            tokens = [self.num_flows + use_case]
            if self.num_flows:
                tokens.insert(0, flow)
            return tf.stack(tokens, axis=-1)  # [pairs, S_task]
        if self.routing == "dense":
            return use_case  # [pairs]: the use case's gate
        return None

    # Only static Python control flow below: running it without AutoGraph (which also
    # skips converting every nested layer's call) makes tracing several times faster.
    @tf.autograph.experimental.do_not_convert
    def task_logits(self, features, training=False):
        row_tokens = self.row_encoder(features, training=training)  # [batch, S_row, d]

        def mix(tokens, flow, use_case):
            return self.moe(tokens, routing_ids=self._routing_ids(flow, use_case), training=training)

        return self._pair_logits(row_tokens, self._flow_ids(features), range(len(self.tasks)), mix, training)

    def test_step(self, inputs):
        # Routing statistics are measured on training batches only (the MoE updates them
        # when training); an evaluation would report them as 0.
        routing = {m.name for m in self.moe.metrics}
        return {name: value for name, value in super().test_step(inputs).items() if name not in routing}

    # ----------------------------------------------------------------------------- extraction

    @property
    def extractable(self) -> bool:
        """Task-level routing: each task's experts and gates are fixed, see `extract`."""
        return self.routing in TASK_LEVEL_ROUTINGS

    def flows(self) -> list[tuple[int, str]]:
        """(index, name) of the flows of the vocabulary (OOV buckets excluded)."""
        if not self.num_flows:
            return []
        feature = self.feature_spec.feature(self.flow_feature)
        if feature.vocabulary is None:
            return [(i, f"flow{i}") for i in range(self.num_flows)]
        return [(feature.num_oov_buckets + i, str(v)) for i, v in enumerate(feature.vocabulary)]

    def task_routing_ids(self) -> np.ndarray:
        """The routing ids of every task, in task-id order (flow-major)."""
        flows = range(self.num_flows) if self.num_flows else [0]
        use_cases = range(len(self.tasks))
        if self.routing == "task":
            return np.array([self.task_id(f, u) for f in flows for u in use_cases], np.int32)
        return np.array(
            [([f] if self.num_flows else []) + [self.num_flows + u] for f in flows for u in use_cases], np.int32
        )

    def expert_usage(self, features) -> dict[str, np.ndarray]:
        """{task: [E]}: how each (flow, use case) task of the rows in `features` uses the
        experts: the share of its routing units (its tokens for token routing, its (row,
        use case) pairs otherwise) routed to each expert (1 / k per top-k choice), or its
        mean gate probabilities for dense routing; each sums to 1. Tasks are named
        "flow/use case" (the use case alone without a flow feature); tasks without rows
        are left out. Runs the model eagerly on `features` (one batch)."""
        with recording_routing(self.moe) as records:
            self(features, training=False)
        (record,) = records[self.moe.name]
        usage = record["usage"]  # [units, E]; units: pairs (row-major [batch, use cases]), or their tokens
        pairs = int(tf.shape(next(iter(features.values())))[0]) * len(self.tasks)
        usage = usage.reshape(pairs, -1, self.num_experts).mean(axis=1)  # [pairs, E]
        use_case = np.tile(np.arange(len(self.tasks)), pairs // len(self.tasks))
        flow_names = dict(self.flows())
        if self.num_flows:
            flow = np.repeat(np.asarray(self._flow_ids(features)), len(self.tasks))
            names = [f"{flow_names.get(f, f'oov{f}')}/{self.tasks[u]}" for f, u in zip(flow, use_case)]
        else:
            names = [self.tasks[u] for u in use_case]
        result: dict[str, list[np.ndarray]] = {}
        for name, row in zip(names, usage):
            result.setdefault(name, []).append(row)
        return {name: np.mean(rows, axis=0) for name, rows in sorted(result.items())}

    def extract(self) -> ExtractedGRec:
        """The serving form of a task-level-routed GRec: per task only its top-k experts."""
        if not self.extractable:
            raise ValueError(
                f"Expert extraction needs task or task-sentence routing; this GRec routes by {self.routing!r}, "
                "which depends on the input."
            )
        if not self.moe.built:
            raise ValueError("Call the model once (or train it) before extracting its experts.")
        return ExtractedGRec(self)

    def get_config(self):
        return {
            **super().get_config(),
            "flow_feature": self.flow_feature,
            "token_features": {k: list(v) for k, v in self.token_features.items()},
            "behaviour_sequences": {k: list(v) for k, v in self.behaviour_sequences.items()},
            "model_dim": self.model_dim,
            "embedding_dim": self.embedding_dim,
            "num_heads": self.num_heads,
            "num_layers": self.num_layers,
            "sequence_layers": self.sequence_layers,
            "routing": self.routing,
            "num_experts": self.num_experts,
            "top_k": self.top_k,
            "capacity_factor": self.capacity_factor,
            "expert_units": list(self.expert_units),
            "load_balance_weight": self.load_balance_weight,
            "z_loss_weight": self.z_loss_weight,
            "tower_units": list(self.tower_units),
            "dropout": self.dropout,
            **kernel_options_config(self),
        }


class ExtractedGRec(_PairForward, tf.keras.Model):
    """A trained task-level GRec for serving: its layers, minus the router and unused experts.

    Shares the trained encoder, transformer and tower layers of `grec` (no copy) and
    holds an `ExtractedExperts` with, per task, the k experts and gates the router
    chose; the full expert bank and the router are not part of it, so a SavedModel of
    it stores and runs no other expert.

    - `call(features)`: probability of every use case for each row, each (row, use
      case) pair through its own task's k experts (per-row gathered kernels).
    - `task_probability(features, flow, use_case)`: one task for every row; the graph
      holds that task's k experts only (the flow feature is not read).
    Both equal the full model's outputs for those tasks.
    """

    def __init__(self, grec: GRec, **kwargs):
        super().__init__(name=kwargs.pop("name", "extracted_grec"), **kwargs)
        self.tasks = grec.tasks
        self.flow_feature = grec.flow_feature
        self.num_flows = grec.num_flows
        self.routing = grec.routing
        self.feature_spec = grec.feature_spec
        self.row_encoder = grec.row_encoder
        self.task_tokens = grec.task_tokens
        self.token_transformer = grec.token_transformer
        self.towers = grec.towers
        self.flow_names = grec.flows()
        # Route r of the extracted experts is task r (flow-major task ids).
        self.experts = grec.moe.extract(grec.task_routing_ids(), name="extracted_experts")

    def call(self, features, training=False):
        row_tokens = self.row_encoder(features, training=False)

        def mix(tokens, flow, use_case):
            return self.experts(tokens, route=self.task_id(flow, use_case))

        logits = self._pair_logits(row_tokens, self._flow_ids(features), range(len(self.tasks)), mix, False)
        return {t: tf.sigmoid(logit) for t, logit in logits.items()}

    def task_probability(self, features, flow: int, use_case: str) -> dict[str, tf.Tensor]:
        """Probability of `use_case` for rows all in flow index `flow` ({use_case: [batch]})."""
        u = self.tasks.index(use_case)
        route = self.task_id(flow, u)
        row_tokens = self.row_encoder(features, training=False)
        flow_ids = tf.fill([tf.shape(row_tokens)[0]], flow) if self.num_flows else None
        logits = self._pair_logits(
            row_tokens, flow_ids, [u], lambda tokens, _f, _u: self.experts(tokens, route=route), False
        )
        return {use_case: tf.sigmoid(logits[use_case])}

    def get_config(self):
        raise NotImplementedError(
            "An ExtractedGRec is a serving form of a trained GRec: save it with tf.saved_model.save "
            "(tfzoo export), rebuild it with GRec.extract()."
        )

    def task_signatures(self) -> dict[str, tuple[int, str]]:
        """Signature name -> (flow index, use case) of every known task."""
        if not self.num_flows:
            return {_signature_name(t): (0, t) for t in self.tasks}
        return {
            f"{_signature_name(name)}_{_signature_name(t)}": (index, t)
            for index, name in self.flow_names
            for t in self.tasks
        }
