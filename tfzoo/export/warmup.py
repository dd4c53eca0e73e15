"""Warm-up requests: `assets.extra/tf_serving_warmup_requests` in every exported version.

TF Serving (and `tfzoo serve`) replays this file, a TFRecord of
`tensorflow.serving.PredictionLog` protos, against a version before the version takes
traffic, so the first real request does not pay for graph optimisation and kernel
initialisation. This module builds the requests from a serving signature: rows
synthesised from a fitted `DatasetSpec` (vocabulary values, means, missing values) where
the signature takes raw features, and neutral values (zeros, empty strings) otherwise.
Exporters of any model reuse `warmup_logs` and `write_warmup_requests`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from tfzoo.data.features import (
    DatasetSpec,
)
from tfzoo.export.signature_values import synthesize_inputs  # noqa: F401  (re-exported)

WARMUP_DIRECTORY = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
# TF Serving refuses a warm-up file with more records than this.
MAX_WARMUP_RECORDS = 1000


def warmup_path(saved_model_dir: str | Path) -> Path:
    return Path(saved_model_dir) / WARMUP_DIRECTORY / WARMUP_FILE


def example_rows(spec: DatasetSpec, num_rows: int = 4) -> dict[str, np.ndarray]:
    """`num_rows` rows of raw features, valid for `spec.serving_signature()`.

    Categorical features cycle through their vocabulary, ids count up, numbers take the
    mean and mean +- one standard deviation (the last row is missing), sequences repeat
    those values over a few positions (shorter rows padded), embeddings hold small values
    (the last row missing).
    """
    if num_rows < 1:
        raise ValueError(f"`num_rows` must be >= 1. Received: num_rows={num_rows}")
    return {feature.name: feature.example_values(num_rows) for feature in spec.features}


def signature_inputs(function: tf.types.experimental.ConcreteFunction) -> dict[str, tf.TensorSpec]:
    """The inputs of `function` as a saved signature takes them: keyword -> spec.

    `tf.saved_model.save` flattens a signature function's inputs (a dict argument, or
    several arguments) into keyword arguments named by the function's argument keywords,
    in flattening order; this mirrors it, so warm-up requests use the served input names.
    The returned specs keep their user-given `name` (e.g. the feature name).
    """
    flat = [
        s
        for s in tf.nest.flatten(function.structured_input_signature, expand_composites=True)
        if isinstance(s, tf.TensorSpec)
    ]
    keywords = getattr(function, "_arg_keywords", None) or [s.name for s in flat]
    if len(keywords) != len(flat) or not all(keywords):
        raise ValueError(f"Cannot name the inputs of signature function {function.name}: give every TensorSpec a name.")
    return dict(zip(keywords, flat))


def spec_inputs(
    signature: Mapping[str, tf.TensorSpec], spec: DatasetSpec | None, num_rows: int
) -> dict[str, np.ndarray]:
    """Warm-up inputs of `signature`: spec rows for the inputs that are spec features, else neutral."""
    rows = example_rows(spec, num_rows) if spec is not None else {}
    neutral = synthesize_inputs(signature, num_rows)
    inputs = {}
    for keyword, input_spec in signature.items():
        feature = input_spec.name if input_spec.name in rows else keyword
        inputs[keyword] = rows[feature] if feature in rows else neutral[keyword]
    return inputs


def predict_log(
    model_name: str, signature_name: str, inputs: Mapping[str, np.ndarray]
) -> prediction_log_pb2.PredictionLog:
    """A `PredictionLog` holding one `PredictRequest` (TF Serving's warm-up record)."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))


def warmup_logs(
    model_name: str,
    signatures: Mapping[str, tf.types.experimental.ConcreteFunction],
    *,
    feature_spec: DatasetSpec | None = None,
    inputs: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    batch_sizes: Sequence[int] = (1, 4),
    check: bool = True,
) -> list[prediction_log_pb2.PredictionLog]:
    """Warm-up records for every signature, one per batch size.

    Args:
      model_name: the served model name (written into each request's model spec).
      signatures: signature name -> concrete function, as passed to `tf.saved_model.save`.
      feature_spec: the fitted spec; inputs named after its features get its example rows.
      inputs: explicit warm-up inputs per signature (batch as given; `batch_sizes` ignored).
      batch_sizes: batch sizes to warm up (TF Serving's batching pads to fixed sizes; one
        small and one larger batch cover the common shapes).
      check: run each request through its function first, so that an export never ships a
        warm-up request that would fail the version's load on the server.

    Raises:
      ValueError: a request fails on its signature; the message names the signature.
    """
    logs = []
    for signature_name, function in signatures.items():
        input_signature = signature_inputs(function)
        if signature_name in (inputs or {}):
            batches = [dict(inputs[signature_name])]
        else:
            batches = [spec_inputs(input_signature, feature_spec, n) for n in batch_sizes]
        for batch in batches:
            if check:
                try:
                    function(**{k: tf.constant(v, dtype=input_signature[k].dtype) for k, v in batch.items()})
                except (tf.errors.OpError, TypeError, ValueError) as error:
                    raise ValueError(
                        f"The warm-up request of signature {signature_name!r} fails on the model: {error}. "
                        f"Pass valid inputs for it: warmup_inputs={{{signature_name!r}: {{input: array}}}}."
                    ) from error
            logs.append(predict_log(model_name, signature_name, batch))
    return logs


def write_warmup_requests(saved_model_dir: str | Path, logs: Iterable[prediction_log_pb2.PredictionLog]) -> Path:
    """Writes `logs` as `<saved_model_dir>/assets.extra/tf_serving_warmup_requests` (TFRecord)."""
    logs = list(logs)
    if len(logs) > MAX_WARMUP_RECORDS:
        raise ValueError(f"TF Serving accepts at most {MAX_WARMUP_RECORDS} warm-up records; got {len(logs)}.")
    path = warmup_path(saved_model_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(saved_model_dir: str | Path) -> list[prediction_log_pb2.PredictionLog]:
    """The warm-up records of a version directory ([] if it has none).

    Raises:
      ValueError: a record is not a `PredictionLog` or the file is not a TFRecord; the
        message names the file and the record.
    """
    path = warmup_path(saved_model_dir)
    if not path.exists():
        return []
    logs = []
    try:
        for index, record in enumerate(tf.data.TFRecordDataset(str(path)).as_numpy_iterator()):
            if index >= MAX_WARMUP_RECORDS:
                raise ValueError(f"{path}: more than {MAX_WARMUP_RECORDS} warm-up records.")
            log = prediction_log_pb2.PredictionLog()
            try:
                log.ParseFromString(record)
            except Exception as error:  # protobuf raises its own DecodeError
                raise ValueError(
                    f"{path}: record {index} is not a tensorflow.serving.PredictionLog ({error})."
                ) from None
            logs.append(log)
    except tf.errors.DataLossError as error:
        raise ValueError(f"{path} is not a TFRecord file of PredictionLog records: {error.message}") from None
    return logs
