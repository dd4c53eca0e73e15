"""What a training run needs to know about each kind of model.

A `ModelFamily` loads a run's data, builds its model, makes its `tf.data` inputs and
reports its metrics; `tfzoo.training.run` does the rest (run directory, checkpoints,
TensorBoard, NaN stop, resume) the same way for every family. A new kind of model (a
retrieval model over a graph, a pre-trained sequence model) adds a family and maps its
model names to it in `tfzoo.training.registry.TASKS`.
"""

from __future__ import annotations

import abc
import dataclasses
import inspect
import json
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from tfzoo.data.behaviour_sequences import ChannelSizes, bag_features, channel_columns, channel_sizes
from tfzoo.data.features import DatasetSpec
from tfzoo.data.friend_graph import FriendshipSplits
from tfzoo.data.pipeline import dataset_from_columns, make_dataset, model_columns
from tfzoo.data.registry import (
    BEHAVIOUR_SEQUENCE_DATASETS,
    DATASETS,
    FRIEND_GRAPH_DATASETS,
    check_dataset,
    load_dataset,
)
from tfzoo.evaluation.fusion import check_fusion, fused_reports
from tfzoo.evaluation.heuristics import heuristic_reports
from tfzoo.evaluation.logistic import task_logistic_regressions
from tfzoo.evaluation.metrics import task_metrics
from tfzoo.evaluation.retrieval import DEFAULT_KS, recall_report
from tfzoo.graph.sampling import DEFAULT_FANOUTS, SubgraphSampler, directed_pairs
from tfzoo.layers.moe_sequence_encoder import MoESequenceEncoder
from tfzoo.models.registry import MODELS, build_model
from tfzoo.models.ssmtl import SSMTLRetrieval, calibrated_weights, encoder_gradient_norms
from tfzoo.models.supermoe import MaskedChannelPretrainer
from tfzoo.training.config import RunConfig, make_optimizer
from tfzoo.training.registry import PRETRAINING, TASKS, task_for  # noqa: F401  (PRETRAINING re-exported)

EVAL_BATCH_SIZE = 4096
EVALUATION_BATCH = 512  # subgraphs per encoder call when friend retrieval embeds every user

# `tfzoo train ssmtl`'s model options where the user gives none (`bench/ssmtl_ablation.py
# --grid levers` measures what each one is worth); `id_buckets` defaults to one row per
# user of the graph; `fusion` names the heuristic the export adds to the model's score.
# `cca_scale` / `mae_scale` set eq. 6's beta / gamma by calibration (`SSMTL_CALIBRATION`);
# an explicit `cca_weight` / `mae_weight` takes precedence.
SSMTL_DEFAULTS = {
    "readout": "concat",
    "message_passing": "to_root",
    "dropout": 0.2,
    "candidate_bias": True,
    "logq_correction": True,
    "cca_scale": 0.1,
    "mae_scale": 0.1,
    "ssl_batch_size": 32,
    "mae_decoder_dim": 64,
    "fusion": "adamic_adar",
}
# Batches over which the objectives' encoder-gradient norms are averaged at initialisation.
SSMTL_CALIBRATION_BATCHES = 8

# SUPER-MoE encoder hyper-parameters where the user gives none (the channels come from the data).
ENCODER_DEFAULTS = {"units": 32}
# `tfzoo pretrain supermoe`'s pre-trainer options where the user gives none.
MCP_DEFAULTS = {"masked_channels": ["item", "rating"], "mask_rate": 0.2, "num_sampled": 64}


def constructor_options(model_class: type, *, set_by_family: Iterable[str] = ()) -> tuple[str, ...]:
    """The keyword arguments that `model_class`'s constructor names, less those the family
    fills in itself (from the data or the run): the model options a user may give.
    Keras's own keyword arguments (`name`, `dtype`, ...) are not model options."""
    parameters = inspect.signature(model_class.__init__).parameters.values()
    named = (p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self")
    return tuple(sorted(set(named) - set(set_by_family)))


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
    # What the family computes once per prepared run and reuses (e.g. the evaluation subgraphs).
    cache: dict[str, Any] = dataclasses.field(default_factory=dict)


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

    `metric_names` are the columns of the family's report tables; `validation_metric` is
    the score that early stopping follows (`validation_score`, higher is better).
    """

    metric_names: tuple[str, ...] = ("auc", "ap")
    validation_metric: str = "val_mean_auc"
    # What a `RunConfig` (and `tfzoo train`) uses where it is given no value.
    run_defaults: Mapping[str, Any] = {"epochs": 5, "batch_size": 512, "patience": 3}
    # The model name of the family's pre-training runs, where `RunConfig.init_from` may
    # name one (`tfzoo train MODEL --init-from RUN`); None: the family has none.
    pretraining_model: str | None = None
    # The datasets (`tfzoo.data.DATASETS` names) whose rows the family's models read.
    accepted_datasets: tuple[str, ...] = ()

    @abc.abstractmethod
    def model_options(self, model: str) -> tuple[str, ...]:
        """The `RunConfig.model_options` keys that `model` takes (`tfzoo train --option KEY=VALUE`)."""

    def check(self, config: RunConfig) -> None:
        """Fails, before any data is read, on a dataset, data option or model option that
        `config.model` does not take; each error is one line naming what was received and
        what is accepted."""
        check_dataset(config.dataset, config.data_options)
        if config.dataset not in self.accepted_datasets:
            raise ValueError(
                f"Model {config.model!r} does not train on dataset {config.dataset!r}. "
                f"Received: dataset={config.dataset!r}. Accepted: {', '.join(self.accepted_datasets)}"
            )
        accepted = self.model_options(config.model)
        unknown = sorted(set(config.model_options) - set(accepted))
        if unknown:
            received = ", ".join(f"option={key!r}" for key in unknown)
            raise ValueError(
                f"Unknown option for model {config.model!r}. Received: {received}. Accepted: {', '.join(accepted)}"
            )

    @abc.abstractmethod
    def prepare(self, config: RunConfig, inputs: Mapping[str, Any] | None) -> Prepared:
        """Loads the data and builds the compiled model; `inputs` as stored by an earlier run."""

    @abc.abstractmethod
    def datasets(self, prepared: Prepared, config: RunConfig, *, initial_epoch: int = 0) -> FitData:
        """Training (from `initial_epoch` on) and validation data for `model.fit`."""

    @abc.abstractmethod
    def report(self, prepared: Prepared, split: str) -> dict:
        """Exact metrics of the prepared model on `split` ("train", "validation", "test")."""

    def validation_score(self, prepared: Prepared) -> float:
        """The early-stopping score: exact validation AUC, averaged over the tasks."""
        report = self.report(prepared, "validation")
        return float(np.mean([metrics["auc"] for metrics in report.values()]))

    def baselines(self, prepared: Prepared, split: str) -> dict[str, dict]:
        """{name: report} of the strong simple baselines of the family on `split`, in the
        shape of `report` (none by default)."""
        return {}

    def fused_reports(self, prepared: Prepared, *, per_user: bool = False) -> dict | None:
        """Where the family's export serves the model's score fused with a baseline's
        (`tfzoo.evaluation.fusion`): the fusion chosen on validation and its validation and
        test reports; None where it serves the model alone (the default)."""
        return None


class RankingFamily(ModelFamily):
    """Multi-task rankers (`tfzoo.models.MultiTaskModel`) over tabular datasets."""

    # Every dataset of tabular rows; behaviour sequences are read as their flat features.
    accepted_datasets = tuple(name for name in DATASETS if name not in FRIEND_GRAPH_DATASETS)

    def model_options(self, model: str) -> tuple[str, ...]:
        return constructor_options(MODELS[model], set_by_family=("feature_spec", "tasks"))

    def prepare(self, config: RunConfig, inputs: Mapping[str, Any] | None) -> Prepared:
        data = load_dataset(
            config.dataset,
            path=config.data_path,
            tasks=config.tasks,
            split_seed=config.split_seed,
            options=config.data_options,
        )
        spec = DatasetSpec.from_config(inputs) if inputs is not None else data.train.spec.fit(data.train.features)
        model = build_model(config.model, spec, tasks=config.tasks, options=config.model_options)
        model.compile(optimizer=make_optimizer(config, math.ceil(len(data.train) / config.batch_size)))
        sample = make_dataset(data.train.take(np.arange(min(2, len(data.train)))), spec, batch_size=2)
        model(next(iter(sample))[0])
        return Prepared(model=model, inputs=spec.to_config(), data=data, split=data.split)

    def datasets(self, prepared: Prepared, config: RunConfig, *, initial_epoch: int = 0) -> FitData:
        spec = DatasetSpec.from_config(prepared.inputs)
        rows = prepared.data.train
        columns = model_columns(rows, spec)

        def train_fn() -> tf.data.Dataset:
            return dataset_from_columns(
                columns,
                batch_size=config.batch_size,
                shuffle=True,
                seed=config.seed,
                repeat=True,
                first_epoch=initial_epoch,
            )

        validation = make_dataset(prepared.data.validation, spec, batch_size=max(config.batch_size, EVAL_BATCH_SIZE))
        return FitData(
            train=train_fn(),
            steps_per_epoch=math.ceil(len(rows) / config.batch_size),
            validation=validation,
            train_fn=train_fn,
        )

    def predictions(self, prepared: Prepared, split: str) -> dict[str, np.ndarray]:
        """{task: probability [rows]} of the prepared model on `split`, in row order."""
        spec = DatasetSpec.from_config(prepared.inputs)
        rows = getattr(prepared.data, split)
        predictions = prepared.model.predict(
            make_dataset(rows, spec, batch_size=EVAL_BATCH_SIZE, with_labels=False), verbose=0
        )
        return {t: np.asarray(p) for t, p in predictions.items()}

    def report(self, prepared: Prepared, split: str) -> dict:
        rows = getattr(prepared.data, split)
        return task_metrics(rows.labels, self.predictions(prepared, split), rows.label_masks)


def _channel_batches(
    rows, batch_size: int, *, labels: bool = True, shuffle_seed: int | None = None, repeat: bool = False
) -> tf.data.Dataset:
    columns = channel_columns(rows)
    dataset = tf.data.Dataset.from_tensor_slices((columns, rows.labels, rows.label_masks) if labels else columns)
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(rows), seed=shuffle_seed, reshuffle_each_iteration=True)
    return (dataset.repeat() if repeat else dataset).batch(batch_size)


def _channel_inputs(rows) -> dict[str, dict[str, int]]:
    """The encoder's channel arguments for behaviour-sequence rows."""
    sizes = channel_sizes(rows)
    return {
        "category_channels": sizes.category_channels,
        "id_channels": sizes.id_channels,
        "dense_channels": sizes.dense_channels,
    }


def _stored_run(directory: str | Path) -> dict:
    path = Path(directory) / "config.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} not found: is {directory} a tfzoo run directory?") from None


class BehaviourSequenceFamily(ModelFamily):
    """SUPER-MoE fine-tuning over behaviour-sequence datasets (`tfzoo.data.behaviour_sequences`).

    `model_options` are `SuperMoE`'s: `encoder` (its hyper-parameters; the channels come
    from the data), `task_weights`, `task_weight_rate`, and optionally
    `pretrained_encoder`, a checkpoint of `MaskedChannelPretrainer.encoder` to start from.

    `RunConfig.init_from` (`tfzoo train supermoe --init-from RUN`) starts from the encoder
    of a pre-training run (`tfzoo pretrain supermoe`, model `supermoe_mcp`): its best
    epoch (or its last), with its encoder hyper-parameters (an `encoder` option that
    contradicts them is an error). When both runs read the same dataset from the same
    place, they must split it alike, or the pre-training would have seen this run's
    validation and test rows.

    The baseline is logistic regression on the bag features of
    `tfzoo.data.behaviour_sequences.bag_features` (the window's items, its liked items,
    the target item, genre counts), one per task, C chosen on validation AUC.
    """

    pretraining_model = "supermoe_mcp"
    accepted_datasets = BEHAVIOUR_SEQUENCE_DATASETS

    def model_options(self, model: str) -> tuple[str, ...]:
        return tuple(
            sorted({*constructor_options(MODELS[model], set_by_family=("feature_spec", "tasks")), "pretrained_encoder"})
        )

    def prepare(self, config: RunConfig, inputs: Mapping[str, Any] | None) -> Prepared:
        data = load_dataset(
            config.dataset,
            path=config.data_path,
            tasks=config.tasks,
            split_seed=config.split_seed,
            options=config.data_options,
        )
        options = dict(config.model_options)
        pretrained = options.pop("pretrained_encoder", None)
        new_run = inputs is None
        if new_run:
            inputs = _channel_inputs(data.train)
            if config.init_from:
                # Stored with the run: reopening it (resume, evaluate, export) needs no pre-training run.
                inputs["encoder"] = self._pretrained_encoder_options(config, inputs)
        inputs = dict(inputs)
        channels = {k: v for k, v in inputs.items() if k != "encoder"}
        options["encoder"] = {
            **ENCODER_DEFAULTS,
            **dict(options.get("encoder", {})),
            **inputs.get("encoder", {}),
            **channels,
        }
        model = build_model(config.model, data.train.spec, tasks=config.tasks, options=options)
        model.compile(optimizer=make_optimizer(config, math.ceil(len(data.train) / config.batch_size)))
        model(channel_columns(data.train.take(np.arange(min(2, len(data.train))))))
        if new_run and pretrained:
            model.load_encoder(pretrained)
        if new_run and config.init_from:
            model.load_pretrainer_encoder(self._pretraining_checkpoint(config.init_from))
        return Prepared(model=model, inputs=inputs, data=data, split=data.split)

    def _pretrained_encoder_options(self, config: RunConfig, channels: Mapping[str, Any]) -> dict[str, Any]:
        """The encoder hyper-parameters of the pre-training run `config.init_from`, checked
        against this run (model, channels, split, the encoder options given)."""
        stored = _stored_run(config.init_from)
        run = stored["run"]
        if run["model"] != self.pretraining_model:
            raise ValueError(
                f"--init-from takes a {self.pretraining_model} run (`tfzoo pretrain {config.model}`); "
                f"{config.init_from} is a {run['model']} run."
            )
        if dict(stored["inputs"]) != dict(channels):
            raise ValueError(
                f"The pre-training run {config.init_from} has other channels than this data: "
                f"{stored['inputs']} vs {dict(channels)}."
            )
        if (run["dataset"], run["data_path"]) == (config.dataset, config.data_path) and (
            run["split_seed"],
            run["data_options"],
        ) != (config.split_seed, dict(config.data_options)):
            raise ValueError(
                f"The pre-training run {config.init_from} split {config.dataset} differently (split_seed "
                f"{run['split_seed']}, data options {run['data_options']}; here {config.split_seed}, "
                f"{dict(config.data_options)}): it may have trained on this run's validation or test rows."
            )
        # Every hyper-parameter of the pre-trained encoder, defaults included, so that an
        # option given here is checked against what the pre-training really used.
        built = MoESequenceEncoder(
            **{**ENCODER_DEFAULTS, **dict(run["model_options"].get("encoder", {})), **dict(channels)}
        ).get_config()
        base = set(tf.keras.layers.Layer().get_config())  # name, trainable, dtype
        encoder = {k: v for k, v in built.items() if k not in base and k not in channels}
        given = dict(config.model_options.get("encoder", {}))
        conflicts = {k: (v, encoder.get(k)) for k, v in given.items() if k not in channels and encoder.get(k) != v}
        if conflicts:
            raise ValueError(
                f"Encoder options contradict the pre-trained encoder of {config.init_from} "
                f"(given, pre-trained): {conflicts}"
            )
        return encoder

    @staticmethod
    def _pretraining_checkpoint(directory: str | Path) -> str:
        """The best epoch of a pre-training run, or its last checkpoint without early stopping."""
        from tfzoo.training.run import BEST_DIR  # the run module builds on this one

        path = tf.train.latest_checkpoint(str(Path(directory) / BEST_DIR)) or tf.train.latest_checkpoint(
            str(Path(directory) / "checkpoints")
        )
        if path is None:
            raise FileNotFoundError(f"{directory} holds no checkpoint: the pre-training never finished an epoch.")
        return path

    def datasets(self, prepared: Prepared, config: RunConfig, *, initial_epoch: int = 0) -> FitData:
        rows = prepared.data.train
        with_validation = bool(prepared.model.task_weight_rate)

        def train_fn() -> tf.data.Dataset:  # NumPy rows only: parameter-server workers rebuild it
            train = _channel_batches(rows, config.batch_size, shuffle_seed=config.seed + initial_epoch, repeat=True)
            if with_validation:
                # The AUC-driven task weights take a validation batch with every training batch.
                train = tf.data.Dataset.zip(
                    (
                        train,
                        _channel_batches(
                            prepared.data.validation, config.batch_size, shuffle_seed=config.seed, repeat=True
                        ),
                    )
                )
            return train

        validation = _channel_batches(prepared.data.validation, EVAL_BATCH_SIZE)
        return FitData(
            train=train_fn(),
            steps_per_epoch=math.ceil(len(rows) / config.batch_size),
            validation=validation,
            train_fn=train_fn,
        )

    def predictions(self, prepared: Prepared, split: str) -> dict[str, np.ndarray]:
        """{task: probability [rows]} of the prepared model on `split`, in row order."""
        rows = getattr(prepared.data, split)
        predictions = prepared.model.predict(_channel_batches(rows, EVAL_BATCH_SIZE, labels=False), verbose=0)
        return {t: np.asarray(p) for t, p in predictions.items()}

    def report(self, prepared: Prepared, split: str) -> dict:
        rows = getattr(prepared.data, split)
        return task_metrics(rows.labels, self.predictions(prepared, split), rows.label_masks)

    def baseline_predictions(self, prepared: Prepared, split: str) -> dict[str, dict[str, np.ndarray]]:
        """{"logistic_regression": {task: logit [rows]}} on `split`: logistic regression on
        the bag features, one per task, fitted once per prepared run (C on validation)."""
        data, tasks = prepared.data, list(prepared.model.tasks)
        sizes = ChannelSizes.from_channels(**{k: v for k, v in prepared.inputs.items() if k != "encoder"})
        models = prepared.cache.get("logistic_regression")
        if models is None:
            train, validation = data.train, data.validation
            models = task_logistic_regressions(
                bag_features(train, sizes),
                train.labels,
                train.label_masks,
                bag_features(validation, sizes),
                validation.labels,
                validation.label_masks,
                tasks,
            )
            prepared.cache["logistic_regression"] = models
        x = bag_features(getattr(data, split), sizes)
        return {"logistic_regression": {t: models[t].decision_function(x) for t in tasks}}

    def baselines(self, prepared: Prepared, split: str) -> dict[str, dict]:
        rows = getattr(prepared.data, split)
        reports = {}
        for name, predictions in self.baseline_predictions(prepared, split).items():
            reports[name] = task_metrics(rows.labels, predictions, rows.label_masks)
        for task, model in prepared.cache["logistic_regression"].items():
            reports["logistic_regression"][task]["c"] = model.c
        return reports


class BehaviourPretrainingFamily(ModelFamily):
    """Masked channel prediction pre-training of the SUPER-MoE encoder
    (`tfzoo.models.MaskedChannelPretrainer`; model `supermoe_mcp`, `tfzoo pretrain supermoe`).

    Trains on the features of the training split only (labels unused); validation and
    test report, per predicted channel, the full-softmax loss and accuracy at masked
    steps of held-out sequences (the same steps at every evaluation). Early stopping
    follows minus the validation MCP loss. The baseline predicts each channel's training
    frequencies (add-one smoothed), which ignores the context: the loss to beat.

    `model_options` are the pre-trainer's (`MCP_DEFAULTS` where not given): `encoder`
    (hyper-parameters; the channels come from the data), `masked_channels`,
    `mask_rate`, `num_sampled`, `channel_weights`; the masking seed is the run's seed.
    `tfzoo train supermoe --init-from RUN` fine-tunes from the run's encoder.
    """

    metric_names = ("loss", "accuracy")
    validation_metric = "val_minus_mcp_loss"
    run_defaults = {"epochs": 5, "batch_size": 256, "patience": 2}
    accepted_datasets = BEHAVIOUR_SEQUENCE_DATASETS

    def model_options(self, model: str) -> tuple[str, ...]:
        return constructor_options(MaskedChannelPretrainer)

    def prepare(self, config: RunConfig, inputs: Mapping[str, Any] | None) -> Prepared:
        data = load_dataset(
            config.dataset,
            path=config.data_path,
            tasks=config.tasks,
            split_seed=config.split_seed,
            options=config.data_options,
        )
        inputs = dict(inputs) if inputs is not None else _channel_inputs(data.train)
        options = {**MCP_DEFAULTS, "seed": config.seed, **config.model_options}
        options["encoder"] = {**ENCODER_DEFAULTS, **dict(options.get("encoder", {})), **inputs}
        model = MaskedChannelPretrainer(**options)
        model.compile(optimizer=make_optimizer(config, math.ceil(len(data.train) / config.batch_size)))
        # A call builds the model, one loss evaluation every head: a checkpoint restores at once.
        sample = channel_columns(data.train.take(np.arange(min(8, len(data.train)))))
        model(sample)
        model.loss_terms(sample, training=False)
        model.reset_metrics()
        return Prepared(model=model, inputs=inputs, data=data, split=data.split)

    def datasets(self, prepared: Prepared, config: RunConfig, *, initial_epoch: int = 0) -> FitData:
        rows = prepared.data.train

        def train_fn() -> tf.data.Dataset:
            return _channel_batches(
                rows, config.batch_size, labels=False, shuffle_seed=config.seed + initial_epoch, repeat=True
            )

        validation = _channel_batches(prepared.data.validation, EVAL_BATCH_SIZE, labels=False)
        return FitData(
            train=train_fn(),
            steps_per_epoch=math.ceil(len(rows) / config.batch_size),
            validation=validation,
            train_fn=train_fn,
        )

    def report(self, prepared: Prepared, split: str) -> dict:
        model = prepared.model
        rows = getattr(prepared.data, split)
        result = model.evaluate(_channel_batches(rows, EVAL_BATCH_SIZE, labels=False), return_dict=True, verbose=0)
        return {
            c: {"loss": float(result[f"{c}_loss"]), "accuracy": float(result[f"{c}_accuracy"])}
            for c in model.masked_channels
        }

    def validation_score(self, prepared: Prepared) -> float:
        report = self.report(prepared, "validation")
        return -float(sum(prepared.model.channel_weights[c] * m["loss"] for c, m in report.items()))

    def baselines(self, prepared: Prepared, split: str) -> dict[str, dict]:
        """Each channel predicted by its training frequencies, at every step with a known value."""
        model, data = prepared.model, prepared.data
        report = {}
        for channel in model.masked_channels:
            size = model.vocabularies[channel]

            def known(rows, channel=channel, size=size):
                ids = np.asarray(rows.features[channel]).ravel()
                return ids[(ids > 0) & (ids < size)]

            counts = np.bincount(known(data.train), minlength=size)[1:] + 1.0  # values 1 .. size - 1
            log_probability = np.log(counts / counts.sum())
            targets = known(getattr(data, split)) - 1
            report[channel] = {
                "loss": float(-log_probability[targets].mean()),
                "accuracy": float((targets == np.argmax(counts)).mean()),
            }
        return {"frequency": report}


class FriendRetrievalFamily(ModelFamily):
    """Friend retrieval over a friend graph (`tfzoo.models.SSMTLRetrieval`).

    The dataset is a `FriendshipSplits` (`twitch`, `friend_graph`). Training batches are
    directed training friendships with k-hop subgraphs sampled around both users from the
    training graph; the report is Recall@K of the held-out friendships among all users
    (`tfzoo.evaluation.recall_report`), overall and on the low-degree slice, from the
    vectors the export serves (`SSMTLRetrieval.user_vectors`, the same sampling seed).
    The baselines are the link-prediction heuristics of `tfzoo.evaluation.heuristics`.

    Model options: `fanouts` (default `[10, 5]`) sets the sampling,
    `uniform_negatives` (default 0) adds uniformly drawn negatives to every batch and
    `fusion` (default `adamic_adar`; `none` to serve the model alone) names the
    neighbourhood heuristic whose score the export adds to the model's, with the weight
    chosen on validation after training (`fused_reports`); the others go to the model's
    constructor, over `SSMTL_DEFAULTS` (with `id_buckets` one per user).
    """

    metric_names = tuple(f"recall@{k}" for k in DEFAULT_KS)
    validation_metric = "val_recall@50"
    # In-batch negatives: 256 pairs per batch; the model peaks after a few epochs, so at
    # most 12, stopping 2 epochs after the best (docs/ssmtl.md).
    run_defaults = {"epochs": 12, "batch_size": 256, "patience": 2}
    accepted_datasets = FRIEND_GRAPH_DATASETS
    # Options of the run rather than of the model's constructor (see the class docstring).
    run_options = ("fanouts", "uniform_negatives", "cca_scale", "mae_scale", "fusion")

    def model_options(self, model: str) -> tuple[str, ...]:
        return tuple(sorted({*constructor_options(SSMTLRetrieval, set_by_family=("feature_dim",)), *self.run_options}))

    def prepare(self, config: RunConfig, inputs: Mapping[str, Any] | None) -> Prepared:
        data = load_dataset(
            config.dataset,
            path=config.data_path,
            tasks=config.tasks,
            split_seed=config.split_seed,
            options=config.data_options,
        )
        options = {**SSMTL_DEFAULTS, "id_buckets": data.graph.num_users, **config.model_options}
        fanouts = [int(f) for f in options.pop("fanouts", DEFAULT_FANOUTS)]
        uniform_negatives = int(options.pop("uniform_negatives", 0))
        fusion = self._fusion_heuristic(options.pop("fusion"))
        scales = {name: options.pop(f"{name}_scale") for name in ("cca", "mae") if f"{name}_scale" in options}
        # One sampler for the calibration batches and the training stream: building and
        # tracing a sampler costs seconds, sampling with it milliseconds.
        sampler = SubgraphSampler(data.train, fanouts=fanouts, seed=config.seed)
        first_batches = sampler.friendship_dataset(
            directed_pairs(data.train.edges),
            batch_size=config.batch_size,
            shuffle_seed=config.seed,
            uniform_negatives=uniform_negatives,
        ).take(SSMTL_CALIBRATION_BATCHES)
        if inputs is None:
            # A new run: the calibrated weights are computed once and stored with the run.
            options.update(self._calibrated_weights(config, options, scales, first_batches, data.graph.features.dim))
            inputs = {
                "dataset": config.dataset,
                "data_path": config.data_path,
                "split_seed": config.split_seed,
                "data_options": dict(config.data_options),
                "fanouts": fanouts,
                "uniform_negatives": uniform_negatives,
                "fusion": fusion or "none",
                "feature_dim": data.graph.features.dim,
                "model_options": options,
                "calibration_scales": scales,
            }
        model = SSMTLRetrieval(feature_dim=inputs["feature_dim"], **inputs.get("model_options", options))
        steps_per_epoch = max(1, 2 * data.train.num_friendships // config.batch_size)
        model.compile(optimizer=make_optimizer(config, steps_per_epoch))
        # One loss evaluation builds every objective's layers, so a checkpoint restores at once.
        model.build_objectives(next(iter(first_batches)))
        return Prepared(model=model, inputs=inputs, data=data, split=data.split, cache={"train_sampler": sampler})

    @staticmethod
    def _calibrated_weights(
        config: RunConfig, options: dict, scales: dict, batches: tf.data.Dataset, feature_dim: int
    ) -> dict[str, float]:
        """`cca_weight` / `mae_weight` from their scales (`calibrated_weights`: scale x
        retrieval's encoder-gradient norm over the objective's, at initialisation), for
        the objectives the user gave no explicit weight."""
        wanted = {name: scale for name, scale in scales.items() if f"{name}_weight" not in config.model_options}
        if not any(wanted.values()):
            return {f"{name}_weight": 0.0 for name in wanted}
        norms = encoder_gradient_norms({**options, "feature_dim": feature_dim}, batches)
        weights = calibrated_weights(norms, cca=wanted.get("cca", 0.0), mae=wanted.get("mae", 0.0))
        return {f"{name}_weight": weights[f"{name}_weight"] for name in wanted}

    def datasets(self, prepared: Prepared, config: RunConfig, *, initial_epoch: int = 0) -> FitData:
        data = prepared.data
        pairs = directed_pairs(data.train.edges)
        negatives = int(prepared.inputs.get("uniform_negatives", 0))

        def replica_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
            # Each input pipeline (worker) takes its share of the pairs, in per-replica
            # batches; the sampler's seed differs per pipeline so that they draw independently.
            # A new sampler: its graph tensors are built from the NumPy graph inside the
            # caller's trace, so a parameter-server worker holds its own copy. Epochs follow
            # each other without end, so every batch is full anyway; an unknown batch size
            # lets the parameter-server coordinator build placeholder GraphTensors (TF-GNN
            # cannot make an empty value of a fixed size).
            sampler = SubgraphSampler(
                data.train, fanouts=prepared.inputs["fanouts"], seed=config.seed + 1000 * context.input_pipeline_id
            )
            own = pairs[context.input_pipeline_id :: context.num_input_pipelines]
            return sampler.friendship_dataset(
                own,
                batch_size=context.get_per_replica_batch_size(config.batch_size),
                shuffle_seed=config.seed,
                repeat=True,
                first_epoch=initial_epoch,
                drop_remainder=False,
                uniform_negatives=negatives,
            )

        train = prepared.cache["train_sampler"].friendship_dataset(
            pairs,
            batch_size=config.batch_size,
            shuffle_seed=config.seed,
            repeat=True,
            first_epoch=initial_epoch,
            uniform_negatives=negatives,
        )
        # No Keras validation pass: its in-batch loss is noisy and costs a sampled epoch of
        # validation pairs; early stopping follows the exact validation Recall@50 instead.
        return FitData(train=train, steps_per_epoch=max(1, len(pairs) // config.batch_size), replica_fn=replica_fn)

    def user_vectors(self, prepared: Prepared) -> tuple[np.ndarray, np.ndarray]:
        """([users, d], [users, d]) every user's query and candidate vectors from the
        training graph, from subgraphs sampled as the export samples them. The subgraphs
        are sampled once per run and reused, so that every epoch's validation score and
        the final reports see the same ones (epochs differ by their weights only)."""
        subgraphs = prepared.cache.get("evaluation_subgraphs")
        if subgraphs is None:
            sampler = SubgraphSampler(prepared.data.train, fanouts=prepared.inputs["fanouts"], seed=0)
            users = np.arange(prepared.data.train.num_users)
            subgraphs = [
                sampler(tf.constant(users[start : start + EVALUATION_BATCH]))
                for start in range(0, len(users), EVALUATION_BATCH)
            ]
            prepared.cache["evaluation_subgraphs"] = subgraphs
        return prepared.model.vectors(subgraphs)

    def report(self, prepared: Prepared, split: str, *, per_user: bool = False) -> dict:
        data = prepared.data
        queries, candidates = self.user_vectors(prepared)
        return recall_report(
            queries,
            data.held_out(self._held_out(split)),
            train_edges=data.train.edges,
            exclude_edges=[self._other(data, split)],
            candidate_embeddings=candidates,
            slices=self._slices(data),
            per_user=per_user,
        )

    def validation_score(self, prepared: Prepared) -> float:
        return float(self.report(prepared, "validation")["all"]["recall@50"])

    def fused_reports(self, prepared: Prepared, *, per_user: bool = False) -> dict | None:
        """The run's `fusion` heuristic fused with the model's score, the weight chosen on
        validation Recall@50 (`tfzoo.evaluation.fusion.fused_reports`); None with
        `fusion=none`. A run stored before the option existed takes the default."""
        heuristic = self._fusion_heuristic(prepared.inputs.get("fusion", SSMTL_DEFAULTS["fusion"]))
        if heuristic is None:
            return None
        data = prepared.data
        queries, candidates = self.user_vectors(prepared)
        return fused_reports(
            queries,
            candidates,
            heuristic=heuristic,
            train_edges=data.train.edges,
            validation=data.validation,
            test=data.test,
            slices=self._slices(data),
            per_user=per_user,
        )

    @staticmethod
    def _fusion_heuristic(value: str | None) -> str | None:
        heuristic = None if value in (None, "none") else value
        check_fusion(heuristic)
        return heuristic

    def baselines(self, prepared: Prepared, split: str, *, per_user: bool = False) -> dict[str, dict]:
        data = prepared.data
        return heuristic_reports(
            data.held_out(self._held_out(split)),
            train_edges=data.train.edges,
            num_users=data.train.num_users,
            exclude_edges=[self._other(data, split)],
            slices=self._slices(data),
            per_user=per_user,
        )

    @staticmethod
    def _slices(data: FriendshipSplits) -> dict[str, np.ndarray]:
        return {"cold_start": data.cold_start_users} if len(data.cold_start_users) else {}

    @staticmethod
    def _held_out(split: str) -> str:
        if split not in ("validation", "test"):
            raise ValueError(
                f"Friend retrieval is evaluated on held-out friendships: `split` must be 'validation' or "
                f"'test'. Received: split={split!r}"
            )
        return split

    @staticmethod
    def _other(data: FriendshipSplits, split: str) -> np.ndarray:
        return data.test if split == "validation" else data.validation


RANKING = RankingFamily()
BEHAVIOUR_SEQUENCES = BehaviourSequenceFamily()
BEHAVIOUR_PRETRAINING = BehaviourPretrainingFamily()
FRIEND_RETRIEVAL = FriendRetrievalFamily()

FAMILIES: dict[str, ModelFamily] = {
    "ranking": RANKING,
    "behaviour_sequences": BEHAVIOUR_SEQUENCES,
    "behaviour_pretraining": BEHAVIOUR_PRETRAINING,
    "friend_retrieval": FRIEND_RETRIEVAL,
}
MODEL_FAMILIES: dict[str, str] = {
    model: next(name for name, family in FAMILIES.items() if family is task_for(model)) for model in TASKS
}


def family_for(model: str) -> ModelFamily:
    return task_for(model)
