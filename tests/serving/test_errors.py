"""Bad requests get TF Serving's status codes (gRPC) and HTTP statuses (REST), never a crash."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2

from tests.serving.helpers import ZOO_MAX_MESSAGE_BYTES, ranker_rows, rest_call, to_json
from tfzoo.serving import Client

pytestmark = pytest.mark.timeout(300)  # fixtures included, another pytest worker beside

MODEL = "mmoe"
GOOD = ranker_rows("serving_default", rows=2)


def _predict_error(client: Client, inputs, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        client.predict(kwargs.pop("model", MODEL), inputs, **kwargs)
    return error.value


@pytest.fixture(scope="module")
def client(ranker_server):
    with Client(ranker_server.grpc_target) as client:
        yield client


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"model": "no_such_model"}, "no_such_model"),
        ({"version": 7}, "Specific(mmoe, 7)"),
        ({"label": "canary"}, "canary"),
        ({"signature": "no_such_signature"}, "no_such_signature"),
    ],
    ids=["model", "version", "label", "signature"],
)
def test_unknown_model_version_label_signature_are_not_found(client, kwargs, fragment):
    error = _predict_error(client, GOOD, **kwargs)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert fragment in error.details()


def _with(**changes):
    inputs = dict(GOOD)
    for key, value in changes.items():
        if value is None:
            inputs.pop(key)
        else:
            inputs[key] = value
    return inputs


@pytest.mark.parametrize(
    "inputs, named",
    [
        (_with(not_a_feature=np.zeros(2, np.float32)), "not_a_feature"),  # unknown input name
        (_with(num_0=None), "num_0"),  # missing input
        (_with(num_1=GOOD["num_1"].astype(np.float64)), "num_1"),  # float64 for float32
        (_with(cat_0=np.array([1, 2], np.int64)), "cat_0"),  # int64 for string
        (_with(item_vector=np.zeros((2, 8), np.float32)), "item_vector"),  # [2, 8] for [-1, 16]
        (_with(num_2=np.zeros((2, 1), np.float32)), "num_2"),  # rank 2 for rank 1
    ],
    ids=["unknown-name", "missing", "dtype-float64", "dtype-int64", "shape", "rank"],
)
def test_wrong_inputs_are_invalid_argument_naming_the_input(client, inputs, named):
    error = _predict_error(client, inputs)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert named in error.details()


def test_other_bad_requests_are_invalid_argument(client):
    error = _predict_error(client, GOOD, output_filter=["no_such_output"])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "no_such_output" in error.details()
    # Values that do not fill the declared shape.
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    for key, value in GOOD.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    request.inputs["num_0"].tensor_shape.dim[0].size = 5
    request.inputs["num_0"].tensor_content = np.zeros(3, np.float32).tobytes()
    with pytest.raises(grpc.RpcError) as error:
        client.prediction.Predict(request, timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "num_0" in error.value.details()
    # Metadata needs a supported field.
    with pytest.raises(grpc.RpcError) as error:
        client.prediction.GetModelMetadata(
            get_model_metadata_pb2.GetModelMetadataRequest(model_spec={"name": MODEL}, metadata_field=["not_a_field"]),
            timeout=10,
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_oversized_message_is_resource_exhausted_and_the_server_keeps_serving(client, ranker_server):
    rows = ZOO_MAX_MESSAGE_BYTES // (16 * 4) + 10
    big = {k: np.repeat(v[:1], rows, axis=0) for k, v in GOOD.items()}
    error = _predict_error(client, big)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert client.status(MODEL)[0].state == "AVAILABLE"
    assert set(client.predict(MODEL, GOOD)) == {"ctr", "atc", "cvr"}
    status, body = rest_call(
        ranker_server.rest_url,
        f"/v1/models/{MODEL}:predict",
        raw=b'{"instances": [' + b"0," * ZOO_MAX_MESSAGE_BYTES + b"0]}",
    )
    assert status == 413 and "exceeds" in body["error"]


def _instances(inputs):
    rows = len(next(iter(inputs.values())))
    return [{k: to_json(v[i]) for k, v in inputs.items()} for i in range(rows)]


@pytest.mark.parametrize(
    "path, body, status, fragment",
    [
        ("/v1/models/no_such_model:predict", {"instances": _instances(GOOD)}, 404, "no_such_model"),
        (f"/v1/models/{MODEL}/versions/7:predict", {"instances": _instances(GOOD)}, 404, "Specific(mmoe, 7)"),
        (f"/v1/models/{MODEL}/labels/canary:predict", {"instances": _instances(GOOD)}, 404, "canary"),
        (f"/v1/models/{MODEL}:predict", {"signature_name": "nope", "instances": _instances(GOOD)}, 404, "nope"),
        (f"/v1/models/{MODEL}:predict", {"instances": _instances(_with(bogus=np.zeros(2, np.float32)))}, 400, "bogus"),
        (
            f"/v1/models/{MODEL}:predict",
            {"inputs": {k: to_json(v) for k, v in _with(num_0=None).items()}},
            400,
            "num_0",
        ),
        (
            f"/v1/models/{MODEL}:predict",
            {"inputs": {k: to_json(v) for k, v in _with(num_3=np.array(["a", "b"])).items()}},
            400,
            "num_3",
        ),
        (
            f"/v1/models/{MODEL}:predict",
            {"inputs": {**{k: to_json(v) for k, v in GOOD.items()}, "item_vector": [[0.0] * 16, [0.0] * 15]}},
            400,
            "item_vector",
        ),
        (
            f"/v1/models/{MODEL}:predict",
            {"inputs": {**{k: to_json(v) for k, v in GOOD.items()}, "item_vector": [[0.0] * 8, [0.0] * 8]}},
            400,
            "item_vector",
        ),
        (f"/v1/models/{MODEL}:predict", {"instances": [], "inputs": {}}, 400, "only one of"),
        (f"/v1/models/{MODEL}:predict", {"signature_name": 3}, 400, "signature_name"),
        (f"/v1/models/{MODEL}:classify", {"examples": [{"num_0": 1.0}]}, 400, "does not support Classify"),
        (f"/v1/models/{MODEL}/versions/1/labels/x:predict", {"instances": [1]}, 400, "Malformed request"),
    ],
    ids=[
        "model",
        "version",
        "label",
        "signature",
        "extra-input",
        "missing-input",
        "dtype",
        "ragged",
        "shape",
        "both-formats",
        "signature-type",
        "classify-predict-signature",
        "malformed-path",
    ],
)
def test_rest_errors_have_tf_serving_statuses_and_error_bodies(ranker_server, path, body, status, fragment):
    got_status, got_body = rest_call(ranker_server.rest_url, path, body)
    assert got_status == status, got_body
    assert set(got_body) == {"error"} and fragment in got_body["error"]


def test_rest_rejects_bad_json_and_unknown_routes(ranker_server):
    status, body = rest_call(ranker_server.rest_url, f"/v1/models/{MODEL}:predict", raw=b"{not json")
    assert status == 400 and "JSON Parse error" in body["error"]
    status, body = rest_call(ranker_server.rest_url, "/v1/models/no_such_model")
    assert status == 404 and "no_such_model" in body["error"]
    status, body = rest_call(ranker_server.rest_url, f"/v1/models/{MODEL}/versions/9/metadata")
    assert status == 404
    # Still healthy afterwards.
    status, body = rest_call(
        ranker_server.rest_url, f"/v1/models/{MODEL}:predict", {"inputs": {k: to_json(v) for k, v in GOOD.items()}}
    )
    assert status == 200 and len(body["outputs"]["ctr"]) == 2
    assert json.dumps(body)
