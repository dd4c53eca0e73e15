"""The contract between a kind of model and the runs that train, evaluate and export it.

A `ModelTask` owns one model kind end to end (TF-GNN's runner `Task` is the model): the
datasets it accepts and its options (`check`), its typed inputs record (`inputs_type`),
building the model (`build`, from the run alone) and its data (`prepare`), `model.fit`'s
inputs (`datasets`), its report, baselines and early-stopping score, what it saves with
a run beside `config.json` (`save_artifacts`), and its export (`export`).
`tfzoo.training.run` does the rest (run directory, checkpoints, TensorBoard, NaN stop,
resume, distribution) the same way for every kind.

The tasks live in `tfzoo.tasks` (they build on the exporters); `tfzoo.training.registry`
names each model's task and model class, so adding a model kind is its module and one
registry line.
"""

from __future__ import annotations

import abc
import dataclasses
import inspect
import json
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import tensorflow as tf

from tfzoo.data.data_config import DataConfig, parse_data_config
from tfzoo.data.events_config import EventsConfig, event_sequence_splits
from tfzoo.data.graph_config import FriendGraphConfig, friend_graph_splits
from tfzoo.data.registry import check_dataset, load_dataset
from tfzoo.data.streaming import StreamedSplits
from tfzoo.training.config import RunConfig

if TYPE_CHECKING:  # the run module builds on this one
    from tfzoo.training.run import Run

EVAL_BATCH_SIZE = 4096
# Where Keras' and TFRS's base classes live: their constructor arguments are not model options.
_LIBRARY_MODULES = frozenset({"builtins", "keras", "tf_keras", "tensorflow", "tensorflow_recommenders"})


def constructor_options(model_class: type, *, set_by_task: Iterable[str] = ()) -> tuple[str, ...]:
    """The keyword arguments that `model_class`'s constructor names, and those of the
    tfzoo base classes it hands its `**kwargs` to, less those the task fills in itself
    (from the data or the run): the model options a user may give. Keras's own keyword
    arguments (`name`, `dtype`, ...) are not model options."""
    named = set()
    for cls in model_class.__mro__:
        if cls.__module__.split(".")[0] in _LIBRARY_MODULES or "__init__" not in vars(cls):
            continue
        parameters = inspect.signature(cls.__init__).parameters.values()
        named |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {"self"}
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break  # the rest of the chain is not reachable from the model's options
    return tuple(sorted(named - set(set_by_task)))


@dataclasses.dataclass(frozen=True)
class TaskInputs:
    """What a run's model is built from besides its `RunConfig` (a fitted feature spec,
    channel sizes, the graph's feature width and the calibrated loss weights, ...):
    computed from the training data when the run starts, stored in `config.json` and read
    back on resume, evaluation and export, so that a reopened run is built exactly as it
    was trained. Each task has its own record."""

    def to_config(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TaskInputs:
        fields = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(config) - fields)
        if unknown:
            raise ValueError(
                f"{cls.__name__} has no field(s) {unknown}: the run was stored by another kind of model. "
                f"Received: {sorted(config)}. Accepted: {sorted(fields)}"
            )
        return cls(**config)


@dataclasses.dataclass
class Prepared:
    """A run's model and data, ready to train or evaluate.

    Attributes:
      model: the compiled model, its variables built (so a checkpoint restores at once).
      inputs: the task's `TaskInputs` record; stored in `config.json` and handed back on
        resume, so that a resumed or exported run sees exactly the statistics it was
        trained with.
      data: the task's splits; None for a run opened without its data (export).
      split: how the rows were split, reported with every result.
    """

    model: tf.keras.Model
    inputs: TaskInputs
    data: Any
    split: str
    # What the task computes once per prepared run and reuses (e.g. the evaluation subgraphs).
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
    # into one GraphTensor), or files each worker reads its own share of: builds one input
    # pipeline's stream of per-replica batches for `tf.distribute.InputContext`. Every
    # multi-replica or multi-worker strategy then feeds each replica its own batches
    # instead of splitting global ones. Under `parameter_server` the context's
    # `input_pipeline_id` is the worker's index as a tensor (`distribute.per_replica_input`).
    replica_fn: Callable[[tf.distribute.InputContext], tf.data.Dataset] | None = None
    # With `replica_fn` reading a share of the files per input pipeline:
    # the batches each of `pipelines` pipelines reads per epoch, at `pipeline_batch` rows
    # a batch (default: `steps_per_epoch` steps in all).
    sharded_steps_per_epoch: Callable[[int, int], int] | None = None
    # Keras callbacks the data needs beside the run's own (e.g. reporting skipped rows).
    callbacks: list = dataclasses.field(default_factory=list)

    @classmethod
    def epochs_of(
        cls, train_fn: Callable[[], tf.data.Dataset], *, num_rows: int, batch_size: int, validation: tf.data.Dataset
    ) -> FitData:
        """Epochs of `num_rows` training rows in batches of `batch_size` (the last one
        partial), streamed by `train_fn` (plain NumPy inside, so parameter-server workers
        can rebuild it)."""
        return cls(
            train=train_fn(),
            steps_per_epoch=math.ceil(num_rows / batch_size),
            validation=validation,
            train_fn=train_fn,
        )


def _tasks_taking_data_configs() -> list[str]:
    from tfzoo.training.registry import TASKS, task_for  # the registry builds on this module

    return [name for name in TASKS if task_for(name).data_config_kinds]


def stored_run(directory: str | Path) -> dict:
    """The `config.json` of the run in `directory`."""
    path = Path(directory) / "config.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} not found: is {directory} a tfzoo run directory?") from None


def finished_run_file(directory: str | Path, name: str = "metrics.json") -> dict:
    """A JSON file a run writes when it ends (`metrics.json`, `history.json`)."""
    path = Path(directory) / name
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} not found: the run in {directory} has not finished") from None


class ModelTask(abc.ABC):
    """One model kind, end to end. `prepare`, `build`, `datasets`, `report` and `export`
    are the contract.

    A task is made for one registered model name and its model class
    (`tfzoo.training.registry.task_for`). `metric_names` are the columns of its report
    tables; `validation_metric` names the score that early stopping follows
    (`validation_score`, higher is better).
    """

    inputs_type: ClassVar[type[TaskInputs]]
    metric_names: ClassVar[tuple[str, ...]] = ("auc", "ap")
    validation_metric: ClassVar[str] = "val_mean_auc"
    # What a `RunConfig` (and `tfzoo train`) uses where it is given no value.
    run_defaults: ClassVar[Mapping[str, Any]] = {"epochs": 5, "batch_size": 512, "patience": 3}
    # The model name of the task's pre-training runs, where `RunConfig.init_from` may name
    # one (`tfzoo train MODEL --init-from RUN`); None: the model has none.
    pretraining_model: ClassVar[str | None] = None
    # The datasets (`tfzoo.data.DATASETS` names) whose rows the task's models read.
    accepted_datasets: ClassVar[tuple[str, ...]] = ()
    # The kinds of data config (`tfzoo.data.data_config.KINDS`) whose files the task's
    # models train on (`RunConfig.data_config`): "rows", "friend_graph"; none: only named
    # datasets.
    data_config_kinds: ClassVar[tuple[str, ...]] = ()
    # Options `export` takes beyond the common ones (`tfzoo export --target-recall ...`).
    export_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str, model_class: type):
        self.name = name
        self.model_class = model_class

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.model_class.__name__})"

    @abc.abstractmethod
    def model_options(self) -> tuple[str, ...]:
        """The `RunConfig.model_options` keys the model takes (`tfzoo train --option KEY=VALUE`)."""

    def check(self, config: RunConfig) -> None:
        """Fails, before any data is read, on a dataset, data option or model option that
        the model does not take; each error is one line naming what was received and what
        is accepted."""
        if config.data_config is not None:
            source = config.data_config.get("source", config.dataset)
            if not self.data_config_kinds:
                accepted = sorted(task for task in _tasks_taking_data_configs())
                raise ValueError(
                    f"Model {config.model!r} does not train from a data config yet. Received: "
                    f"data_config={source!r}. Accepted: models "
                    f"{', '.join(accepted)}; or a named dataset: {', '.join(self.accepted_datasets)}"
                )
            if config.data_options:
                raise ValueError(
                    f"A data config takes no data options. Received: {sorted(config.data_options)}. Accepted: none"
                )
            kind = self.data_config(config).kind  # a config error names its file and key
            if kind not in self.data_config_kinds:
                raise ValueError(
                    f"Model {config.model!r} trains from data configs of kind {', '.join(self.data_config_kinds)}. "
                    f"Received: kind={kind!r} in {source}"
                )
        else:
            check_dataset(config.dataset, config.data_options)
        if config.data_config is None and config.dataset not in self.accepted_datasets:
            raise ValueError(
                f"Model {config.model!r} does not train on dataset {config.dataset!r}. "
                f"Received: dataset={config.dataset!r}. Accepted: {', '.join(self.accepted_datasets)}"
            )
        accepted = self.model_options()
        unknown = sorted(set(config.model_options) - set(accepted))
        if unknown:
            received = ", ".join(f"option={key!r}" for key in unknown)
            raise ValueError(
                f"Unknown option for model {config.model!r}. Received: {received}. Accepted: {', '.join(accepted)}"
            )

    @staticmethod
    def data_config(config: RunConfig) -> DataConfig | FriendGraphConfig | EventsConfig:
        """The run's data config (`config.data_config` parsed)."""
        raw = {k: v for k, v in config.data_config.items() if k != "source"}
        return parse_data_config(raw, source=config.data_config.get("source", "<data config>"))

    @classmethod
    def load_data(cls, config: RunConfig):
        """The run's dataset, split as `config` says (`tfzoo.data.load_dataset`), or its
        data config's files: rows as streams (`tfzoo.data.streaming.StreamedSplits`), a
        friend graph read and split (`tfzoo.data.graph_config.friend_graph_splits`), an
        event log's behaviour sequences (`tfzoo.data.events_config.event_sequence_splits`)."""
        if config.data_config is not None:
            data_config = cls.data_config(config)
            if isinstance(data_config, FriendGraphConfig):
                return friend_graph_splits(data_config, split_seed=config.split_seed, on_bad_row=config.on_bad_row)
            if isinstance(data_config, EventsConfig):
                return event_sequence_splits(
                    data_config, split_seed=config.split_seed, tasks=config.tasks, on_bad_row=config.on_bad_row
                )
            return StreamedSplits(data_config, on_bad_row=config.on_bad_row)
        return load_dataset(
            config.dataset,
            path=config.data_path,
            tasks=config.tasks,
            split_seed=config.split_seed,
            options=config.data_options,
        )

    @abc.abstractmethod
    def prepare(self, config: RunConfig, inputs: TaskInputs | None) -> Prepared:
        """Loads the data and builds the compiled model; `inputs` as stored by an earlier
        run, None for a new run (then computed from the training data)."""

    @abc.abstractmethod
    def build(self, config: RunConfig, inputs: TaskInputs, directory: Path) -> tf.keras.Model:
        """The compiled model of the run in `directory`, its variables built, from the run's
        config, inputs and saved artifacts alone: no dataset is read (export)."""

    def save_artifacts(self, prepared: Prepared, directory: Path) -> None:
        """Writes what `build` and `export` need beyond `config.json` into the run's
        directory (nothing by default)."""
        return None  # rankers and sequence models are built from their inputs alone

    @abc.abstractmethod
    def datasets(self, prepared: Prepared, config: RunConfig, *, initial_epoch: int = 0) -> FitData:
        """Training (from `initial_epoch` on) and validation data for `model.fit`."""

    @abc.abstractmethod
    def report(self, prepared: Prepared, split: str) -> dict:
        """Exact metrics of the prepared model on `split` ("train", "validation", "test")."""

    def headline(self, report: Mapping[str, Mapping[str, float]]) -> tuple[str, float]:
        """The one number that summaries show for a `report` (or a baseline's, in the same
        shape), higher is better: (its name, its value). Default: AUC averaged over the tasks."""
        return f"AUC (mean of {len(report)} tasks)", float(np.mean([metrics["auc"] for metrics in report.values()]))

    def validation_score(self, prepared: Prepared) -> float:
        """The early-stopping score, higher is better: the headline number of the validation
        report (default: exact validation AUC, averaged over the tasks)."""
        return self.headline(self.report(prepared, "validation"))[1]

    def feature_batch(self, prepared: Prepared, split: str, *, rows: int) -> Any | None:
        """The model's inputs for the first `rows` rows of `split`, as one batch (what
        `tfzoo report` runs the model on to see its experts' usage); None where the task
        has no such batch (the default)."""
        return None

    def baselines(self, prepared: Prepared, split: str) -> dict[str, dict]:
        """{name: report} of the strong simple baselines of the model on `split`, in the
        shape of `report` (none by default)."""
        return {}

    def fused_reports(self, prepared: Prepared, *, per_user: bool = False) -> dict | None:
        """Where the export serves the model's score fused with a baseline's
        (`tfzoo.evaluation.fusion`): the fusion chosen on validation and its validation and
        test reports; None where it serves the model alone (the default)."""
        return None

    @abc.abstractmethod
    def export(self, run: Run, export_base: str | Path, name: str, *, version: int | None = None, **options) -> Path:
        """Exports the run's model as TF Serving serves it, into
        `<export_base>/<name>/<version>/` (default version: the next free one); returns the
        version directory. `options` are `export_options` (None values mean "not given")."""

    def check_export_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The given (not None) export options, or a one-line error naming those the
        model's export does not take."""
        given = {key: value for key, value in options.items() if value is not None}
        unknown = sorted(set(given) - set(self.export_options))
        if unknown:
            raise ValueError(
                f"The {self.name} export takes no option(s) {unknown}. "
                f"Accepted: {', '.join(self.export_options) or 'none'}"
            )
        return given
