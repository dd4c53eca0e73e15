"""What a training run needs to know about each kind of model.

A `ModelFamily` loads a run's data, builds its model, makes its `tf.data` inputs and
reports its metrics; `tfzoo.training.run` does the rest (run directory, checkpoints,
TensorBoard, NaN stop, resume) the same way for every family. A new kind of model (a
retrieval model over a graph, a pre-trained sequence model) adds a family and maps its
model names to it in `MODEL_FAMILIES`.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import Any, Callable, Mapping

import numpy as np
import tensorflow as tf

from tfzoo.data.behaviour_sequences import channel_columns, channel_sizes
from tfzoo.data.features import DatasetSpec
from tfzoo.data.friend_graph import FriendshipSplits
from tfzoo.data.pipeline import dataset_from_columns, make_dataset, model_columns
from tfzoo.data.registry import load_dataset
from tfzoo.evaluation.metrics import task_metrics
from tfzoo.evaluation.retrieval import DEFAULT_KS, recall_report
from tfzoo.graph.sampling import DEFAULT_FANOUTS, SubgraphSampler, directed_pairs
from tfzoo.models.registry import MODELS, build_model
from tfzoo.models.ssmtl import SSMTLRetrieval
from tfzoo.training.config import RunConfig

EVAL_BATCH_SIZE = 4096


@dataclasses.dataclass
class Prepared:
    """A run's model and data, ready to train or evaluate.

    Attributes:
      model: the compiled model, its variables built (so a checkpoint restores at once).
      inputs: JSON-able description of the model inputs (e.g. the fitted feature spec
        config); stored in `config.json` and handed back on resume, so a resumed or
        exported run sees exactly the statistics it was trained with.
      data: the family's splits.
      split: how the rows were split, reported with every result.
    """

    model: tf.keras.Model
    inputs: Mapping[str, Any]
    data: Any
    split: str


@dataclasses.dataclass
class FitData:
    """What `model.fit` consumes.

    `train` repeats forever from the run's first epoch (epoch-keyed shuffling makes a
    resumed run see the same batches as an uninterrupted one); `steps_per_epoch` says
    where each epoch ends.
    """

    train: tf.data.Dataset
    steps_per_epoch: int
    validation: tf.data.Dataset | None = None
    # Builds `train` again from plain (NumPy) data, so that `ParameterServerStrategy`
    # workers can each run it and take their share of its batches; without it, every
    # worker iterates a copy of `train` (each batch is then seen once per worker).
    train_fn: Callable[[], tf.data.Dataset] | None = None
    # For batches that cannot be split along a first dimension (a batch of subgraphs merged
    # into one GraphTensor): builds one input pipeline's stream of per-replica batches for
    # `tf.distribute.InputContext`. Every multi-replica or multi-worker strategy then feeds
    # each replica its own batches instead of splitting global ones.
    replica_fn: Callable[[tf.distribute.InputContext], tf.data.Dataset] | None = None


class ModelFamily(abc.ABC):
    """Base of the families: `prepare`, `datasets` and `report` are the contract.

    `metric_names` are the columns of the family's report tables.
    """

    metric_names: tuple[str, ...] = ("auc", "ap")

    @abc.abstractmethod
    def prepare(self, config: RunConfig, inputs: Mapping[str, Any] | None) -> Prepared:
        """Loads the data and builds the compiled model; `inputs` as stored by an earlier run."""

    @abc.abstractmethod
    def datasets(self, prepared: Prepared, config: RunConfig, *, initial_epoch: int = 0) -> FitData:
        """Training (from `initial_epoch` on) and validation data for `model.fit`."""

    @abc.abstractmethod
    def report(self, prepared: Prepared, split: str) -> dict:
        """Exact metrics of the prepared model on `split` ("train", "validation", "test")."""


class RankingFamily(ModelFamily):
    """Multi-task rankers (`tfzoo.models.MultiTaskModel`) over tabular datasets."""

    def prepare(self, config: RunConfig, inputs: Mapping[str, Any] | None) -> Prepared:
        data = load_dataset(config.dataset, path=config.data_path, tasks=config.tasks, split_seed=config.split_seed)
        spec = DatasetSpec.from_config(inputs) if inputs is not None else data.train.spec.fit(data.train.features)
        model = build_model(config.model, spec, tasks=config.tasks, options=config.model_options)
        model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
        sample = make_dataset(data.train.take(np.arange(min(2, len(data.train)))), spec, batch_size=2)
        model(next(iter(sample))[0])
        return Prepared(model=model, inputs=spec.to_config(), data=data, split=data.split)

    def datasets(self, prepared: Prepared, config: RunConfig, *, initial_epoch: int = 0) -> FitData:
        spec = DatasetSpec.from_config(prepared.inputs)
        rows = prepared.data.train
        columns = model_columns(rows, spec)

        def train_fn() -> tf.data.Dataset:
            return dataset_from_columns(columns, batch_size=config.batch_size, shuffle=True, seed=config.seed,
                                        repeat=True, first_epoch=initial_epoch)

        validation = make_dataset(prepared.data.validation, spec, batch_size=max(config.batch_size, EVAL_BATCH_SIZE))
        return FitData(train=train_fn(), steps_per_epoch=math.ceil(len(rows) / config.batch_size),
                       validation=validation, train_fn=train_fn)

    def report(self, prepared: Prepared, split: str) -> dict:
        spec = DatasetSpec.from_config(prepared.inputs)
        rows = getattr(prepared.data, split)
        predictions = prepared.model.predict(make_dataset(rows, spec, batch_size=EVAL_BATCH_SIZE, with_labels=False), verbose=0)
        return task_metrics(rows.labels, {t: np.asarray(p) for t, p in predictions.items()}, rows.label_masks)


def _channel_batches(rows, batch_size: int, *, labels: bool = True, shuffle_seed: int | None = None,
                     repeat: bool = False) -> tf.data.Dataset:
    columns = channel_columns(rows)
    dataset = tf.data.Dataset.from_tensor_slices((columns, rows.labels, rows.label_masks) if labels else columns)
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(rows), seed=shuffle_seed, reshuffle_each_iteration=True)
    return (dataset.repeat() if repeat else dataset).batch(batch_size)


class BehaviourSequenceFamily(ModelFamily):
    """SUPER-MoE fine-tuning over behaviour-sequence datasets (`tfzoo.data.behaviour_sequences`).

    `model_options` are `SuperMoE`'s: `encoder` (its hyper-parameters; the channels come
    from the data), `task_weights`, `task_weight_rate`, and optionally
    `pretrained_encoder`, a checkpoint of `MaskedChannelPretrainer.encoder` to start from.
    """

    def prepare(self, config: RunConfig, inputs: Mapping[str, Any] | None) -> Prepared:
        data = load_dataset(config.dataset, path=config.data_path, tasks=config.tasks, split_seed=config.split_seed)
        if inputs is None:
            sizes = channel_sizes(data.train)
            inputs = {"category_channels": sizes.category_channels, "id_channels": sizes.id_channels,
                      "dense_channels": sizes.dense_channels}
        options = dict(config.model_options)
        pretrained = options.pop("pretrained_encoder", None)
        options["encoder"] = {**dict(options.get("encoder", {})), **dict(inputs)}
        options["encoder"].setdefault("units", 32)
        model = build_model(config.model, data.train.spec, tasks=config.tasks, options=options)
        model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
        model(channel_columns(data.train.take(np.arange(min(2, len(data.train))))))
        if pretrained:
            model.load_encoder(pretrained)
        return Prepared(model=model, inputs=dict(inputs), data=data, split=data.split)

    def datasets(self, prepared: Prepared, config: RunConfig, *, initial_epoch: int = 0) -> FitData:
        rows = prepared.data.train
        with_validation = bool(prepared.model.task_weight_rate)

        def train_fn() -> tf.data.Dataset:  # NumPy rows only: parameter-server workers rebuild it
            train = _channel_batches(rows, config.batch_size, shuffle_seed=config.seed + initial_epoch, repeat=True)
            if with_validation:
                # The AUC-driven task weights take a validation batch with every training batch.
                train = tf.data.Dataset.zip((train, _channel_batches(prepared.data.validation, config.batch_size,
                                                                     shuffle_seed=config.seed, repeat=True)))
            return train

        validation = _channel_batches(prepared.data.validation, EVAL_BATCH_SIZE)
        return FitData(train=train_fn(), steps_per_epoch=math.ceil(len(rows) / config.batch_size),
                       validation=validation, train_fn=train_fn)

    def report(self, prepared: Prepared, split: str) -> dict:
        rows = getattr(prepared.data, split)
        predictions = prepared.model.predict(_channel_batches(rows, EVAL_BATCH_SIZE, labels=False), verbose=0)
        return task_metrics(rows.labels, {t: np.asarray(p) for t, p in predictions.items()}, rows.label_masks)


class FriendRetrievalFamily(ModelFamily):
    """Friend retrieval over a friend graph (`tfzoo.models.SSMTLRetrieval`).

    The dataset is a `FriendshipSplits` (`twitch`, `friend_graph`). Training batches are
    directed training friendships with k-hop subgraphs sampled around both users from the
    training graph; the report is Recall@K of the held-out friendships among all users
    (`tfzoo.evaluation.recall_report`), overall and on the low-degree slice. The model
    option `fanouts` (default `[10, 5]`) sets the sampling; the other options go to the
    model's constructor.
    """

    metric_names = tuple(f"recall@{k}" for k in DEFAULT_KS)

    def prepare(self, config: RunConfig, inputs: Mapping[str, Any] | None) -> Prepared:
        data = load_dataset(config.dataset, path=config.data_path, tasks=config.tasks, split_seed=config.split_seed)
        if not isinstance(data, FriendshipSplits):
            raise ValueError(f"{config.model} trains on a friend graph dataset (twitch, friend_graph). "
                             f"Received: dataset={config.dataset!r}")
        options = dict(config.model_options)
        fanouts = [int(f) for f in options.pop("fanouts", DEFAULT_FANOUTS)]
        inputs = dict(inputs) if inputs is not None else {
            "dataset": config.dataset, "data_path": config.data_path, "split_seed": config.split_seed,
            "fanouts": fanouts, "feature_dim": data.graph.features.dim}
        model = SSMTLRetrieval(feature_dim=inputs["feature_dim"], **options)
        model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
        # One loss evaluation builds every objective's layers, so a checkpoint restores at once.
        sampler = SubgraphSampler(data.train, fanouts=inputs["fanouts"], seed=config.seed)
        model.build_objectives(next(iter(sampler.friendship_dataset(directed_pairs(data.train.edges[:2]), batch_size=2))))
        return Prepared(model=model, inputs=inputs, data=data, split=data.split)

    def datasets(self, prepared: Prepared, config: RunConfig, *, initial_epoch: int = 0) -> FitData:
        data = prepared.data
        pairs = directed_pairs(data.train.edges)

        def replica_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
            # Each input pipeline (worker) takes its share of the pairs, in per-replica
            # batches; the sampler's seed differs per pipeline so that they draw independently.
            # A new sampler: its graph tensors are built from the NumPy graph inside the
            # caller's trace, so a parameter-server worker holds its own copy. Epochs follow
            # each other without end, so every batch is full anyway; an unknown batch size
            # lets the parameter-server coordinator build placeholder GraphTensors (TF-GNN
            # cannot make an empty value of a fixed size).
            sampler = SubgraphSampler(data.train, fanouts=prepared.inputs["fanouts"],
                                      seed=config.seed + 1000 * context.input_pipeline_id)
            own = pairs[context.input_pipeline_id::context.num_input_pipelines]
            return sampler.friendship_dataset(own, batch_size=context.get_per_replica_batch_size(config.batch_size),
                                              shuffle_seed=config.seed, repeat=True, first_epoch=initial_epoch,
                                              drop_remainder=False)

        sampler = SubgraphSampler(data.train, fanouts=prepared.inputs["fanouts"], seed=config.seed)
        train = sampler.friendship_dataset(pairs, batch_size=config.batch_size, shuffle_seed=config.seed, repeat=True,
                                           first_epoch=initial_epoch)
        validation = sampler.friendship_dataset(directed_pairs(data.validation), batch_size=config.batch_size)
        return FitData(train=train, steps_per_epoch=max(1, len(pairs) // config.batch_size),
                       validation=validation, replica_fn=replica_fn)

    def report(self, prepared: Prepared, split: str) -> dict:
        data = prepared.data
        if split not in ("validation", "test"):
            raise ValueError(f"Friend retrieval is evaluated on held-out friendships: `split` must be 'validation' or "
                             f"'test'. Received: split={split!r}")
        other = data.test if split == "validation" else data.validation
        # A fixed sampling seed: the same checkpoint always gets the same report.
        sampler = SubgraphSampler(data.train, fanouts=prepared.inputs["fanouts"], seed=0)
        users = np.arange(data.train.num_users)
        embeddings = prepared.model.predict(sampler.user_dataset(users, batch_size=EVAL_BATCH_SIZE // 8), verbose=0)
        return recall_report(np.asarray(embeddings), data.held_out(split), train_edges=data.train.edges,
                             exclude_edges=[other])


FAMILIES: dict[str, ModelFamily] = {
    "ranking": RankingFamily(),
    "behaviour_sequences": BehaviourSequenceFamily(),
    "friend_retrieval": FriendRetrievalFamily(),
}
MODEL_FAMILIES: dict[str, str] = {**{name: "ranking" for name in MODELS}, "supermoe": "behaviour_sequences",
                                  "ssmtl": "friend_retrieval"}


def family_for(model: str) -> ModelFamily:
    if model not in MODEL_FAMILIES:
        raise ValueError(f"Unknown model {model!r}; choose one of {sorted(MODEL_FAMILIES)}.")
    return FAMILIES[MODEL_FAMILIES[model]]
