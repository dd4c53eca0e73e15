"""SUPER-MoE: masked channel prediction pre-training and multi-task fine-tuning over
behaviour sequences (`tfzoo.data.behaviour_sequences`)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from tfzoo.data.behaviour_sequences import (
    ChannelSizes,
    ItemTables,
    bag_features,
    channel_dataset,
    channel_sizes,
    example_channels,
)
from tfzoo.data.registry import BEHAVIOUR_SEQUENCE_DATASETS
from tfzoo.evaluation.logistic import task_logistic_regressions
from tfzoo.evaluation.metrics import task_metrics
from tfzoo.export.supermoe import export_supermoe
from tfzoo.layers.kernel_options import KERNEL_OPTIONS
from tfzoo.layers.moe_sequence_encoder import MoESequenceEncoder
from tfzoo.training.config import RunConfig, make_optimizer
from tfzoo.training.task import (
    EVAL_BATCH_SIZE,
    FitData,
    ModelTask,
    Prepared,
    TaskInputs,
    constructor_options,
    stored_run,
)

# What a fine-tuning run saves beside config.json: the item tables its export looks up.
ITEMS_FILE = "items.npz"
# SUPER-MoE encoder hyper-parameters where the user gives none (the channels come from the data).
ENCODER_DEFAULTS = {"units": 32}
# `tfzoo pretrain supermoe`'s pre-trainer options where the user gives none; the masked
# channels default to the item and the data's action channel (`rating` or `action`).
MCP_DEFAULTS = {"mask_rate": 0.2, "num_sampled": 64}


@dataclasses.dataclass(frozen=True)
class ChannelInputs(TaskInputs):
    """The channel sizes of the run's sequences (`MoESequenceEncoder`'s channel
    arguments), the model's tasks, and for a run fine-tuned from a pre-training
    (`--init-from`) the pre-trained encoder's hyper-parameters: a reopened run needs
    neither the data nor the pre-training run."""

    category_channels: Mapping[str, int]
    id_channels: Mapping[str, int]
    dense_channels: Mapping[str, int]
    tasks: tuple[str, ...] | None = None
    encoder: Mapping[str, Any] | None = None

    @classmethod
    def of(cls, rows, **fields) -> ChannelInputs:
        """The channel sizes of behaviour-sequence rows."""
        sizes = channel_sizes(rows)
        return cls(
            category_channels=sizes.category_channels,
            id_channels=sizes.id_channels,
            dense_channels=sizes.dense_channels,
            **fields,
        )

    @property
    def channels(self) -> dict[str, dict[str, int]]:
        return {
            "category_channels": dict(self.category_channels),
            "id_channels": dict(self.id_channels),
            "dense_channels": dict(self.dense_channels),
        }

    @property
    def sizes(self) -> ChannelSizes:
        return ChannelSizes.from_channels(**self.channels)


class SuperMoETask(ModelTask):
    """SUPER-MoE fine-tuning (`tfzoo.models.SuperMoE`) over behaviour-sequence datasets.

    `model_options` are `SuperMoE`'s: `encoder` (its hyper-parameters; the channels come
    from the data), `task_weights`, `task_weight_rate`, and optionally
    `pretrained_encoder`, a checkpoint of `MaskedChannelPretrainer.encoder` to start from.

    `RunConfig.init_from` (`tfzoo train supermoe --init-from RUN`) starts from the encoder
    of a pre-training run (`tfzoo pretrain supermoe`, model `supermoe_mcp`): its best
    epoch (or its last), with its encoder hyper-parameters (an `encoder` option that
    contradicts them is an error). When both runs read the same dataset from the same
    place, they must split it alike, or the pre-training would have seen this run's
    validation and test rows.

    The data is a named behaviour-sequence dataset or an event log's data config
    (`kind: events`, `tfzoo.data.events_config`). The baseline is logistic regression on
    the bag features of `tfzoo.data.behaviour_sequences.bag_features` (the window's
    items, its liked items, the target item, genre counts), one per task, C chosen on
    validation AUC. The run saves its `ItemTables` (`items.npz`); the export takes raw
    sequences (item ids, actions, timestamps, as the files name them), looks the other
    channels up in them, and serves the task probabilities and the user embedding
    (`tfzoo.export.supermoe`).
    """

    inputs_type = ChannelInputs
    pretraining_model = "supermoe_mcp"
    accepted_datasets = BEHAVIOUR_SEQUENCE_DATASETS
    data_config_kinds = ("events",)

    def model_options(self) -> tuple[str, ...]:
        return tuple(
            sorted(
                {*constructor_options(self.model_class, set_by_task=("feature_spec", "tasks")), "pretrained_encoder"}
            )
        )

    def prepare(self, config: RunConfig, inputs: ChannelInputs | None) -> Prepared:
        data = self.load_data(config)
        new_run = inputs is None
        if new_run:
            inputs = ChannelInputs.of(data.train, tasks=tuple(config.tasks or data.train.spec.labels))
            if config.init_from:
                # Stored with the run: reopening it (resume, evaluate, export) needs no pre-training run.
                inputs = dataclasses.replace(inputs, encoder=self._pretrained_encoder_options(config, inputs))
        model = self._model(config, inputs, steps_per_epoch=math.ceil(len(data.train) / config.batch_size))
        pretrained = config.model_options.get("pretrained_encoder")
        if new_run and pretrained:
            model.load_encoder(pretrained)
        if new_run and config.init_from:
            model.load_pretrainer_encoder(self._pretraining_checkpoint(config.init_from))
        return Prepared(model=model, inputs=inputs, data=data, split=data.split)

    def build(self, config: RunConfig, inputs: ChannelInputs, directory: Path) -> tf.keras.Model:
        return self._model(config, inputs, steps_per_epoch=1)

    def _model(self, config: RunConfig, inputs: ChannelInputs, *, steps_per_epoch: int) -> tf.keras.Model:
        options = {k: v for k, v in config.model_options.items() if k != "pretrained_encoder"}
        options["encoder"] = {
            **ENCODER_DEFAULTS,
            **dict(options.get("encoder", {})),
            **dict(inputs.encoder or {}),
            **inputs.channels,
        }
        tasks = inputs.tasks or config.tasks
        if not tasks:
            raise ValueError(
                f"The run's inputs name no tasks (stored before they were recorded): pass the run's tasks. "
                f"Received: tasks={config.tasks!r}"
            )
        model = self.model_class(tasks=list(tasks), **options)
        model.compile(optimizer=make_optimizer(config, steps_per_epoch))
        model(example_channels(inputs.sizes))  # builds every variable: a checkpoint restores at once
        return model

    def _pretrained_encoder_options(self, config: RunConfig, inputs: ChannelInputs) -> dict[str, Any]:
        """The encoder hyper-parameters of the pre-training run `config.init_from`, checked
        against this run (model, channels, split, the encoder options given)."""
        stored = stored_run(config.init_from)
        run = stored["run"]
        if run["model"] != self.pretraining_model:
            raise ValueError(
                f"--init-from takes a {self.pretraining_model} run (`tfzoo pretrain {config.model}`); "
                f"{config.init_from} is a {run['model']} run."
            )
        channels = inputs.channels
        pretrained_channels = ChannelInputs.from_config(stored["inputs"]).channels
        if pretrained_channels != channels:
            raise ValueError(
                f"The pre-training run {config.init_from} has other channels than this data: "
                f"{pretrained_channels} vs {channels}."
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
            **{**ENCODER_DEFAULTS, **dict(run["model_options"].get("encoder", {})), **channels}
        ).get_config()
        # The kernel initializer / regularizer are the models' options, not the encoder's
        # hyper-parameters: a fine-tuning sets its own (`tfzoo.models.supermoe.build_encoder`).
        base = {*tf.keras.layers.Layer().get_config(), *KERNEL_OPTIONS}  # name, trainable, dtype
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
        from tfzoo.training.run import BEST_DIR

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
            train = channel_dataset(rows, config.batch_size, shuffle_seed=config.seed + initial_epoch, repeat=True)
            if with_validation:
                # The AUC-driven task weights take a validation batch with every training batch.
                train = tf.data.Dataset.zip(
                    (
                        train,
                        channel_dataset(
                            prepared.data.validation, config.batch_size, shuffle_seed=config.seed, repeat=True
                        ),
                    )
                )
            return train

        validation = channel_dataset(prepared.data.validation, EVAL_BATCH_SIZE)
        return FitData.epochs_of(train_fn, num_rows=len(rows), batch_size=config.batch_size, validation=validation)

    def predictions(self, prepared: Prepared, split: str) -> dict[str, np.ndarray]:
        """{task: probability [rows]} of the prepared model on `split`, in row order."""
        rows = getattr(prepared.data, split)
        predictions = prepared.model.predict(channel_dataset(rows, EVAL_BATCH_SIZE, labels=False), verbose=0)
        return {t: np.asarray(p) for t, p in predictions.items()}

    def feature_batch(self, prepared: Prepared, split: str, *, rows: int) -> dict[str, tf.Tensor]:
        return next(iter(channel_dataset(getattr(prepared.data, split), rows, labels=False)))

    def report(self, prepared: Prepared, split: str) -> dict:
        rows = getattr(prepared.data, split)
        return task_metrics(rows.labels, self.predictions(prepared, split), rows.label_masks)

    def baseline_predictions(self, prepared: Prepared, split: str) -> dict[str, dict[str, np.ndarray]]:
        """{"logistic_regression": {task: logit [rows]}} on `split`: logistic regression on
        the bag features, one per task, fitted once per prepared run (C on validation)."""
        data, tasks = prepared.data, list(prepared.model.tasks)
        sizes = prepared.inputs.sizes
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

    def save_artifacts(self, prepared: Prepared, directory: Path) -> None:
        data = prepared.data
        ItemTables.of(data.train, data.validation, data.test, keys=data.vocabularies).save(directory / ITEMS_FILE)

    def export(self, run, export_base: str | Path, name: str, *, version: int | None = None, **options) -> Path:
        """Raw sequences in (item ids, actions, timestamps), with the run's item tables;
        a run saved before item tables were kept with runs rebuilds them from its dataset."""
        self.check_export_options(options)
        path = Path(run.directory) / ITEMS_FILE
        if path.exists():
            items = ItemTables.load(path)
        else:
            data = self.load_data(run.config)
            items = ItemTables.of(data.train, data.validation, data.test, keys=data.vocabularies)
        return export_supermoe(run.model, items, export_base, name, version)


class MaskedChannelPretrainingTask(ModelTask):
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
    A pre-training is not served: `tfzoo train supermoe --init-from RUN` fine-tunes from
    the run's encoder, and that model is exported.
    """

    inputs_type = ChannelInputs
    metric_names = ("loss", "accuracy")
    validation_metric = "val_minus_mcp_loss"
    run_defaults = {"epochs": 5, "batch_size": 256, "patience": 2}
    accepted_datasets = BEHAVIOUR_SEQUENCE_DATASETS
    data_config_kinds = ("events",)

    def model_options(self) -> tuple[str, ...]:
        return constructor_options(self.model_class)

    def prepare(self, config: RunConfig, inputs: ChannelInputs | None) -> Prepared:
        data = self.load_data(config)
        inputs = inputs if inputs is not None else ChannelInputs.of(data.train)
        model = self._model(config, inputs, steps_per_epoch=math.ceil(len(data.train) / config.batch_size))
        return Prepared(model=model, inputs=inputs, data=data, split=data.split)

    def build(self, config: RunConfig, inputs: ChannelInputs, directory: Path) -> tf.keras.Model:
        return self._model(config, inputs, steps_per_epoch=1)

    def _model(self, config: RunConfig, inputs: ChannelInputs, *, steps_per_epoch: int) -> tf.keras.Model:
        masked = ["item", inputs.sizes.action_channel]
        options = {**MCP_DEFAULTS, "masked_channels": masked, "seed": config.seed, **config.model_options}
        options["encoder"] = {**ENCODER_DEFAULTS, **dict(options.get("encoder", {})), **inputs.channels}
        model = self.model_class(**options)
        model.compile(optimizer=make_optimizer(config, steps_per_epoch))
        # A call builds the model, one loss evaluation every head: a checkpoint restores at once.
        sample = example_channels(inputs.sizes, num_rows=8, length=4)
        model(sample)
        model.loss_terms(sample, training=False)
        model.reset_metrics()
        return model

    def datasets(self, prepared: Prepared, config: RunConfig, *, initial_epoch: int = 0) -> FitData:
        rows = prepared.data.train

        def train_fn() -> tf.data.Dataset:
            return channel_dataset(
                rows, config.batch_size, labels=False, shuffle_seed=config.seed + initial_epoch, repeat=True
            )

        validation = channel_dataset(prepared.data.validation, EVAL_BATCH_SIZE, labels=False)
        return FitData.epochs_of(train_fn, num_rows=len(rows), batch_size=config.batch_size, validation=validation)

    def feature_batch(self, prepared: Prepared, split: str, *, rows: int) -> dict[str, tf.Tensor]:
        return next(iter(channel_dataset(getattr(prepared.data, split), rows, labels=False)))

    def report(self, prepared: Prepared, split: str) -> dict:
        model = prepared.model
        rows = getattr(prepared.data, split)
        result = model.evaluate(channel_dataset(rows, EVAL_BATCH_SIZE, labels=False), return_dict=True, verbose=0)
        return {
            c: {"loss": float(result[f"{c}_loss"]), "accuracy": float(result[f"{c}_accuracy"])}
            for c in model.masked_channels
        }

    def headline(self, report: Mapping[str, Mapping[str, float]]) -> tuple[str, float]:
        return (
            f"masked-step accuracy (mean of {len(report)} channels)",
            float(np.mean([metrics["accuracy"] for metrics in report.values()])),
        )

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

    def export(self, run, export_base: str | Path, name: str, *, version: int | None = None, **options) -> Path:
        raise ValueError(
            f"A {self.name} pre-training is not served: fine-tune from it (`tfzoo train supermoe --init-from "
            f"{run.directory}`) and export that run. Received: a {self.name} run"
        )
