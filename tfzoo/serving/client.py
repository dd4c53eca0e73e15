"""`Client`: TF Serving's gRPC API from Python, for `tfzoo serve` and the TF Serving binary alike.

```python
with Client("127.0.0.1:8500") as client:
    client.status("mmoe_census")                     # [VersionState(version=1, state='AVAILABLE', ...)]
    signatures = client.metadata("mmoe_census").signatures
    scores = client.predict("mmoe_census", {"age": [39.0], "education": ["Bachelors"], ...})
    scores["income"], scores.version
```
Errors are `grpc.RpcError`s carrying the server's status code and message.

The client needs gRPC, NumPy and the TF Serving API protos (`tensorflow-serving-api`):
of tfzoo it imports the request tensors and the neutral input values, nothing of the
server, the exporters, the data package or the models.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from tensorflow_serving.config import model_server_config_pb2

from tfzoo.export.signature_values import synthesize_inputs
from tfzoo.serving.tensors import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_SIGNATURE,
    INTERNAL_SIGNATURE_PREFIX,
    TensorSpec,
    example_from_features,
    ndarray_from_proto,
    proto_from_array,
)


class Prediction(dict):
    """Output arrays keyed by output name, plus which model version and signature answered."""

    def __init__(self, outputs: Mapping[str, np.ndarray], *, model: str, version: int, signature: str):
        super().__init__(outputs)
        self.model = model
        self.version = version
        self.signature = signature


@dataclasses.dataclass(frozen=True)
class SignatureMetadata:
    name: str
    method_name: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]

    @classmethod
    def from_signature_def(cls, name: str, signature_def) -> SignatureMetadata:
        return cls(
            name,
            signature_def.method_name,
            {k: TensorSpec.from_tensor_info(k, v) for k, v in sorted(signature_def.inputs.items())},
            {k: TensorSpec.from_tensor_info(k, v) for k, v in sorted(signature_def.outputs.items())},
        )


@dataclasses.dataclass(frozen=True)
class ModelMetadata:
    model: str
    version: int
    signatures: dict[str, SignatureMetadata]  # served signatures (TF2's internal ones left out)


@dataclasses.dataclass(frozen=True)
class VersionState:
    version: int
    state: str  # START, LOADING, AVAILABLE, UNLOADING, END
    error_code: str  # OK, NOT_FOUND, ...
    error_message: str


def _model_spec(model: str, version: int | None, label: str | None, signature: str = "") -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=model, signature_name=signature)
    if version is not None:
        spec.version.value = int(version)
    if label:
        spec.version_label = label
    return spec


class Client:
    """A gRPC client of `tensorflow.serving.PredictionService` and `ModelService`.

    Args:
      target: `host:port` of the server.
      timeout: default deadline of each call, in seconds.
      root_certificates: PEM bytes of the CA that signed the server's certificate: the
        channel uses TLS (None: plaintext).
      server_name: the name to check the server certificate against, if not the host.
      max_message_bytes: largest message the client sends or accepts.
    """

    def __init__(
        self,
        target: str = "127.0.0.1:8500",
        *,
        timeout: float = 30.0,
        root_certificates: bytes | None = None,
        server_name: str | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ):
        self.target = target
        self.timeout = timeout
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        if root_certificates is not None:
            self._channel = grpc.secure_channel(
                target, grpc.ssl_channel_credentials(root_certificates), options=options
            )
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self.prediction = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self._channel)
        self._input_specs: dict[tuple, dict[str, TensorSpec]] = {}

    # --- PredictionService ------------------------------------------------------------

    def predict(
        self,
        model: str,
        inputs: Mapping[str, Any],
        *,
        signature: str = DEFAULT_SIGNATURE,
        version: int | None = None,
        label: str | None = None,
        output_filter: Sequence[str] = (),
        timeout: float | None = None,
    ) -> Prediction:
        """Runs `signature` of `model` on `inputs` (batched arrays keyed by input name).

        NumPy arrays are sent with their dtype; Python lists and scalars take the dtype the
        signature declares (read once from the server's metadata).
        """
        request = predict_pb2.PredictRequest(
            model_spec=_model_spec(model, version, label, signature), output_filter=list(output_filter)
        )
        specs = None
        for key, value in inputs.items():
            if not isinstance(value, np.ndarray):
                specs = specs or self._signature_inputs(model, version, label, signature)
                dtype = specs[key].dtype if key in specs else None
                value = np.asarray(
                    value, dtype=object if dtype == tf.string else (dtype.as_numpy_dtype if dtype else None)
                )
            request.inputs[key].CopyFrom(proto_from_array(value))
        response = self.prediction.Predict(request, timeout=timeout or self.timeout)
        return Prediction(
            {k: np.array(ndarray_from_proto(v)) for k, v in response.outputs.items()},
            model=response.model_spec.name,
            version=response.model_spec.version.value,
            signature=response.model_spec.signature_name,
        )

    def _signature_inputs(self, model, version, label, signature) -> dict[str, TensorSpec]:
        key = (model, version, label, signature)
        if key not in self._input_specs:
            signatures = self.metadata(model, version=version, label=label).signatures
            self._input_specs[key] = signatures[signature].inputs if signature in signatures else {}
        return self._input_specs[key]

    def classify(
        self,
        model: str,
        examples: Sequence[Mapping[str, Any]],
        *,
        context: Mapping[str, Any] | None = None,
        signature: str = DEFAULT_SIGNATURE,
        version: int | None = None,
        label: str | None = None,
        timeout: float | None = None,
    ) -> list[list[tuple[str, float]]]:
        """Classify over feature dicts (values: str/bytes, float, int, or lists of one type)."""
        request = classification_pb2.ClassificationRequest(model_spec=_model_spec(model, version, label, signature))
        self._fill_input(request.input, examples, context)
        response = self.prediction.Classify(request, timeout=timeout or self.timeout)
        return [[(c.label, c.score) for c in item.classes] for item in response.result.classifications]

    def regress(
        self,
        model: str,
        examples: Sequence[Mapping[str, Any]],
        *,
        context: Mapping[str, Any] | None = None,
        signature: str = DEFAULT_SIGNATURE,
        version: int | None = None,
        label: str | None = None,
        timeout: float | None = None,
    ) -> list[float]:
        request = regression_pb2.RegressionRequest(model_spec=_model_spec(model, version, label, signature))
        self._fill_input(request.input, examples, context)
        response = self.prediction.Regress(request, timeout=timeout or self.timeout)
        return [r.value for r in response.result.regressions]

    @staticmethod
    def _fill_input(input_proto, examples, context) -> None:
        target = input_proto.example_list_with_context if context is not None else input_proto.example_list
        if context is not None:
            target.context.CopyFrom(example_from_features(context))
        for example in examples:
            target.examples.add().CopyFrom(
                example if isinstance(example, tf.train.Example) else example_from_features(example)
            )

    def metadata(
        self, model: str, *, version: int | None = None, label: str | None = None, timeout: float | None = None
    ) -> ModelMetadata:
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=_model_spec(model, version, label), metadata_field=["signature_def"]
        )
        response = self.prediction.GetModelMetadata(request, timeout=timeout or self.timeout)
        signature_defs = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_defs)
        signatures = {
            name: SignatureMetadata.from_signature_def(name, definition)
            for name, definition in sorted(signature_defs.signature_def.items())
            if not name.startswith(INTERNAL_SIGNATURE_PREFIX)
        }
        return ModelMetadata(response.model_spec.name, response.model_spec.version.value, signatures)

    # --- ModelService -------------------------------------------------------------------

    def status(
        self, model: str, *, version: int | None = None, label: str | None = None, timeout: float | None = None
    ) -> list[VersionState]:
        request = get_model_status_pb2.GetModelStatusRequest(model_spec=_model_spec(model, version, label))
        response = self.models.GetModelStatus(request, timeout=timeout or self.timeout)
        state_name = get_model_status_pb2.ModelVersionStatus.State.Name
        return [
            VersionState(
                s.version, state_name(s.state), grpc.StatusCode(_code(s.status.error_code)).name, s.status.error_message
            )
            for s in response.model_version_status
        ]

    def reload_config(self, config: model_server_config_pb2.ModelServerConfig, *, timeout: float | None = None) -> None:
        response = self.models.HandleReloadConfigRequest(
            model_management_pb2.ReloadConfigRequest(config=config), timeout=timeout or self.timeout
        )
        if response.status.error_code:
            raise RuntimeError(f"reload config failed: {response.status.error_message}")

    def wait_until_available(self, model: str, *, version: int | None = None, timeout: float = 30.0) -> int:
        """Waits (polling status) until `model` (or its `version`) is AVAILABLE; returns the version."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                available = [
                    s.version for s in self.status(model, version=version, timeout=5) if s.state == "AVAILABLE"
                ]
                if available:
                    return max(available)
            except grpc.RpcError as error:
                if error.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE):
                    raise
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{model}{'' if version is None else f' version {version}'} not available after {timeout} s"
                )
            time.sleep(0.05)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _code(error_code: int):
    return next(code for code in grpc.StatusCode if code.value[0] == error_code)


def example_inputs(
    signature: SignatureMetadata, warmup: Sequence[prediction_log_pb2.PredictionLog] = (), *, batch_size: int = 1
) -> dict[str, np.ndarray]:
    """A valid request for `signature`: from its warm-up record if there is one, else neutral values.

    Warm-up records (written at export from the model's feature spec) hold realistic rows;
    the first `batch_size` rows of the first record of this signature are used. Without
    one, inputs are zeros / empty strings shaped by the signature's metadata.
    """
    records = []
    for log in warmup:
        if log.WhichOneof("log_type") != "predict_log":
            continue
        request = log.predict_log.request
        if (request.model_spec.signature_name or DEFAULT_SIGNATURE) == signature.name and set(request.inputs) == set(
            signature.inputs
        ):
            records.append({k: tf.make_ndarray(v) for k, v in request.inputs.items()})
    if records:
        if not all(s.is_batched for s in signature.inputs.values()):
            return records[0]
        # The smallest record with enough rows (else the largest), cut to `batch_size` rows.
        rows = [min(len(v) for v in r.values()) for r in records]
        enough = [i for i, n in enumerate(rows) if n >= batch_size]
        chosen = records[min(enough, key=rows.__getitem__) if enough else max(range(len(rows)), key=rows.__getitem__)]
        return {k: v[:batch_size] for k, v in chosen.items()}
    return synthesize_inputs({k: tf.TensorSpec(s.shape, s.dtype) for k, s in signature.inputs.items()}, batch_size)
