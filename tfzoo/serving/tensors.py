"""Signatures of a loaded SavedModel, and request tensors checked against them.

A `Signature` describes one SignatureDef (its inputs and outputs by key, with dtype and
shape) and holds the function that runs it. Request inputs arrive as `TensorProto`s
(gRPC) or JSON values (REST); both become NumPy arrays of the signature's dtypes here,
and every mismatch is an INVALID_ARGUMENT error naming the input.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from tfzoo.serving.errors import invalid_argument

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
DEFAULT_SIGNATURE = "serving_default"
# TF2 saves signatures for itself (e.g. `__saved_model_init_op`) beside the served ones.
INTERNAL_SIGNATURE_PREFIX = "__"
# Largest gRPC message the server accepts and the client sends or receives, by default.
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def dtype_name(dtype: int | tf.DType) -> str:
    """`DT_FLOAT`-style name of a dtype enum or `tf.DType`."""
    enum = dtype.as_datatype_enum if isinstance(dtype, tf.DType) else dtype
    return types_pb2.DataType.Name(enum)


def shape_text(shape: tf.TensorShape) -> str:
    if shape.rank is None:
        return "[?]"
    return "[" + ",".join("-1" if d is None else str(d) for d in shape.as_list()) + "]"


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One input or output of a signature: its key, dtype and (possibly partial) shape."""

    key: str
    dtype: tf.DType
    shape: tf.TensorShape

    @classmethod
    def from_tensor_info(cls, key: str, info: meta_graph_pb2.TensorInfo) -> TensorSpec:
        shape = (
            tf.TensorShape(None)
            if info.tensor_shape.unknown_rank
            else tf.TensorShape([None if d.size < 0 else d.size for d in info.tensor_shape.dim])
        )
        return cls(key, tf.as_dtype(info.dtype), shape)

    @property
    def is_batched(self) -> bool:
        """Rank >= 1 with an unknown leading dimension: rows can be stacked and split."""
        return self.shape.rank is not None and self.shape.rank >= 1 and self.shape[0] is None

    def describe(self) -> str:
        return f"{dtype_name(self.dtype)} {shape_text(self.shape)}"


@dataclasses.dataclass
class Signature:
    """A SignatureDef of a loaded version, and the function that runs it.

    `function(**{key: tensor})` returns a dict of output tensors keyed by output key.
    """

    name: str
    method_name: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]
    function: Callable[..., Mapping[str, Any]]
    signature_def: meta_graph_pb2.SignatureDef

    @classmethod
    def from_signature_def(cls, name: str, signature_def: meta_graph_pb2.SignatureDef, function) -> Signature:
        return cls(
            name=name,
            method_name=signature_def.method_name,
            inputs={k: TensorSpec.from_tensor_info(k, v) for k, v in sorted(signature_def.inputs.items())},
            outputs={k: TensorSpec.from_tensor_info(k, v) for k, v in sorted(signature_def.outputs.items())},
            function=function,
            signature_def=signature_def,
        )

    @property
    def batchable(self) -> bool:
        """Every input and output is batched along axis 0, so requests can be merged."""
        return bool(self.inputs) and all(s.is_batched for s in (*self.inputs.values(), *self.outputs.values()))

    def describe_inputs(self) -> str:
        return ", ".join(f"{k}: {s.describe()}" for k, s in self.inputs.items())

    def check_input_names(self, names: Sequence[str], *, where: str) -> None:
        """INVALID_ARGUMENT unless `names` are exactly the signature's inputs (both lists named)."""
        sent, expected = set(names), set(self.inputs)
        if sent == expected:
            return
        extra, missing = sorted(sent - expected), sorted(expected - sent)
        parts = []
        if extra:
            parts.append(f"unknown input(s) {extra}")
        if missing:
            parts.append(f"missing input(s) {missing}")
        raise invalid_argument(
            f"Signature {self.name!r} ({where}): {' and '.join(parts)}. "
            f"It takes {{{self.describe_inputs()}}}. "
            f"(input size does not match signature: {len(sent)}!={len(expected)}. "
            f"Sent extra: {{{','.join(extra)}}}. Missing but required: {{{','.join(missing)}}}.)"
        )

    def check_array(self, key: str, value: np.ndarray) -> None:
        """INVALID_ARGUMENT unless `value` fits the shape of input `key`."""
        spec = self.inputs[key]
        if not spec.shape.is_compatible_with(value.shape):
            raise invalid_argument(
                f"Input {key!r} of signature {self.name!r} must have shape {shape_text(spec.shape)} "
                f"(-1: any size); got shape {list(value.shape)}."
            )


def array_from_proto(key: str, proto: tensor_pb2.TensorProto, spec: TensorSpec, signature_name: str) -> np.ndarray:
    """The NumPy value of request input `key`, after checking its dtype and shape against `spec`."""
    if proto.dtype != spec.dtype.as_datatype_enum:
        raise invalid_argument(
            f"Input {key!r} of signature {signature_name!r} must be {dtype_name(spec.dtype)}; "
            f"got {dtype_name(proto.dtype)}."
        )
    if proto.tensor_shape.unknown_rank:
        raise invalid_argument(f"Input {key!r} of signature {signature_name!r} has no shape.")
    shape = [d.size for d in proto.tensor_shape.dim]
    if not spec.shape.is_compatible_with(shape):
        raise invalid_argument(
            f"Input {key!r} of signature {signature_name!r} must have shape {shape_text(spec.shape)} "
            f"(-1: any size); got shape {shape}."
        )
    try:
        value = ndarray_from_proto(proto)
    except (ValueError, TypeError) as error:
        raise invalid_argument(
            f"Input {key!r} of signature {signature_name!r} is not a valid tensor: {error}"
        ) from None
    if list(value.shape) != shape:
        raise invalid_argument(f"Input {key!r}: its values do not fill shape {shape}.")
    return value


def ndarray_from_proto(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """`tf.make_ndarray`, with fast paths for what clients send: numbers as `tensor_content`,
    strings as `string_val` (a read-only view for numbers)."""
    shape = [d.size for d in proto.tensor_shape.dim]
    size = int(np.prod(shape))
    if proto.dtype == types_pb2.DT_STRING:
        if len(proto.string_val) == size:
            return np.array(proto.string_val, dtype=object).reshape(shape)
    elif proto.tensor_content and proto.dtype in _NUMPY_DTYPES:
        dtype = _NUMPY_DTYPES[proto.dtype]
        if len(proto.tensor_content) == size * dtype.itemsize:
            return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape)
    return tf.make_ndarray(proto)


_NUMPY_DTYPES = {
    tf.as_dtype(d).as_datatype_enum: np.dtype(d)
    for d in (
        np.float16,
        np.float32,
        np.float64,
        np.int8,
        np.int16,
        np.int32,
        np.int64,
        np.uint8,
        np.uint16,
        np.uint32,
        np.uint64,
        np.bool_,
    )
}
_DTYPE_ENUMS = {dtype: enum for enum, dtype in _NUMPY_DTYPES.items()}


def proto_from_array(value) -> tensor_pb2.TensorProto:
    """`tf.make_tensor_proto`, with fast paths for numeric arrays and arrays of bytes / str."""
    value = np.asarray(value)
    proto = tensor_pb2.TensorProto()
    if value.dtype in _DTYPE_ENUMS:
        proto.dtype = _DTYPE_ENUMS[value.dtype]
        proto.tensor_content = np.ascontiguousarray(value).tobytes()
    elif value.dtype.kind in "OSU" and value.size and all(isinstance(v, (bytes, str)) for v in value.flat):
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(v.encode() if isinstance(v, str) else v for v in value.flat)
    else:
        return tf.make_tensor_proto(value)
    proto.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in value.shape)
    return proto


# --- tf.train.Example inputs of Classify and Regress ------------------------------------


def example_from_features(features: Mapping[str, Any]) -> tf.train.Example:
    """A `tf.train.Example` from `{name: value or list}` (str/bytes, float, int/bool).

    JSON-friendly: this is how TF Serving's REST classify/regress API turns an example
    object into an Example (floats -> float_list, ints and bools -> int64_list, strings ->
    bytes_list; `{"b64": ...}` -> bytes).
    """
    example = tf.train.Example()
    for name, value in features.items():
        values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
        feature = example.features.feature[name]
        kinds = set()
        for item in values:
            if isinstance(item, np.generic):
                item = item.item()
            if isinstance(item, dict) and set(item) == {"b64"} and isinstance(item["b64"], str):
                feature.bytes_list.value.append(base64.b64decode(item["b64"]))
                kinds.add("bytes")
            elif isinstance(item, (str, bytes)):
                feature.bytes_list.value.append(item.encode() if isinstance(item, str) else item)
                kinds.add("bytes")
            elif isinstance(item, bool) or isinstance(item, int):
                feature.int64_list.value.append(int(item))
                kinds.add("int64")
            elif isinstance(item, float):
                feature.float_list.value.append(item)
                kinds.add("float")
            else:
                raise invalid_argument(
                    f"Feature {name!r} has a value of unsupported type {type(item).__name__}: {item!r}."
                )
        if len(kinds) > 1:
            raise invalid_argument(f"Feature {name!r} mixes value types {sorted(kinds)}; use one type per feature.")
    return example
