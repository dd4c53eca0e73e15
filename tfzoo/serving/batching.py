"""Server-side batching: concurrent requests to one signature run as one batch.

Requests are queued per (version, signature); a batch thread takes the oldest request,
waits up to `batch_timeout_micros` for more requests with the same inputs (names, dtypes,
and shapes past the batch axis) until `max_batch_size` rows, concatenates them along axis
0, runs the signature once and hands every request its rows of each output. The options
are TF Serving's `BatchingParameters`, and `read_batching_parameters` reads TF Serving's
`--batching_parameters_file` (text format), so one file configures both servers.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import grpc
import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2

from tfzoo.serving.errors import ServingError, invalid_argument

logger = logging.getLogger("tfzoo.serving")

Arrays = Mapping[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    """TF Serving's batching parameters (same names and meaning).

    Attributes:
      max_batch_size: most rows in one batch. A request with more rows runs on its own.
      batch_timeout_micros: how long the oldest queued request waits for others.
      num_batch_threads: batches that run at the same time (per signature).
      max_enqueued_batches: queue bound, in batches; a request beyond it is refused with
        UNAVAILABLE (as TF Serving does), instead of queueing without limit.
      allowed_batch_sizes: if set, batches are padded (repeating their first row) up to the
        next allowed size, so the model sees only these sizes; the last must equal
        `max_batch_size`.
    """

    max_batch_size: int = 64
    batch_timeout_micros: int = 1000
    num_batch_threads: int = 1
    max_enqueued_batches: int = 100
    allowed_batch_sizes: tuple[int, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "allowed_batch_sizes", tuple(int(s) for s in self.allowed_batch_sizes))
        for name in ("max_batch_size", "num_batch_threads", "max_enqueued_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1. Received: {name}={getattr(self, name)}")
        if self.batch_timeout_micros < 0:
            raise ValueError(
                f"`batch_timeout_micros` must be >= 0. Received: batch_timeout_micros={self.batch_timeout_micros}"
            )
        sizes = self.allowed_batch_sizes
        if sizes and (list(sizes) != sorted(set(sizes)) or sizes[-1] != self.max_batch_size or sizes[0] < 1):
            raise ValueError(
                "`allowed_batch_sizes` must be increasing, positive, and end with `max_batch_size`. "
                f"Received: allowed_batch_sizes={list(sizes)}, max_batch_size={self.max_batch_size}"
            )


def _batching_parameters_class():
    # TF Serving's BatchingParameters (session_bundle_config.proto) is not part of the
    # tensorflow-serving-api package; its fields are declared here so that the same
    # text-format file parses with protobuf's own parser.
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    file = descriptor_pb2.FileDescriptorProto(
        name="tfzoo_batching_parameters.proto", package="tfzoo", dependency=[wrappers.name], syntax="proto3"
    )
    message = file.message_type.add(name="BatchingParameters")
    field_type = descriptor_pb2.FieldDescriptorProto
    wrapped = {
        "max_batch_size": ".google.protobuf.Int64Value",
        "batch_timeout_micros": ".google.protobuf.Int64Value",
        "max_enqueued_batches": ".google.protobuf.Int64Value",
        "num_batch_threads": ".google.protobuf.Int64Value",
        "thread_pool_name": ".google.protobuf.StringValue",
        "enable_large_batch_splitting": ".google.protobuf.BoolValue",
        "max_execution_batch_size": ".google.protobuf.Int64Value",
    }
    for number, (name, type_name) in enumerate(wrapped.items(), start=1):
        message.field.add(
            name=name, number=number, type=field_type.TYPE_MESSAGE, type_name=type_name, label=field_type.LABEL_OPTIONAL
        )
    message.field.add(
        name="allowed_batch_sizes", number=20, type=field_type.TYPE_INT64, label=field_type.LABEL_REPEATED
    )
    message.field.add(
        name="pad_variable_length_inputs", number=21, type=field_type.TYPE_BOOL, label=field_type.LABEL_OPTIONAL
    )
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tfzoo.BatchingParameters"))


def read_batching_parameters(path: str | Path) -> BatchingOptions:
    """`BatchingOptions` from a TF Serving `--batching_parameters_file` (text format).

    Fields that tfzoo does not use (thread pool name, large-batch splitting, padding of
    variable-length inputs) are accepted and logged; unknown fields are an error naming
    the file and line.
    """
    path = Path(path)
    parameters = _batching_parameters_class()()
    try:
        text_format.Parse(path.read_text(), parameters)
    except text_format.ParseError as error:
        raise ValueError(f"{path}: not a TF Serving batching parameters file: {error}") from None
    values = {}
    for name in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads"):
        if parameters.HasField(name):
            values[name] = getattr(parameters, name).value
    if parameters.allowed_batch_sizes:
        values["allowed_batch_sizes"] = tuple(parameters.allowed_batch_sizes)
    ignored = [
        n
        for n in ("thread_pool_name", "enable_large_batch_splitting", "max_execution_batch_size")
        if parameters.HasField(n)
    ]
    if parameters.pad_variable_length_inputs:
        ignored.append("pad_variable_length_inputs")
    if ignored:
        logger.info("%s: tfzoo serve ignores %s", path, ", ".join(ignored))
    try:
        return BatchingOptions(**values)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


class _Task:
    __slots__ = ("inputs", "rows", "key", "done", "outputs", "error")

    def __init__(self, inputs: Arrays, rows: int, key: tuple):
        self.inputs = inputs
        self.rows = rows
        self.key = key
        self.done = threading.Event()
        self.outputs: dict[str, np.ndarray] | None = None
        self.error: BaseException | None = None


def _batch_key(inputs: Arrays) -> tuple:
    return tuple(sorted((k, v.dtype.str, v.shape[1:]) for k, v in inputs.items()))


class SignatureBatcher:
    """Merges concurrent calls of one batchable signature; `run(inputs)` blocks for its rows."""

    def __init__(self, run_batch: Callable[[Arrays], Mapping[str, np.ndarray]], options: BatchingOptions, *, name: str):
        self._run_batch = run_batch
        self._options = options
        self._name = name
        self._queue: collections.deque[_Task] = collections.deque()
        self._queued_rows = 0
        self._condition = threading.Condition()
        self._closed = False
        # Set when a merged call's outputs turn out not to be batch-major (e.g. a lookup table
        # output): from then on every request runs on its own.
        self.disabled = False
        self.batches_run = 0  # for tests and logs: how many merged calls were made
        self._threads = [
            threading.Thread(target=self._loop, name=f"batch-{name}-{i}", daemon=True)
            for i in range(options.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def run(self, inputs: Arrays) -> dict[str, np.ndarray]:
        rows = {len(v) for v in inputs.values()}
        if len(rows) != 1:
            sizes = {k: len(v) for k, v in inputs.items()}
            raise invalid_argument(f"Batched inputs must all have the same number of rows (axis 0); got {sizes}.")
        (num_rows,) = rows
        if num_rows > self._options.max_batch_size or self.disabled:
            # Too large to merge: TF Serving would split it; running it alone is equivalent.
            return dict(self._run_batch(inputs))
        task = _Task(inputs, num_rows, _batch_key(inputs))
        with self._condition:
            if self._closed:
                raise ServingError(grpc.StatusCode.UNAVAILABLE, f"{self._name} is unloading.")
            if self._queued_rows + num_rows > self._options.max_enqueued_batches * self._options.max_batch_size:
                raise ServingError(
                    grpc.StatusCode.UNAVAILABLE, "The batch scheduling queue to which this task was submitted is full."
                )
            self._queue.append(task)
            self._queued_rows += num_rows
            self._condition.notify()
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.outputs

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)

    def _take_batch(self) -> list[_Task] | None:
        options = self._options
        with self._condition:
            while not self._queue and not self._closed:
                self._condition.wait()
            if not self._queue:
                return None
            first = self._queue.popleft()
            batch, rows = [first], first.rows
            deadline = time.monotonic() + options.batch_timeout_micros / 1e6
            while rows < options.max_batch_size:
                compatible = next(
                    (t for t in self._queue if t.key == first.key and rows + t.rows <= options.max_batch_size), None
                )
                if compatible is not None:
                    self._queue.remove(compatible)
                    batch.append(compatible)
                    rows += compatible.rows
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    break
                self._condition.wait(remaining)
            self._queued_rows -= rows
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            try:
                self._execute(batch)
            except BaseException as error:  # every waiting request gets the error, none hangs
                for task in batch:
                    task.error = error
            finally:
                for task in batch:
                    task.done.set()

    def _execute(self, batch: Sequence[_Task]) -> None:
        rows = sum(t.rows for t in batch)
        target = rows
        if self._options.allowed_batch_sizes:
            target = next(s for s in self._options.allowed_batch_sizes if s >= rows)
        merged = {}
        for key in batch[0].inputs:
            parts = [t.inputs[key] for t in batch]
            if target > rows:
                parts.append(np.repeat(parts[0][:1], target - rows, axis=0))
            merged[key] = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
        outputs = self._run_batch(merged)
        self.batches_run += 1
        not_batched = [k for k, v in outputs.items() if v.ndim == 0 or v.shape[0] != target]
        if not_batched:
            logger.warning(
                "%s: output %s is not batch-major; batching disabled for this signature", self._name, not_batched
            )
            self.disabled = True
            for task in batch:
                task.outputs = dict(self._run_batch(task.inputs))
            return
        offset = 0
        for task in batch:
            task.outputs = {k: v[offset : offset + task.rows] for k, v in outputs.items()}
            offset += task.rows
