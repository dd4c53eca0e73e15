"""Every zoo model over real gRPC and HTTP: the same numbers as in-process, metadata, status;
8 concurrent gRPC clients x 200 requests: no error, every answer right. (One file: the
exported zoo is built once per pytest worker, and it takes minutes.)"""

from __future__ import annotations

import threading

import grpc
import numpy as np
import pytest

from tests.serving.helpers import (
    ZOO_MODELS,
    assert_outputs_close,
    predict_signatures,
    request_inputs,
    rest_call,
    to_json,
)
from tfzoo.export import read_models_config, read_warmup_requests
from tfzoo.serving import Client, ModelServer, ServerOptions
from tfzoo.serving.servable import read_saved_model

pytestmark = pytest.mark.timeout(300)  # fixtures included, another pytest worker beside

MODELS = pytest.mark.parametrize("model", ZOO_MODELS)


def _requests(model: str, client: Client, server: ModelServer):
    """(signature, inputs) for each Predict signature of the model."""
    metadata = client.metadata(model)
    warmup = read_warmup_requests(server.manager.servable(model).path)
    signatures = predict_signatures(metadata)
    assert "serving_default" in signatures
    return [(name, request_inputs(metadata.signatures[name], warmup, rows=3)) for name in signatures]


@MODELS
def test_grpc_predict_equals_in_process(model, zoo_server, zoo_models):
    reference = zoo_models[1][model]
    with Client(zoo_server.grpc_target) as client:
        for signature, inputs in _requests(model, client, zoo_server):
            prediction = client.predict(model, inputs, signature=signature)
            assert (prediction.model, prediction.version, prediction.signature) == (model, 1, signature)
            assert_outputs_close(prediction, reference(signature, inputs))


@MODELS
def test_rest_predict_row_and_column_formats_equal_in_process(model, zoo_server, zoo_models):
    reference = zoo_models[1][model]
    with Client(zoo_server.grpc_target) as client:
        requests = _requests(model, client, zoo_server)
    for signature, inputs in requests:
        expected = reference(signature, inputs)
        rows = len(next(iter(inputs.values())))
        instances = [{k: to_json(v[i]) for k, v in inputs.items()} for i in range(rows)]
        status, body = rest_call(
            zoo_server.rest_url, f"/v1/models/{model}:predict", {"signature_name": signature, "instances": instances}
        )
        assert status == 200, body
        predictions = body["predictions"]
        if len(expected) == 1:  # one output: its values directly (TF Serving's row format)
            predictions = [{next(iter(expected)): p} for p in predictions]
        assert_outputs_close({k: np.array([p[k] for p in predictions]) for k in expected}, expected)

        status, body = rest_call(
            zoo_server.rest_url,
            f"/v1/models/{model}/versions/1:predict",
            {"signature_name": signature, "inputs": {k: to_json(v) for k, v in inputs.items()}},
        )
        assert status == 200, body
        outputs = body["outputs"] if len(expected) > 1 else {next(iter(expected)): body["outputs"]}
        assert_outputs_close({k: np.array(v) for k, v in outputs.items()}, expected)


@MODELS
def test_metadata_and_status_over_grpc_and_rest(model, zoo_server):
    with Client(zoo_server.grpc_target) as client:
        metadata = client.metadata(model)
        signatures = predict_signatures(metadata)
        assert metadata.version == 1
        servable = zoo_server.manager.servable(model)
        assert set(metadata.signatures) == set(servable.signatures)
        for name in signatures:
            served = servable.signature(name)
            assert {k: (s.dtype, s.shape.as_list()) for k, s in metadata.signatures[name].inputs.items()} == {
                k: (s.dtype, s.shape.as_list()) for k, s in served.inputs.items()
            }
        states = client.status(model)
        assert [(s.version, s.state, s.error_code) for s in states] == [(1, "AVAILABLE", "OK")]

    status, body = rest_call(zoo_server.rest_url, f"/v1/models/{model}")
    assert status == 200
    assert body == {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    status, body = rest_call(zoo_server.rest_url, f"/v1/models/{model}/versions/1/metadata")
    assert status == 200
    assert body["model_spec"]["name"] == model and body["model_spec"]["version"] == "1"
    signature_defs = body["metadata"]["signature_def"]["signature_def"]
    for name in signatures:
        assert signature_defs[name]["method_name"] == "tensorflow/serving/predict"
        assert set(signature_defs[name]["inputs"]) == set(metadata.signatures[name].inputs)


@MODELS
def test_wrong_inputs_are_invalid_argument_naming_the_input(model, zoo_server):
    with Client(zoo_server.grpc_target) as client:
        for signature, inputs in _requests(model, client, zoo_server):
            first = sorted(inputs)[0]
            wrong_dtype = np.zeros(inputs[first].shape, np.int8)  # no zoo signature takes int8
            bad_requests = {
                "not_an_input": {**inputs, "not_an_input": np.zeros(3, np.float32)},
                first: {k: v for k, v in inputs.items() if k != first},
            }
            for named, bad in [
                *bad_requests.items(),
                (first, {**inputs, first: wrong_dtype}),
                (first, {**inputs, first: inputs[first][..., np.newaxis]}),
            ]:
                with pytest.raises(grpc.RpcError) as error:
                    client.predict(model, bad, signature=signature)
                assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (signature, named)
                assert repr(named) in error.value.details() or named in error.value.details()


def test_warmup_records_hold_every_signature_input(zoo_models):
    base, _ = zoo_models
    # Every exported model, including the extra ones an exporter writes (a brute-force twin).
    exported_models = sorted(d.name for d in base.iterdir() if d.is_dir())
    assert set(ZOO_MODELS) <= set(exported_models)
    for model in exported_models:
        path = base / model / "1"
        logs = read_warmup_requests(path)
        signatures = {log.predict_log.request.model_spec.signature_name for log in logs}
        exported = read_saved_model(path).meta_graphs[0].signature_def
        assert signatures == set(exported) - {"__saved_model_init_op"}, model
        assert all(log.predict_log.request.model_spec.name == model for log in logs)
    config = read_models_config(base / "models.config")
    assert {c.name for c in config.model_config_list.config} == set(exported_models)


@pytest.fixture(scope="module")
def small_server(small_models):
    server = ModelServer(ServerOptions(model_base_path=small_models, port=0, rest_port=0, poll_seconds=0)).start()
    yield server
    server.stop()


def test_classify_and_regress_on_tf1_signatures(small_server):
    # y = 0.5 x + 2; classify scores [sigmoid(y), 1 - sigmoid(y)] labelled high / low.
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    with Client(small_server.grpc_target) as client:
        assert client.regress("half_plus_two", [{"x": 2.0}, {"x": 4.0}], signature="regress") == [3.0, 4.0]
        # Context features join every example; an example's own value wins.
        assert client.regress("half_plus_two", [{}, {"x": 6.0}], context={"x": 2.0}, signature="regress") == [3.0, 5.0]
        classes = client.classify("half_plus_two", [{"x": 0.0}], signature="classify")
        assert [label for label, _ in classes[0]] == ["high", "low"]
        np.testing.assert_allclose([score for _, score in classes[0]], [sigmoid(2.0), 1 - sigmoid(2.0)], rtol=1e-6)
        assert client.predict("half_plus_two", {"x": np.array([1.0, 3.0], np.float32)})["y"].tolist() == [2.5, 3.5]

    status, body = rest_call(
        small_server.rest_url,
        "/v1/models/half_plus_two:regress",
        {"signature_name": "regress", "examples": [{"x": 2.0}, {"x": 4.0}]},
    )
    assert (status, body) == (200, {"results": [3.0, 4.0]})
    status, body = rest_call(
        small_server.rest_url,
        "/v1/models/half_plus_two:classify",
        {"signature_name": "classify", "examples": [{"x": 0.0}]},
    )
    assert status == 200 and [label for label, _ in body["results"][0]] == ["high", "low"]
    status, body = rest_call(small_server.rest_url, "/v1/models/half_plus_two:predict", {"instances": [1.0, 3.0]})
    assert (status, body) == (200, {"predictions": [2.5, 3.5]})


def test_classify_on_a_predict_signature_is_invalid_argument(small_server):
    with Client(small_server.grpc_target) as client:
        with pytest.raises(grpc.RpcError) as error:
            client.classify("ranker", [{"num_0": 1.0}])
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "does not support Classify" in error.value.details()


def test_discovery_without_config_serves_every_model_directory(small_server):
    assert small_server.manager.model_names() == ["half_plus_two", "ranker"]


CLIENTS = 8
REQUESTS_PER_CLIENT = 200


@pytest.mark.timeout(360)
def test_concurrent_clients_get_their_own_answers_with_zero_errors(zoo_server, zoo_models):
    _, references = zoo_models
    names = ZOO_MODELS
    # Each client sends its own rows (1-3 of them) to its own model, so a mixed-up batch shows.
    work = []
    with Client(zoo_server.grpc_target) as client:
        for client_index in range(CLIENTS):
            name = names[client_index % len(names)]
            signature = client.metadata(name).signatures["serving_default"]
            warmup = read_warmup_requests(zoo_server.manager.servable(name).path)
            inputs = request_inputs(signature, warmup, start=client_index * 5, rows=1 + client_index % 3)
            work.append((name, inputs, references[name]("serving_default", inputs)))
    batches_before = sum(zoo_server.manager.servable(n).batches_run for n in names)
    errors, mismatches, counts = [], [], [0] * CLIENTS
    start = threading.Barrier(CLIENTS)

    def client_loop(index):
        name, inputs, expected = work[index]
        with Client(zoo_server.grpc_target, timeout=30) as client:
            start.wait()
            for _ in range(REQUESTS_PER_CLIENT):
                try:
                    prediction = client.predict(name, inputs)
                except grpc.RpcError as error:
                    errors.append(f"{name}: {error.code().name}: {error.details()}")
                    continue
                counts[index] += 1
                if not all(np.allclose(prediction[k], expected[k], atol=1e-6) for k in expected):
                    mismatches.append(name)

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=170)
    assert errors == [] and mismatches == []
    assert counts == [REQUESTS_PER_CLIENT] * CLIENTS
    # Batching is on in this server: concurrent requests shared model calls.
    batches = sum(zoo_server.manager.servable(n).batches_run for n in names) - batches_before
    assert 0 < batches < CLIENTS * REQUESTS_PER_CLIENT
