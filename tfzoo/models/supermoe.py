"""SUPER-MoE (Jiang et al., ICML-W 2022): masked channel pre-training, multi-task fine-tuning.

- `MaskedChannelPretrainer` (sec. 3.1, eqs. 1-3): a `MoESequenceEncoder` learns to
  predict masked steps of chosen channels.
- `SuperMoE` (secs. 3.2-3.3, eqs. 8-10): the pre-trained encoder, the user
  representation H = MaxPooling(h_o) and one linear tower per task; task weights fixed
  (eq. 9) or driven by validation AUC (eq. 10).

Both take the channel dict of `tfzoo.data.behaviour_sequences` (or any channels the
encoder is configured with) as features.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tfzoo.data.features import DatasetSpec, as_spec
from tfzoo.layers.kernel_options import KERNEL_OPTIONS, check_kernel_options, kernel_options, kernel_options_config
from tfzoo.layers.moe_sequence_encoder import MoESequenceEncoder
from tfzoo.models.base import LossTerm, ZooModel, num_replicas, replica_rows, sum_over_replicas
from tfzoo.models.multitask import MultiTaskModel

# The AUC-driven weights' validation term (eq. 10), logged as `validation_hinge_auc_loss`.
VALIDATION_SURROGATE = "validation_hinge_auc"


def build_encoder(options: Mapping[str, Any], knobs: Mapping[str, Any] | None = None) -> MoESequenceEncoder:
    """The model's encoder: `options` are its hyper-parameters (what a fine-tuning run
    checks against its pre-training), `knobs` the model's kernel initializer / regularizer.

    The knobs are model options, not encoder options: they are training choices (a
    fine-tuning may regularise a pre-trained encoder that was not, and its initializer is
    overwritten by the pre-trained weights anyway), so they are kept out of the encoder
    hyper-parameters that `init_from` compares and stores."""
    misplaced = sorted(set(options) & set(KERNEL_OPTIONS))
    if misplaced:
        raise ValueError(
            f"{', '.join(f'`{name}`' for name in misplaced)} is a model option, not an encoder option: "
            f"give it beside `encoder`. Received: encoder={dict(options)}"
        )
    return MoESequenceEncoder(**dict(options), **dict(knobs or {}), name="encoder")


def encoder_parameters(options: Mapping[str, Any], features: Mapping[str, Any]) -> int:
    """Trainable parameters of the `MoESequenceEncoder` of `options`, built for `features`
    (a batch of channels, which fixes the rank of bag channels)."""
    encoder = MoESequenceEncoder(**dict(options))
    encoder.build({name: tf.TensorShape(tf.convert_to_tensor(value).shape) for name, value in features.items()})
    return int(sum(np.prod(w.shape) for w in encoder.trainable_weights))


def dense_counterpart(options: Mapping[str, Any], features: Mapping[str, Any], *, match: str) -> dict[str, Any]:
    """The dense (BERT-style) encoder to compare a SUPER-MoE encoder with.

    - match="compute": one expert per mixture, every size unchanged: with top-1 routing
      each token does the same work as in the MoE (and the load-balancing loss vanishes),
      but the model has ~1/E of the expert parameters.
    - match="parameters": one expert per mixture, the feed-forward width grown until the
      encoder has as many parameters as the MoE one (the parameters of the E experts of
      Q, K, V and FFN and of the routers go to one wider FFN; nearest width).
    """
    if match not in ("compute", "parameters"):
        raise ValueError(f"`match` must be 'compute' or 'parameters'. Received: match={match!r}")
    dense = {**dict(options), "num_experts": 1}
    if match == "compute":
        return dense
    target = encoder_parameters(options, features)
    base_units = int(dense.get("ffn_units", 64))
    at_base = encoder_parameters(dense, features)
    per_unit = encoder_parameters({**dense, "ffn_units": base_units + 1}, features) - at_base  # linear in the width
    dense["ffn_units"] = max(1, base_units + int(round((target - at_base) / per_unit)))
    return dense


def masked_max_pool(sequence: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """H = max over the real steps of h_o [batch, L, d] -> [batch, d] (eq. 8).

    A row without any real step (a user with no history yet) gets the zero vector, so its
    task towers answer their bias (the base rate) instead of a saturated probability.
    """
    floor = tf.fill(tf.shape(sequence), tf.constant(-1e9, sequence.dtype))
    pooled = tf.reduce_max(tf.where(valid[..., tf.newaxis], sequence, floor), axis=1)  # [batch, d]
    has_steps = tf.reduce_any(valid, axis=1)[:, tf.newaxis]  # [batch, 1]
    return tf.where(has_steps, pooled, tf.zeros_like(pooled))


def pairwise_hinge_auc_loss(logits: tf.Tensor, labels: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Mean over (positive, negative) pairs of max(0, 1 - (f(x+) - f(x-))): eq. 10's surrogate of 1 - AUC."""
    labels, mask = tf.cast(labels, logits.dtype), tf.cast(mask, logits.dtype)
    positive, negative = labels * mask, (1.0 - labels) * mask  # [batch]
    hinge = tf.nn.relu(1.0 - (logits[:, tf.newaxis] - logits[tf.newaxis, :]))  # [batch(+), batch(-)]
    pairs = positive[:, tf.newaxis] * negative[tf.newaxis, :]
    return tf.reduce_sum(hinge * pairs) / tf.maximum(tf.reduce_sum(pairs), 1.0)


def log_uniform_negatives(targets: tf.Tensor, num_sampled: int, num_classes: int, *, seed: tf.Tensor):
    """`sampled_values` for `tf.nn.sampled_softmax_loss`: `num_sampled` ids drawn (with
    replacement) from TensorFlow's log-uniform (Zipfian) candidate distribution,
    P(k) = log((k + 2) / (k + 1)) / log(num_classes + 1), by a stateless draw keyed by
    `seed`. Every replica of a step draws the same negatives, as one device would."""
    log_range = tf.math.log(float(num_classes + 1))
    uniform = tf.random.stateless_uniform([num_sampled], seed=seed)  # [S]
    sampled = tf.clip_by_value(tf.cast(tf.floor(tf.exp(uniform * log_range)), tf.int64) - 1, 0, num_classes - 1)

    def expected(ids):  # expected count of each id among the S draws
        ids = tf.cast(ids, tf.float32)
        return num_sampled * tf.math.log((ids + 2.0) / (ids + 1.0)) / log_range

    return sampled, expected(targets)[:, tf.newaxis], expected(sampled)  # [S], [masked, 1], [S]


@tf.keras.utils.register_keras_serializable(package="tfzoo")
class MaskedChannelPretrainer(ZooModel):
    """Masked channel prediction (MCP) pre-training of a `MoESequenceEncoder`.

    Every training batch masks each real step with probability `mask_rate`, and a masked
    step is hidden in **every** channel of the encoder (`mask_steps`): ID and category
    channels hold their [MASK] id (`vocabulary_size`; a bag holds it in its first slot),
    dense channels hold zeros. Masking only the predicted channel would leak its answer:
    the other channels of the same step (an item's title vector, its genres) are
    functions of the item, so the item could be read off its own step. The encoder output
    at the masked steps predicts the original ids of the `masked_channels` (the MCP
    tasks). An ID channel (large vocabulary) is trained with a sampled softmax over
    `num_sampled` negatives (its output table can be sharded like the input tables); a
    category channel with a full softmax. Each channel's loss is its mean over its
    masked steps that had a known value, i.e. normalised by its task indicator (eq. 3),
    and the total is their `channel_weights`-weighted sum plus the mixtures'
    load-balancing losses.

    The masks are a stateless function of `seed`, the step and the row's place in the
    global batch: training step t (the optimizer's step count, which a checkpoint keeps,
    so a resumed run masks as an uninterrupted one) masks with seed (seed, t), and every
    evaluation (
    `evaluate`, and the validation pass of `fit`) masks its batch b with (seed + 1, b), so
    that every evaluation of the same data masks the same steps (epochs compare on equal
    terms). Each replica draws the global batch's masks and keeps its own rows, so a run
    masks the same steps on any number of replicas. Evaluation reports full-softmax losses
    and accuracies (argmax over the whole vocabulary) per channel.

    Args:
      encoder: `MoESequenceEncoder` constructor arguments.
      masked_channels: single-valued ID / category channels predicted at the masked
        steps (every channel of a masked step is hidden, whether predicted or not).
      mask_rate: probability of masking a real step.
      num_sampled: negatives of the sampled softmax of ID channels.
      channel_weights: loss weight per predicted channel (default 1).
      seed: seed of the masking.
      kernel_initializer, kernel_regularizer: a Keras initializer / regularizer (a name,
        a config dict or an object) of every dense kernel: the encoder's (its input
        projection W, the attention and feed-forward expert banks and the attention output
        projections) and the category channels' output heads. None keeps each layer's
        own default (a model without them is built as before). The channels' embedding
        tables, the ID channels' output embeddings (sampled-softmax tables), the routers,
        biases and layer norms keep their own initialisation and no regularizer
        (`tfzoo.layers.kernel_options`). Model options, not `encoder` options (see
        `build_encoder`).
    """

    def __init__(
        self,
        *,
        encoder: Mapping[str, Any],
        masked_channels: Sequence[str],
        mask_rate: float = 0.15,
        num_sampled: int = 64,
        channel_weights: Mapping[str, float] | None = None,
        seed: int = 0,
        kernel_initializer=None,
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_kernel_options(kernel_initializer, kernel_regularizer)
        self.kernel_initializer = kernel_initializer
        self.kernel_regularizer = kernel_regularizer
        self.encoder_options = dict(encoder)
        self.encoder = build_encoder(self.encoder_options, kernel_options(self))
        vocabularies = {**self.encoder.category_channels, **self.encoder.id_channels}
        unknown = [c for c in masked_channels if c not in vocabularies]
        if unknown or not masked_channels:
            raise ValueError(
                f"`masked_channels` must name ID or category channels of the encoder "
                f"({sorted(vocabularies)}). Received: masked_channels={list(masked_channels)}"
            )
        if not 0.0 < mask_rate < 1.0:
            raise ValueError(f"`mask_rate` must be in (0, 1). Received: mask_rate={mask_rate}")
        self.masked_channels = tuple(masked_channels)
        self.vocabularies = {c: vocabularies[c] for c in self.masked_channels}
        self.mask_rate = float(mask_rate)
        self.num_sampled = int(num_sampled)
        self.channel_weights = {c: float((channel_weights or {}).get(c, 1.0)) for c in self.masked_channels}
        self.seed = int(seed)
        width = self.encoder.units
        self.output_tables, self.output_biases, self.heads = {}, {}, {}
        for channel in self.masked_channels:
            if channel in self.encoder.id_channels:
                self.output_tables[channel] = self.add_weight(
                    name=f"{channel}_output_embedding",
                    shape=(self.vocabularies[channel], width),
                    initializer=tf.keras.initializers.RandomNormal(stddev=0.05),
                )
                self.output_biases[channel] = self.add_weight(
                    name=f"{channel}_output_bias", shape=(self.vocabularies[channel],), initializer="zeros"
                )
            else:
                self.heads[channel] = tf.keras.layers.Dense(
                    self.vocabularies[channel], name=f"{channel}_head", **kernel_options(self)
                )
        self.track_loss_terms(self.masked_channels)
        self.channel_accuracy = {c: tf.keras.metrics.Mean(name=f"{c}_accuracy") for c in self.masked_channels}

    @property
    def metrics(self):
        return [*self.loss_trackers.values(), *self.channel_accuracy.values()]

    def call(self, features, training=False):
        return self.encoder(features, training=training)

    def draw_masked_steps(self, features, seed: tf.Tensor) -> tf.Tensor:
        """bool [batch, L]: each real step chosen with probability `mask_rate`, by a
        stateless draw over the global batch keyed by `seed` ([2] int), of which this
        replica keeps its own rows."""
        valid = self.encoder.padding_mask(features)  # [batch, L]
        first, rows = replica_rows(tf.shape(valid)[0])
        draw = tf.random.stateless_uniform(tf.stack([rows, tf.shape(valid)[1]]), seed=seed)  # [global batch, L]
        return tf.logical_and(draw[first : first + tf.shape(valid)[0]] < self.mask_rate, valid)

    def _mask_seed(self, training: bool) -> tf.Tensor:
        # Training: the optimizer's step count (checkpointed; Keras' own step counter restarts
        # at every `fit`, e.g. on resume). Evaluation: the batch, counted from 0 at each call.
        step = self.optimizer.iterations if training else self._test_counter
        return tf.stack([tf.constant(self.seed + (0 if training else 1), tf.int64), tf.cast(step, tf.int64)])

    def mask_steps(self, features, chosen):
        """`features` with every channel of the `chosen` steps ([batch, L] bool) hidden.

        ID and category channels take their [MASK] id (a bag: the id in its first slot,
        0 in the others), dense channels zeros; channels the encoder does not read pass
        through unchanged. The result does not depend on what the chosen steps held.
        """
        masked = dict(features)
        vocabularies = {**self.encoder.category_channels, **self.encoder.id_channels}
        for channel, size in vocabularies.items():
            ids = tf.cast(features[channel], tf.int64)  # [batch, L] or [batch, L, K]
            if ids.shape.rank == 3:
                first_slot = tf.one_hot(
                    0,
                    tf.shape(ids)[-1],
                    on_value=tf.constant(size, tf.int64),
                    off_value=tf.constant(0, tf.int64),
                    dtype=tf.int64,
                )  # [K]
                masked[channel] = tf.where(chosen[..., tf.newaxis], first_slot, ids)
            else:
                masked[channel] = tf.where(chosen, tf.constant(size, tf.int64), ids)
        for channel in self.encoder.dense_channels:
            values = tf.convert_to_tensor(features[channel])  # [batch, L, width]
            masked[channel] = tf.where(chosen[..., tf.newaxis], tf.zeros_like(values), values)
        return masked

    def mask_channels(self, features, seed: tf.Tensor):
        """(masked features, {predicted channel: bool [batch, L] steps to predict}).

        A predicted channel's targets are the masked steps where it held a known value
        (a step already holding [MASK], e.g. a target's unknown rating, has no label).
        """
        chosen = self.draw_masked_steps(features, seed)  # [batch, L]
        positions = {}
        for channel in self.masked_channels:
            ids = tf.cast(features[channel], tf.int64)  # [batch, L]
            known = tf.logical_and(ids > 0, ids < self.vocabularies[channel])
            positions[channel] = tf.logical_and(chosen, known)
        return self.mask_steps(features, chosen), positions

    def loss_terms(self, inputs, training=False):
        """Each predicted channel's loss over its masked steps (eq. 3), `channel_weights`-weighted."""
        features = inputs[0] if isinstance(inputs, tuple) else inputs
        masked, positions = self.mask_channels(features, self._mask_seed(training))
        sequence = self.encoder(masked, training=training)  # [batch, L, d]
        terms = {}
        for channel in self.masked_channels:
            # Output logits and losses in float32 under every dtype policy.
            states = tf.cast(tf.boolean_mask(sequence, positions[channel]), tf.float32)  # [masked, d]
            targets = tf.boolean_mask(tf.cast(features[channel], tf.int64), positions[channel])  # [masked]
            if channel in self.output_tables:
                table, bias = self.output_tables[channel], self.output_biases[channel]
                logits = tf.matmul(states, tf.convert_to_tensor(table), transpose_b=True) + bias  # [masked, V]
                if training:
                    per_step = tf.nn.sampled_softmax_loss(
                        table,
                        bias,
                        targets[:, tf.newaxis],
                        states,
                        num_sampled=self.num_sampled,
                        num_classes=self.vocabularies[channel],
                        sampled_values=log_uniform_negatives(
                            targets, self.num_sampled, self.vocabularies[channel], seed=self._mask_seed(True) + [2, 0]
                        ),
                        remove_accidental_hits=True,
                    )  # [masked]
                else:
                    per_step = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits)
            else:
                logits = tf.cast(self.heads[channel](states), tf.float32)  # [masked, V]
                per_step = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits)
            # Eq. 3: normalised by the indicator, i.e. the masked steps of the global batch.
            count = sum_over_replicas(tf.cast(tf.size(targets), tf.float32))
            loss = tf.reduce_sum(per_step) / tf.maximum(count, 1.0)
            self.channel_accuracy[channel].update_state(tf.cast(tf.equal(tf.argmax(logits, -1), targets), tf.float32))
            terms[channel] = LossTerm(loss, weight=self.channel_weights[channel])
        return terms

    def get_config(self):
        return {
            "encoder": dict(self.encoder_options),
            "masked_channels": list(self.masked_channels),
            "mask_rate": self.mask_rate,
            "num_sampled": self.num_sampled,
            "channel_weights": dict(self.channel_weights),
            "seed": self.seed,
            **kernel_options_config(self),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


@tf.keras.utils.register_keras_serializable(package="tfzoo")
class SuperMoE(MultiTaskModel):
    """Fine-tuning: y_i = Tower_i(MaxPooling(h_o)) (eq. 8), loss sum_i lambda_i l_i (eq. 9).

    Rows carry a task indicator (the label masks): an absent label adds nothing to its
    task's loss or metrics (`MultiTaskModel`). `load_encoder` restores the pre-trained
    encoder before training.

    Task weights: fixed (`task_weights`, default 1 each), or, with
    `task_weight_rate > 0`, learned for validation AUC (eq. 10), bi-level: when a
    training batch comes with a validation batch (`fit` on
    `tf.data.Dataset.zip((train, validation.repeat()))`), each step
      1. computes the task losses l_i and their gradients g_i on the training batch;
      2. computes the gradient g_v of the validation surrogate S = sum_i mean over
         pairs max(0, 1 - (f(x+) - f(x-))) (1 - AUC, made differentiable);
      3. moves the weights: one SGD step theta' = theta - eta sum_i lambda_i g_i changes
         S by -eta sum_i lambda_i g_v . g_i to first order, so dS/dlambda_i is
         proportional to -g_v . g_i (the one-step unrolled hypergradient, evaluated at
         theta as in first-order DARTS); lambda takes an exponentiated-gradient step
         lambda_i <- lambda_i exp(rate * a_i / max_j |a_j|), a_i = g_v . g_i, renormalised
         to sum to the number of tasks (weights stay positive, their scale fixed);
      4. updates theta with sum_i lambda_i g_i (+ load-balancing losses).
    The inner problem (theta_lambda = argmin Loss) is thus tracked by ordinary training
    while lambda climbs the validation AUC surrogate, alternating step by step.
    `current_task_weights()` reads lambda; each step's logs hold `lambda_<task>`.

    Args:
      feature_spec: optional; its labels name the tasks when `tasks` is not given.
      tasks: task names.
      encoder: `MoESequenceEncoder` constructor arguments.
      task_weights: initial lambda per task.
      task_weight_rate: step of the AUC-driven weights; 0 keeps them fixed.
      freeze_encoder: train the towers only, on the (pre-trained) encoder's fixed H: a
        linear probe per task, the fine-tuning that cannot forget what pre-training learned.
      kernel_initializer, kernel_regularizer: a Keras initializer / regularizer (a name,
        a config dict or an object) of every dense kernel: the encoder's (its input
        projection W, the attention and feed-forward expert banks and the attention output
        projections) and the task towers'; e.g. `tfzoo train supermoe --option
        kernel_regularizer='{"class_name": "L2", "config": {"l2": 1e-5}}'`. None keeps each
        layer's own default (a model without them is built as before). The channels'
        embedding tables, the routers, biases and layer norms keep their own
        initialisation and no regularizer (`tfzoo.layers.kernel_options`). Model options,
        not `encoder` options: a run fine-tuned from a pre-training (`init_from`) may set
        them whatever the pre-training used (see `build_encoder`).
    """

    def __init__(
        self,
        *,
        encoder: Mapping[str, Any],
        tasks: Sequence[str] | None = None,
        feature_spec: DatasetSpec | Mapping[str, Any] | None = None,
        task_weights: Mapping[str, float] | None = None,
        task_weight_rate: float = 0.0,
        freeze_encoder: bool = False,
        kernel_initializer=None,
        kernel_regularizer=None,
        **kwargs,
    ):
        if feature_spec is None:
            if not tasks:
                raise ValueError("SuperMoE needs `tasks` or a `feature_spec` with labels. Received: tasks=None")
            feature_spec = DatasetSpec(features=(), labels=tuple(tasks))
        super().__init__(feature_spec=as_spec(feature_spec), tasks=tasks, task_weights=task_weights, **kwargs)
        if task_weight_rate < 0:
            raise ValueError(f"`task_weight_rate` must be >= 0. Received: task_weight_rate={task_weight_rate}")
        check_kernel_options(kernel_initializer, kernel_regularizer)
        self.kernel_initializer = kernel_initializer
        self.kernel_regularizer = kernel_regularizer
        self.encoder_options = dict(encoder)
        self.task_weight_rate = float(task_weight_rate)
        self.freeze_encoder = bool(freeze_encoder)
        self.encoder = build_encoder(self.encoder_options, kernel_options(self))
        self.encoder.trainable = not self.freeze_encoder
        self.towers = {t: tf.keras.layers.Dense(1, name=f"{t}_tower", **kernel_options(self)) for t in self.tasks}
        # Every replica computes the same update from all-reduced gradients: the first one's is kept.
        self.lambdas = tf.Variable(
            [self.task_weights[t] for t in self.tasks],
            trainable=False,
            name="task_lambdas",
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        if self.task_weight_rate:
            self.track_loss_terms([VALIDATION_SURROGATE])

    @property
    def persistent_tape(self) -> bool:
        return bool(self.task_weight_rate)

    def user_embedding(self, features, training=False) -> tf.Tensor:
        """H = MaxPooling(h_o), [batch, units], float32 under every dtype policy (served)."""
        sequence = self.encoder(features, training=training)  # [batch, L, d]
        return tf.cast(masked_max_pool(sequence, self.encoder.padding_mask(features)), tf.float32)

    def task_logits(self, features, training=False):
        user = self.user_embedding(features, training=training)  # [batch, d]
        return {t: tf.squeeze(self.towers[t](user), axis=-1) for t in self.tasks}  # [batch] each

    def current_task_weights(self) -> dict[str, float]:
        return dict(zip(self.tasks, self.lambdas.numpy().tolist()))

    def load_encoder(self, checkpoint_path: str) -> None:
        """Restores the encoder of a `MaskedChannelPretrainer` checkpoint written by `tf.train.Checkpoint(encoder=...).write`."""
        tf.train.Checkpoint(encoder=self.encoder).read(checkpoint_path).assert_existing_objects_matched()

    def load_pretrainer_encoder(self, checkpoint_path: str) -> None:
        """Restores the encoder from a checkpoint of a whole `MaskedChannelPretrainer`
        saved as `tf.train.Checkpoint(model=pretrainer, ...)` (a pre-training run's
        checkpoints); its output heads and optimizer are left out."""
        status = tf.train.Checkpoint(model=tf.train.Checkpoint(encoder=self.encoder)).read(checkpoint_path)
        status.assert_existing_objects_matched().expect_partial()

    def task_loss_weights(self):
        return {t: self.lambdas[i] for i, t in enumerate(self.tasks)}

    def loss_terms(self, inputs, training=False):
        """The task terms, lambda-weighted (eq. 9); with AUC-driven weights and a
        (training, validation) pair of batches, also the validation surrogate S, which
        only steers lambda (`before_update`) and is logged."""
        if not (self.task_weight_rate and isinstance(inputs, tuple) and len(inputs) == 2):
            return super().loss_terms(inputs, training=training)
        train, (val_features, val_labels, val_masks) = inputs
        terms = dict(super().loss_terms(train, training=training))
        val_logits = self.float32_task_logits(val_features, training=False)
        surrogate = tf.add_n([pairwise_hinge_auc_loss(val_logits[t], val_labels[t], val_masks[t]) for t in self.tasks])
        terms[VALIDATION_SURROGATE] = LossTerm(surrogate, weight=0.0, replica_mean=True)
        return terms

    def before_update(self, tape, terms, variables):
        """Eq. 10's step on lambda, from the alignment of the validation surrogate's
        gradient with each task's (both summed over the replicas, as on one device)."""
        if VALIDATION_SURROGATE not in terms:
            return {f"lambda_{t}": self.lambdas[i] for i, t in enumerate(self.tasks)} if self.task_weight_rate else {}

        def global_gradient(value, scale=1.0):
            # (The tape holds `value` itself: anything computed from it here is unrecorded.)
            gradients = tape.gradient(value, variables, unconnected_gradients="zero")
            return [sum_over_replicas(scale * tf.convert_to_tensor(g)) for g in gradients]  # dense: embedding rows too

        # The surrogate is a mean over the replica's pairs: the replicas' gradients average.
        validation = global_gradient(terms[VALIDATION_SURROGATE].value, 1.0 / num_replicas())
        alignment = tf.stack(
            [
                tf.add_n([tf.reduce_sum(a * b) for a, b in zip(validation, global_gradient(terms[t].value))])
                for t in self.tasks
            ]
        )  # [tasks]
        step = self.task_weight_rate * alignment / tf.maximum(tf.reduce_max(tf.abs(alignment)), 1e-12)
        lambdas = self.lambdas * tf.exp(step)
        self.lambdas.assign(lambdas * len(self.tasks) / tf.reduce_sum(lambdas))
        # lambda after this step, per task: `fit`'s logs (and a run's history) trace the weights.
        return {f"lambda_{t}": self.lambdas[i] for i, t in enumerate(self.tasks)}

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": dict(self.encoder_options),
            "task_weight_rate": self.task_weight_rate,
            "freeze_encoder": self.freeze_encoder,
            **kernel_options_config(self),
        }
