"""TF Serving's REST API (`/v1/models/...`) on the standard library's threading HTTP server.

Routes, JSON formats and error bodies follow TF Serving's `http_rest_api_handler` and
`json_tensor`: predict in row (`instances`) or column (`inputs`) format, classify and
regress over example objects, model status and metadata; errors are `{"error": message}`
with TF Serving's HTTP status for the gRPC code (404 NOT_FOUND, 400 INVALID_ARGUMENT, ...)
and 413 for a body larger than the server's message limit.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import ssl
import threading
import urllib.parse
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    input_pb2,
    model_pb2,
    regression_pb2,
)

from tfzoo.serving import inference
from tfzoo.serving.errors import ServingError, invalid_argument
from tfzoo.serving.service import SIGNATURE_DEF_FIELD, ServingCore
from tfzoo.serving.tensors import Signature, TensorSpec, example_from_features

logger = logging.getLogger("tfzoo.serving")

# TF Serving's route patterns (http_rest_api_util.cc).
_PREDICTION_PATH = re.compile(
    r"(?i)/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)"
)
_STATUS_PATH = re.compile(r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?")
_BYTES_SUFFIX = "_bytes"
# An oversized body is read (and dropped) up to this many times the limit before the 413.
_DRAIN_LIMIT_FACTOR = 16


# --- JSON <-> arrays ---------------------------------------------------------------------


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _leaf(value: Any, dtype: tf.DType, where: str) -> Any:
    if dtype == tf.string:
        if isinstance(value, str):
            return value.encode()
        if _is_b64(value):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except ValueError:
                raise invalid_argument(f"{where}: unable to base64 decode {value!r}") from None
    elif dtype == tf.bool:
        if isinstance(value, bool):
            return value
    elif dtype.is_integer:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif dtype.is_floating:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
    else:
        raise invalid_argument(f"{where}: JSON has no encoding for {dtype.name}.")
    kind = "Object" if isinstance(value, dict) else type(value).__name__
    raise invalid_argument(
        f"{where}: JSON Value: {json.dumps(value)} Type: {kind} is not of expected type: {dtype.name}"
    )


def array_from_json(value: Any, spec: TensorSpec, where: str) -> np.ndarray:
    """A JSON value (nested lists of numbers / strings / b64 objects) as an array of `spec.dtype`."""
    shape = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    flat: list = []

    def visit(item, level):
        if level == len(shape):
            if isinstance(item, list):
                raise invalid_argument(f"{where}: list nested deeper than the first element's depth {len(shape)}.")
            flat.append(_leaf(item, spec.dtype, where))
            return
        if not isinstance(item, list) or len(item) != shape[level]:
            found = f"a list of {len(item)}" if isinstance(item, list) else json.dumps(item)
            raise invalid_argument(
                f"{where}: expected a list of {shape[level]} at depth {level + 1}, found {found} "
                "(tensors must be dense: every row the same shape)."
            )
        for child in item:
            visit(child, level + 1)

    visit(value, 0)
    numpy_dtype = object if spec.dtype == tf.string else spec.dtype.as_numpy_dtype
    try:
        array = np.array(flat, dtype=numpy_dtype).reshape(shape)
    except OverflowError:
        raise invalid_argument(f"{where}: a value does not fit {spec.dtype.name}.") from None
    if spec.dtype.is_integer and flat and array.reshape(-1).tolist() != flat:
        raise invalid_argument(f"{where}: a value does not fit {spec.dtype.name}.")
    return array


def _json_values(name: str, value: np.ndarray) -> Any:
    if value.dtype == object or value.dtype.kind == "S":
        as_bytes = name.endswith(_BYTES_SUFFIX)

        def encode(item: bytes):
            if not as_bytes:
                try:
                    return item.decode("utf-8")
                except UnicodeDecodeError:  # not text: JSON needs it base64-encoded
                    pass
            return {"b64": base64.b64encode(item).decode("ascii")}

        return np.vectorize(encode, otypes=[object])(value).tolist() if value.size else value.tolist()
    return value.tolist()


def predict_inputs_from_json(
    body: Mapping[str, Any], signature: Signature, model: str
) -> tuple[dict[str, np.ndarray], str]:
    """The inputs of a REST predict body, and its format ("row" or "column")."""
    inputs_spec = signature.inputs
    if not inputs_spec:
        raise invalid_argument(f"Failed to get input map for signature: {signature.name}")
    if "instances" in body and "inputs" in body:
        raise invalid_argument("Not formatted correctly: expecting only one of 'inputs' or 'instances' keys.")
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise invalid_argument("Expecting 'instances' to be a list/array.")
        if not instances:
            raise invalid_argument("No values in 'instances' array.")
        named = isinstance(instances[0], dict) and not _is_b64(instances[0])
        if not named:
            if len(inputs_spec) > 1:
                raise invalid_argument(
                    "instances is a plain list, but expecting list of objects as multiple input tensors required "
                    f"as per the signature: {{{signature.describe_inputs()}}}"
                )
            (key,) = inputs_spec
            return {key: array_from_json(instances, inputs_spec[key], f"input {key!r}")}, "row"
        columns: dict[str, list] = {key: [] for key in inputs_spec}
        for index, instance in enumerate(instances):
            if not isinstance(instance, dict) or _is_b64(instance):
                raise invalid_argument(
                    f"Expecting object but got {type(instance).__name__} at item {index} of 'instances'."
                )
            if set(instance) != set(inputs_spec):
                signature.check_input_names(list(instance), where=f"model {model!r}, instance {index}")
            for key, value in instance.items():
                columns[key].append(value)
        return {
            key: array_from_json(values, inputs_spec[key], f"input {key!r}") for key, values in columns.items()
        }, "row"
    if "inputs" in body:
        value = body["inputs"]
        if isinstance(value, dict) and not _is_b64(value):
            signature.check_input_names(list(value), where=f"model {model!r}")
            return {key: array_from_json(v, inputs_spec[key], f"input {key!r}") for key, v in value.items()}, "column"
        if len(inputs_spec) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input tensors "
                f"required as per the signature: {{{signature.describe_inputs()}}}"
            )
        (key,) = inputs_spec
        return {key: array_from_json(value, inputs_spec[key], f"input {key!r}")}, "column"
    raise invalid_argument("Missing 'inputs' or 'instances' key")


def predict_outputs_to_json(outputs: Mapping[str, np.ndarray], request_format: str) -> dict:
    if request_format == "column":
        values = {k: _json_values(k, v) for k, v in outputs.items()}
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    batch = None
    for key, value in outputs.items():
        if value.ndim == 0:
            raise invalid_argument(f"Tensor name: {key} has no shape information; use the column ('inputs') format.")
        if batch is not None and value.shape[0] != batch:
            raise invalid_argument(
                f"Tensor name: {key} has inconsistent batch size: {value.shape[0]} expecting: {batch}; "
                "use the column ('inputs') format."
            )
        batch = value.shape[0]
    columns = {k: _json_values(k, v) for k, v in outputs.items()}
    if len(columns) == 1:
        return {"predictions": next(iter(columns.values()))}
    return {"predictions": [{k: columns[k][i] for k in columns} for i in range(batch)]}


def examples_input_from_json(body: Mapping[str, Any]) -> input_pb2.Input:
    examples = body.get("examples")
    if examples is None:
        raise invalid_argument("Key 'examples' is expected and was not found.")
    if not isinstance(examples, list) or not examples:
        raise invalid_argument("Expecting 'examples' to be a non-empty list/array.")
    for index, example in enumerate(examples):
        if not isinstance(example, dict):
            raise invalid_argument(f"Example {index} must be a JSON object.")
    input_proto = input_pb2.Input()
    if "context" in body:
        if not isinstance(body["context"], dict):
            raise invalid_argument("'context' must be a JSON object.")
        target = input_proto.example_list_with_context
        target.context.CopyFrom(example_from_features(body["context"]))
    else:
        target = input_proto.example_list
    for example in examples:
        target.examples.add().CopyFrom(example_from_features(example))
    return input_proto


def message_to_json(message) -> dict:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


# --- HTTP ----------------------------------------------------------------------------------


class RestApi:
    """Dispatches REST requests to a `ServingCore`; returns (HTTP status, JSON-able body)."""

    def __init__(self, core: ServingCore):
        self.core = core

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict]:
        try:
            return 200, self._dispatch(method, path, body)
        except ServingError as error:
            return error.http_status, {"error": error.message}
        except Exception as error:
            logger.exception("REST %s %s failed", method, path)
            return 500, {"error": f"{type(error).__name__}: {error}"}

    def _dispatch(self, method: str, path: str, body: bytes) -> dict:
        path = urllib.parse.urlsplit(path).path
        if method == "POST" and (match := _PREDICTION_PATH.fullmatch(path)):
            name, version, label, verb = match.groups()
            spec = self._model_spec(name, version, label)
            request = self._json(body)
            if "signature_name" in request and not isinstance(request["signature_name"], str):
                raise invalid_argument("'signature_name' key must be a string value.")
            spec.signature_name = request.get("signature_name", "")
            return {"predict": self._predict, "classify": self._classify, "regress": self._regress}[verb.lower()](
                spec, request
            )
        if method == "GET" and (match := _STATUS_PATH.fullmatch(path)):
            name, version, label, subresource = match.groups()
            if not name:
                raise invalid_argument("Missing model name in request.")
            spec = self._model_spec(name, version, label)
            if subresource:
                request = get_model_metadata_pb2.GetModelMetadataRequest(
                    model_spec=spec, metadata_field=[SIGNATURE_DEF_FIELD]
                )
                response = self.core.get_model_metadata(request)
                signature_defs = get_model_metadata_pb2.SignatureDefMap()
                response.metadata[SIGNATURE_DEF_FIELD].Unpack(signature_defs)
                return {
                    "model_spec": message_to_json(response.model_spec),
                    "metadata": {SIGNATURE_DEF_FIELD: message_to_json(signature_defs)},
                }
            request = get_model_status_pb2.GetModelStatusRequest(model_spec=spec)
            return message_to_json(self.core.get_model_status(request))
        raise invalid_argument(f"Malformed request: {method} {path}")

    @staticmethod
    def _model_spec(name: str, version: str | None, label: str | None) -> model_pb2.ModelSpec:
        spec = model_pb2.ModelSpec(name=urllib.parse.unquote(name))
        if version is not None and label is not None:
            raise invalid_argument("Both model version and model version label cannot be supplied.")
        if version is not None:
            spec.version.value = int(version)
        if label is not None:
            spec.version_label = urllib.parse.unquote(label)
        return spec

    @staticmethod
    def _json(body: bytes) -> dict:
        if not body:
            raise invalid_argument("JSON Parse error: The document is empty")
        try:
            value = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise invalid_argument(f"JSON Parse error: {error}") from None
        if not isinstance(value, dict):
            raise invalid_argument("JSON Value: the request body is not an object.")
        return value

    def _predict(self, spec: model_pb2.ModelSpec, request: dict) -> dict:
        servable = self.core.servable(spec)
        signature = servable.signature(inference.signature_name(spec.signature_name))
        inputs, request_format = predict_inputs_from_json(request, signature, servable.model)
        _, outputs = inference.predict_arrays(servable, signature.name, inputs)
        return predict_outputs_to_json(outputs, request_format)

    def _classify(self, spec: model_pb2.ModelSpec, request: dict) -> dict:
        proto = classification_pb2.ClassificationRequest(model_spec=spec, input=examples_input_from_json(request))
        result = self.core.classify(proto).result
        return {"results": [[[c.label, c.score] for c in item.classes] for item in result.classifications]}

    def _regress(self, spec: model_pb2.ModelSpec, request: dict) -> dict:
        proto = regression_pb2.RegressionRequest(model_spec=spec, input=examples_input_from_json(request))
        return {"results": [r.value for r in self.core.regress(proto).result.regressions]}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse the connection
    # Headers and body go out as separate writes: without TCP_NODELAY, Nagle + delayed ACK
    # hold the body back ~40 ms.
    disable_nagle_algorithm = True
    server_version = "tfzoo-serving"
    api: RestApi
    max_body_bytes: int

    def do_GET(self):
        self._respond(*self.api.handle("GET", self.path, b""))

    def do_POST(self):
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            self.close_connection = True
            self._respond(411, {"error": "A Content-Length header is required."})
            return
        try:
            length = int(length_header)
        except ValueError:
            self.close_connection = True
            self._respond(400, {"error": f"Bad Content-Length: {length_header!r}"})
            return
        if length > self.max_body_bytes:
            # Clients write the whole body before reading the answer: drain a reasonable
            # amount so that they see the 413, then close the connection.
            self.close_connection = True
            remaining = length if length <= _DRAIN_LIMIT_FACTOR * self.max_body_bytes else 0
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 16))
                if not chunk:
                    break
                remaining -= len(chunk)
            self._respond(
                413,
                {
                    "error": f"Request body of {length} bytes exceeds the server's limit of "
                    f"{self.max_body_bytes} bytes (RESOURCE_EXHAUSTED)."
                },
            )
            return
        body = self.rfile.read(length)
        self._respond(*self.api.handle("POST", self.path, body))

    def _respond(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        logger.debug("REST %s - %s", self.address_string(), format % args)


class RestServer:
    """The REST API on `host:port` (port 0: any free port), in a background thread."""

    def __init__(
        self, core: ServingCore, host: str, port: int, *, max_body_bytes: int, ssl_context: ssl.SSLContext | None = None
    ):
        handler = type("RestHandler", (_Handler,), {"api": RestApi(core), "max_body_bytes": max_body_bytes})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        if ssl_context is not None:
            # The handshake runs in the request's thread, not in the accept loop.
            self._server.socket = ssl_context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="tfzoo-rest", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
