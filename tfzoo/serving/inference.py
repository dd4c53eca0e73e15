"""Predict, Classify and Regress on one loaded version, with TF Serving's request semantics.

The gRPC service, the REST API and warm-up replay all go through these functions, so the
three cannot answer the same request differently.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import grpc
import numpy as np
from tensorflow_serving.apis import (
    classification_pb2,
    input_pb2,
    predict_pb2,
    prediction_log_pb2,
    regression_pb2,
)

from tfzoo.serving.errors import ServingError, invalid_argument
from tfzoo.serving.servable import ServableVersion
from tfzoo.serving.tensors import (
    CLASSIFY_METHOD,
    DEFAULT_SIGNATURE,
    REGRESS_METHOD,
    Signature,
    array_from_proto,
    proto_from_array,
)

logger = logging.getLogger("tfzoo.serving")


def signature_name(name: str) -> str:
    return name or DEFAULT_SIGNATURE


def check_output_filter(signature: Signature, output_filter: Sequence[str]) -> list[str]:
    """The output keys to return: `output_filter` (checked) or all outputs."""
    seen = set()
    for key in output_filter:
        if key not in signature.outputs:
            raise invalid_argument(
                f"output tensor alias not found in signature {signature.name!r}: {key}. "
                f"Outputs expected to be in the set {{{','.join(signature.outputs)}}}."
            )
        if key in seen:
            raise invalid_argument(f"duplicate output tensor alias: {key}")
        seen.add(key)
    return list(output_filter) or list(signature.outputs)


def predict_arrays(
    servable: ServableVersion, name: str, inputs: Mapping[str, np.ndarray], output_filter: Sequence[str] = ()
) -> tuple[Signature, dict[str, np.ndarray]]:
    """Runs signature `name` on NumPy inputs (already of the signature's dtypes)."""
    signature = servable.signature(signature_name(name))
    signature.check_input_names(list(inputs), where=f"model {servable.model!r}")
    for key, value in inputs.items():
        signature.check_array(key, value)
    keys = check_output_filter(signature, output_filter)
    outputs = servable.run(signature, inputs)
    return signature, {k: outputs[k] for k in keys}


def predict(servable: ServableVersion, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
    signature = servable.signature(signature_name(request.model_spec.signature_name))
    signature.check_input_names(list(request.inputs), where=f"model {servable.model!r}")
    inputs = {
        key: array_from_proto(key, proto, signature.inputs[key], signature.name)
        for key, proto in request.inputs.items()
    }
    _, outputs = predict_arrays(servable, signature.name, inputs, list(request.output_filter))
    response = predict_pb2.PredictResponse()
    _fill_model_spec(response.model_spec, servable, signature.name)
    for key, value in outputs.items():
        response.outputs[key].CopyFrom(proto_from_array(value))
    return response


def serialized_examples(input_proto: input_pb2.Input) -> list[bytes]:
    """The request's tf.Examples, serialized; context features merged into each example.

    Concatenating two serialized messages merges them (later map entries win), which is
    how TF Serving joins an ExampleListWithContext's context to each example.
    """
    kind = input_proto.WhichOneof("kind")
    if kind == "example_list":
        examples = [e.SerializeToString() for e in input_proto.example_list.examples]
    elif kind == "example_list_with_context":
        context = input_proto.example_list_with_context.context.SerializeToString()
        examples = [context + e.SerializeToString() for e in input_proto.example_list_with_context.examples]
    else:
        raise invalid_argument("Input is empty: set input.example_list or input.example_list_with_context.")
    if not examples:
        raise invalid_argument("Input is empty: the request holds no examples.")
    return examples


def _examples_signature(servable: ServableVersion, name: str, method: str, api: str) -> Signature:
    signature = servable.signature(signature_name(name))
    if signature.method_name != method:
        raise invalid_argument(
            f"Signature {signature.name!r} of model {servable.model!r} does not support {api}: expected "
            f"method_name {method}, was {signature.method_name}. Use Predict, or a signature exported for {api}."
        )
    if len(signature.inputs) != 1:
        raise invalid_argument(
            f"{api} signature {signature.name!r} must have one input (serialized tf.Examples); "
            f"it has {sorted(signature.inputs)}."
        )
    return signature


def _run_examples(servable: ServableVersion, signature: Signature, examples: list[bytes]) -> dict[str, np.ndarray]:
    (key,) = signature.inputs
    return servable.run(signature, {key: np.array(examples, dtype=object)})


def classify(
    servable: ServableVersion, request: classification_pb2.ClassificationRequest
) -> classification_pb2.ClassificationResponse:
    """TF Serving's Classify: a `classify` signature, tf.Examples in, `classes` / `scores` out."""
    signature = _examples_signature(servable, request.model_spec.signature_name, CLASSIFY_METHOD, "Classify")
    if not {"classes", "scores"} & set(signature.outputs):
        raise invalid_argument(f"Classify signature {signature.name!r} has neither a 'classes' nor a 'scores' output.")
    examples = serialized_examples(request.input)
    outputs = _run_examples(servable, signature, examples)
    classes, scores = outputs.get("classes"), outputs.get("scores")
    num = len(examples)
    for name, value in (("classes", classes), ("scores", scores)):
        if value is not None and (value.ndim != 2 or value.shape[0] != num):
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Expected {name} output shape [{num}, num_classes]; got {list(value.shape)}.",
            )
    if classes is not None and scores is not None and classes.shape != scores.shape:
        raise invalid_argument(f"classes {list(classes.shape)} and scores {list(scores.shape)} differ in shape.")
    response = classification_pb2.ClassificationResponse()
    _fill_model_spec(response.model_spec, servable, signature.name)
    width = (classes if classes is not None else scores).shape[1]
    for i in range(num):
        classifications = response.result.classifications.add()
        for j in range(width):
            label = classes[i, j].decode("utf-8", "replace") if classes is not None else ""
            score = float(scores[i, j]) if scores is not None else 0.0
            classifications.classes.add(label=label, score=score)
    return response


def regress(servable: ServableVersion, request: regression_pb2.RegressionRequest) -> regression_pb2.RegressionResponse:
    """TF Serving's Regress: a `regress` signature, tf.Examples in, one `outputs` value per example."""
    signature = _examples_signature(servable, request.model_spec.signature_name, REGRESS_METHOD, "Regress")
    if "outputs" not in signature.outputs:
        raise invalid_argument(f"Regress signature {signature.name!r} has no 'outputs' output.")
    examples = serialized_examples(request.input)
    values = _run_examples(servable, signature, examples)["outputs"]
    num = len(examples)
    if values.shape not in ((num,), (num, 1)):
        raise invalid_argument(f"Expected output shape [{num}] or [{num}, 1]; got {list(values.shape)}.")
    response = regression_pb2.RegressionResponse()
    _fill_model_spec(response.model_spec, servable, signature.name)
    for value in values.reshape(-1):
        response.result.regressions.add(value=float(value))
    return response


def _fill_model_spec(spec, servable: ServableVersion, name: str) -> None:
    spec.name = servable.model
    spec.version.value = servable.version
    spec.signature_name = name


def replay_warmup(servable: ServableVersion, logs: Sequence[prediction_log_pb2.PredictionLog]) -> int:
    """Runs TF Serving warm-up records against `servable`; returns how many ran.

    Raises:
      ServingError: a record fails (the version must not take traffic); names the record.
    """
    handlers = {
        "predict_log": lambda log: predict(servable, log.predict_log.request),
        "classify_log": lambda log: classify(servable, log.classify_log.request),
        "regress_log": lambda log: regress(servable, log.regress_log.request),
    }
    ran = 0
    for index, log in enumerate(logs):
        kind = log.WhichOneof("log_type")
        if kind not in handlers:
            logger.warning(
                "%s/%d: warm-up record %d is a %s, which tfzoo serve does not replay",
                servable.model,
                servable.version,
                index,
                kind,
            )
            continue
        try:
            handlers[kind](log)
        except ServingError as error:
            raise ServingError(error.code, f"warm-up record {index} ({kind}) failed: {error.message}") from None
        ran += 1
    return ran
