"""`tf.distribute` strategies for training runs, and what each process of a cluster does.

The training code is the same under every strategy: `tfzoo.training.run.train` builds the
model inside `strategy.scope()` and calls `model.fit`. What changes:

- `default`: one device.
- `mirrored`: synchronous data parallelism over this machine's GPUs (or, without GPUs,
  its logical CPU devices; see `configure_cpu_devices`).
- `multi_worker`: synchronous data parallelism over the workers listed in `TF_CONFIG`;
  worker 0 is the chief.
- `parameter_server`: asynchronous training; a coordinator (the `chief` task) dispatches
  steps to `worker` tasks, variables live on `ps` tasks, and large variables (embedding
  tables) are partitioned across the parameter servers.

Batch sizes are global: a batch of `batch_size` rows is split across all replicas of a
step (`multi_worker`, `mirrored`); under `parameter_server` each worker step takes a whole
batch. Losses are divided by the global count of labelled rows, so a step's gradient is the
single-device gradient of the same global batch.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker", "parameter_server")

# Variables below this size stay whole under `parameter_server`; larger ones (embedding
# tables) are split into at most one shard per parameter server.
MIN_SHARD_BYTES = 256 << 10


@dataclasses.dataclass(frozen=True)
class TaskInfo:
    """This process's place in the cluster described by `TF_CONFIG` (none: one process)."""

    task_type: str | None
    task_id: int
    num_workers: int
    num_ps: int

    @property
    def is_chief(self) -> bool:
        """The task that writes the run directory: the chief, worker 0 without a chief, or a lone process."""
        if self.task_type is None or self.task_type == "chief":
            return True
        return self.task_type == "worker" and self.task_id == 0 and not self.has_chief_task

    has_chief_task: bool = False


def task_info() -> TaskInfo:
    """Reads `TF_CONFIG`; a missing one means a single process."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return TaskInfo(None, 0, 1, 0)
    try:
        tf_config = json.loads(raw)
        cluster, task = tf_config["cluster"], tf_config.get("task", {})
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(
            f"TF_CONFIG is not a valid cluster description ({error}). Received: TF_CONFIG={raw!r}"
        ) from None
    return TaskInfo(
        task_type=task.get("type"),
        task_id=int(task.get("index", 0)),
        num_workers=len(cluster.get("worker", [])),
        num_ps=len(cluster.get("ps", [])),
        has_chief_task=bool(cluster.get("chief")),
    )


def configure_cpu_devices(count: int) -> None:
    """Splits the CPU into `count` logical devices, so `mirrored` has replicas without GPUs.

    Must run before TensorFlow executes any op (device configuration is frozen then).
    """
    if count < 1:
        raise ValueError(f"`count` must be >= 1. Received: count={count}")
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as error:
        if len(tf.config.list_logical_devices("CPU")) != count:
            raise RuntimeError(
                f"cannot split the CPU into {count} logical devices: TensorFlow already ran an op ({error})."
            ) from None


def is_server_task(strategy: str) -> bool:
    """Whether this process is a `worker` or `ps` task of a `parameter_server` cluster.

    Those tasks run no Python training loop: they host variables and execute the steps the
    coordinator sends them (`serve_cluster_task`).
    """
    return strategy == "parameter_server" and task_info().task_type in ("worker", "ps")


def serve_cluster_task() -> None:
    """Starts this process's `tf.distribute.Server` and serves until killed."""
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    server = tf.distribute.Server(
        resolver.cluster_spec(),
        job_name=resolver.task_type,
        task_index=resolver.task_id,
        protocol=resolver.rpc_layer or "grpc",
        start=True,
    )
    server.join()


def make_strategy(name: str, *, min_shard_bytes: int = MIN_SHARD_BYTES) -> tf.distribute.Strategy:
    """The strategy called `name` (one of `STRATEGIES`), for a run's training.

    Create it before TensorFlow executes any op: collective and parameter-server
    strategies configure the runtime when they are made. Under `parameter_server`,
    variables of at least `min_shard_bytes` are split across the parameter servers.
    """
    if name not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES}. Received: strategy={name!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        if task_info().task_type is None:
            raise ValueError("strategy='multi_worker' needs TF_CONFIG describing the workers (see `tfzoo launch`).")
        return tf.distribute.MultiWorkerMirroredStrategy()
    info = task_info()
    if info.task_type != "chief" or info.num_ps < 1 or info.num_workers < 1:
        raise ValueError(
            "strategy='parameter_server' runs its training loop in the `chief` task of a TF_CONFIG cluster with "
            f"workers and parameter servers. Received: task={info.task_type!r}, workers={info.num_workers}, ps={info.num_ps}"
        )
    partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(
        min_shard_bytes=min_shard_bytes, max_shards=info.num_ps
    )
    return tf.distribute.ParameterServerStrategy(
        tf.distribute.cluster_resolver.TFConfigClusterResolver(), variable_partitioner=partitioner
    )


def uses_cluster(strategy: tf.distribute.Strategy) -> bool:
    """Whether `strategy` spans processes (its `predict` does not return this process's rows)."""
    return isinstance(strategy, (tf.distribute.MultiWorkerMirroredStrategy, tf.distribute.ParameterServerStrategy))


def variable_placement(model: tf.keras.Model) -> dict[str, list[str]]:
    """Where each of `model`'s variables lives: name -> the devices of its shards, in order.

    A variable split by a `parameter_server` partitioner (its shards named `NAME/part_K`)
    lists one device per shard.
    """
    placement: dict[str, dict[int, str]] = {}
    for variable in model.variables:
        match = re.fullmatch(r"(.*)/part_(\d+)(:\d+)?", variable.name)
        name, shard = (match.group(1), int(match.group(2))) if match else (variable.name.removesuffix(":0"), 0)
        placement.setdefault(name, {})[shard] = variable.device
    return {name: [shards[k] for k in sorted(shards)] for name, shards in placement.items()}


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset` with its batches dealt out to the workers in turn (`AutoShardPolicy.DATA`).

    In-memory data has no files to split by; dealing whole batches keeps each global step
    equal to the single-device batch of the same step.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def fit_input(strategy: tf.distribute.Strategy, make_dataset: Callable[[], tf.data.Dataset]):
    """What `model.fit` takes as training data under `strategy`.

    `make_dataset()` returns the global stream of batches. Under `parameter_server` every
    worker builds it (so it must embed its data, e.g. NumPy arrays, rather than capture
    tensors of this process) and takes every n-th batch; elsewhere it is sharded by data.
    """
    if isinstance(strategy, tf.distribute.ParameterServerStrategy):
        workers = input_pipelines(strategy)
        return tf.keras.utils.experimental.DatasetCreator(
            lambda context: make_dataset().shard(workers, _worker_index())
        )
    return shard_by_data(make_dataset())


def _worker_index() -> tf.Tensor:
    """This parameter-server worker's index, inside its dataset function (a scalar tensor).

    `ParameterServerStrategy` gives every worker the same `InputContext` (pipeline 0 of
    1): sharding by it would leave each worker iterating the whole stream, so that an
    epoch's steps would visit its first half once per worker and its second half not at
    all. The index comes from the coordinator instead."""
    return tf.cast(tf.distribute.coordinator.experimental_get_current_worker_index(), tf.int64)


def per_replica_input(
    strategy: tf.distribute.Strategy,
    make_replica_dataset: Callable[[tf.distribute.InputContext], tf.data.Dataset],
    *,
    skip_steps: int = 0,
):
    """What `model.fit` takes as training data when each replica builds its own batches.

    `make_replica_dataset(context)` returns one input pipeline's stream of per-replica
    batches (see `FitData.replica_fn`); the strategy hands them to the pipeline's replicas
    in turn. `skip_steps` global steps already done (a resumed epoch) are skipped: each
    synchronous step takes one batch per replica, a parameter-server step one batch of one
    worker.

    Under `parameter_server` the context names the worker (`num_input_pipelines` workers,
    `input_pipeline_id` the worker's index: a tensor inside its graph), and since the
    coordinator sends each step to whichever worker is free, a worker may take more than
    its share of an epoch's steps: its stream never ends (past its epochs it starts them
    again).
    """

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        if isinstance(strategy, tf.distribute.ParameterServerStrategy):
            workers = input_pipelines(strategy)
            context = tf.distribute.InputContext(
                num_input_pipelines=workers,
                input_pipeline_id=_worker_index(),
                num_replicas_in_sync=context.num_replicas_in_sync,
            )
            return make_replica_dataset(context).skip(skip_steps // workers).repeat()
        skip = skip_steps * max(1, context.num_replicas_in_sync // context.num_input_pipelines)
        return make_replica_dataset(context).skip(skip)

    return tf.keras.utils.experimental.DatasetCreator(dataset_fn)


def input_pipelines(strategy: tf.distribute.Strategy) -> int:
    """How many input pipelines `strategy` runs: one per worker process (the chief
    included) under `multi_worker`, one per worker under `parameter_server`, one otherwise."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        info = task_info()
        return max(1, info.num_workers + int(info.has_chief_task))
    if isinstance(strategy, tf.distribute.ParameterServerStrategy):
        return task_info().num_workers
    return 1


def feeds_replicas_separately(strategy: tf.distribute.Strategy) -> bool:
    """Whether `strategy` runs more than one replica or process (so that global batches
    would be split or dealt out)."""
    return strategy.num_replicas_in_sync > 1 or uses_cluster(strategy)
