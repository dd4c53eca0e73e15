"""Versions: hot swap under traffic, unloading, policies and labels, config reloads, failed loads."""

from __future__ import annotations

import shutil
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tests.serving.helpers import copy_version, export_ranker, ranker_rows, rest_call, to_json
from tfzoo.export import (
    add_to_models_config,
    predict_log,
    read_models_config,
    write_models_config,
    write_warmup_requests,
)
from tfzoo.serving import Client, ModelServer, ServerOptions
from tfzoo.serving.servable import read_saved_model

pytestmark = pytest.mark.timeout(240)

INPUTS = ranker_rows("serving_default", rows=2)


def _served_versions(server, name):
    return sorted(server.manager._model(name, name).available)


def test_new_version_takes_traffic_while_clients_run_without_a_failed_request(tmp_path):
    reference_1 = export_ranker("shared_bottom", tmp_path, "ranker", seed=0)
    expected = {1: reference_1("serving_default", INPUTS)}
    results, errors, stop = [], [], threading.Event()
    body = {"inputs": {k: to_json(v) for k, v in INPUTS.items()}}

    def grpc_loop(target):
        with Client(target) as client:
            while not stop.is_set():
                try:
                    prediction = client.predict("ranker", INPUTS)
                    results.append(("grpc", prediction.version, dict(prediction)))
                except grpc.RpcError as error:
                    errors.append(f"gRPC {error.code().name}: {error.details()}")

    def rest_loop(url):
        while not stop.is_set():
            status, answer = rest_call(url, "/v1/models/ranker:predict", body)
            if status != 200:
                errors.append(f"REST {status}: {answer}")
            else:
                results.append(("rest", None, {k: np.array(v) for k, v in answer["outputs"].items()}))

    with ModelServer(ServerOptions(model_base_path=tmp_path, port=0, rest_port=0, poll_seconds=0.1)) as server:
        threads = [
            threading.Thread(target=grpc_loop, args=(server.grpc_target,)),
            threading.Thread(target=rest_loop, args=(server.rest_url,)),
        ]
        for thread in threads:
            thread.start()
        try:
            while len(results) < 20 and not errors:
                time.sleep(0.01)
            # A real export, written atomically while the server polls and the clients run.
            expected[2] = export_ranker("shared_bottom", tmp_path, "ranker", seed=1)("serving_default", INPUTS)
            deadline = time.monotonic() + 60
            while not any(version == 2 for _, version, _ in results) and time.monotonic() < deadline and not errors:
                time.sleep(0.01)
            switched = len(results)

            def after_switch(transport):
                return sum(t == transport for t, _, _ in results[switched:])

            # Each transport's clients call one after another: a second answer after the
            # switch was asked after it, so it comes from version 2 whichever transport is faster.
            while (
                (min(after_switch("grpc"), after_switch("rest")) < 2 or len(results) < switched + 20)
                and time.monotonic() < deadline
                and not errors
            ):
                time.sleep(0.01)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        statuses = {s.version: s.state for s in Client(server.grpc_target).status("ranker")}

    assert errors == []
    assert not np.allclose(expected[1]["ctr"], expected[2]["ctr"])

    def version_of(outputs):
        matches = [v for v, e in expected.items() if all(np.allclose(outputs[k], e[k], atol=1e-6) for k in e)]
        assert len(matches) == 1, outputs
        return matches[0]

    for transport in ("grpc", "rest"):
        served = [version_of(outputs) for t, _, outputs in results if t == transport]
        assert served == sorted(served), f"{transport}: traffic went back to an old version"
        assert served[0] == 1 and served[-1] == 2, transport
    assert all(version == version_of(outputs) for t, version, outputs in results if t == "grpc")
    assert statuses == {1: "END", 2: "AVAILABLE"}


@pytest.fixture(scope="module")
def one_model(tmp_path_factory):
    """A tiny exported ranker (version 1), copied into each test's base path."""
    base = tmp_path_factory.mktemp("one_model")
    reference = export_ranker("shared_bottom", base, "ranker", seed=0)
    return base / "ranker" / "1", reference("serving_default", INPUTS)


def _base_with_versions(tmp_path, one_model, versions, name="ranker"):
    source, _ = one_model
    for version in versions:
        shutil.copytree(source, tmp_path / name / str(version))
    return tmp_path


def _config(text: str) -> model_server_config_pb2.ModelServerConfig:
    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())


def test_removed_version_is_unloaded(tmp_path, one_model):
    base = _base_with_versions(tmp_path, one_model, [1, 2])
    write_models_config(
        base / "models.config",
        _config(
            f'model_config_list {{ config {{ name: "ranker" base_path: "{base / "ranker"}" '
            'model_platform: "tensorflow" model_version_policy { all {} } } }'
        ),
    )
    with (
        ModelServer(ServerOptions(model_base_path=base, port=0, rest_port=None, poll_seconds=0)) as server,
        Client(server.grpc_target) as client,
    ):
        assert _served_versions(server, "ranker") == [1, 2]
        assert client.predict("ranker", INPUTS).version == 2
        shutil.rmtree(base / "ranker" / "2")
        server.manager.poll()
        assert _served_versions(server, "ranker") == [1]
        assert {s.version: s.state for s in client.status("ranker")} == {1: "AVAILABLE", 2: "END"}
        with pytest.raises(grpc.RpcError) as error:
            client.predict("ranker", INPUTS, version=2)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
        assert client.predict("ranker", INPUTS).version == 1


def test_version_policies_labels_and_config_reloads(tmp_path, one_model):
    base = _base_with_versions(tmp_path, one_model, [1, 2, 3])
    config_file = tmp_path / "serving.config"  # explicit --model-config-file, relative base path
    write_models_config(
        config_file,
        _config(
            'model_config_list { config { name: "ranker" base_path: "ranker" model_platform: "tensorflow" '
            "model_version_policy { specific { versions: 1 versions: 3 } } "
            'version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 3 } } }'
        ),
    )
    options = ServerOptions(model_base_path=base, model_config_file=config_file, port=0, rest_port=0, poll_seconds=0)
    with ModelServer(options) as server, Client(server.grpc_target) as client:
        assert _served_versions(server, "ranker") == [1, 3]
        assert client.predict("ranker", INPUTS, label="stable").version == 1
        assert client.predict("ranker", INPUTS, label="canary").version == 3
        assert client.predict("ranker", INPUTS).version == 3  # latest available
        assert client.status("ranker", label="stable")[0].version == 1
        status, body = rest_call(server.rest_url, "/v1/models/ranker/labels/stable")
        assert status == 200 and [s["version"] for s in body["model_version_status"]] == ["1"]
        status, body = rest_call(server.rest_url, "/v1/models/ranker/labels/canary/metadata")
        assert status == 200 and body["model_spec"]["version"] == "3"

        # Editing the config file: the next poll serves the two latest versions.
        write_models_config(
            config_file,
            _config(
                'model_config_list { config { name: "ranker" base_path: "ranker" '
                "model_version_policy { latest { num_versions: 2 } } } }"
            ),
        )
        server.manager.poll()
        assert _served_versions(server, "ranker") == [2, 3]
        assert {s.version: s.state for s in client.status("ranker")}[1] == "END"

        # ModelService.HandleReloadConfigRequest replaces the config.
        client.reload_config(
            _config(
                f'model_config_list {{ config {{ name: "ranker" base_path: "{base / "ranker"}" '
                "model_version_policy { all {} } } "
                f'config {{ name: "renamed" base_path: "{base / "ranker"}" }} }}'
            )
        )
        assert _served_versions(server, "ranker") == [1, 2, 3]
        assert client.predict("renamed", INPUTS).version == 3
        with pytest.raises(grpc.RpcError) as error:
            client.reload_config(_config('model_config_list { config { name: "bad" } }'))
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "base_path" in error.value.details()


def test_export_adds_models_the_running_server_picks_up_and_removal_unloads(tmp_path, one_model):
    source, expected = one_model
    add_to_models_config(tmp_path, "first")
    shutil.copytree(source, tmp_path / "first" / "1")
    with (
        ModelServer(ServerOptions(model_base_path=tmp_path, port=0, rest_port=None, poll_seconds=0)) as server,
        Client(server.grpc_target) as client,
    ):
        assert server.manager.model_names() == ["first"]
        shutil.copytree(source, tmp_path / "second" / "4")
        add_to_models_config(tmp_path, "second")
        server.manager.poll()
        assert server.manager.model_names() == ["first", "second"]
        prediction = client.predict("second", INPUTS)
        assert prediction.version == 4
        np.testing.assert_allclose(prediction["ctr"], expected["ctr"], atol=1e-6)

        config = read_models_config(tmp_path / "models.config")
        del config.model_config_list.config[0]
        write_models_config(tmp_path / "models.config", config)
        server.manager.poll()
        assert server.manager.model_names() == ["second"]
        with pytest.raises(grpc.RpcError) as error:
            client.predict("first", INPUTS)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND

        # A broken config edit keeps what is served.
        (tmp_path / "models.config").write_text("model_config_list { config { name: ")
        server.manager.poll()
        assert server.manager.model_names() == ["second"] and "models.config" in server.manager.config_error


def test_failed_warmup_keeps_the_version_out_of_traffic(tmp_path, one_model):
    base = _base_with_versions(tmp_path, one_model, [1])
    with (
        ModelServer(ServerOptions(model_base_path=base, port=0, rest_port=None, poll_seconds=0)) as server,
        Client(server.grpc_target) as client,
    ):
        bad = copy_version(base, "ranker", 1, 2)
        write_warmup_requests(
            bad, [predict_log("ranker", "serving_default", {"not_an_input": np.zeros(1, np.float32)})]
        )
        server.manager.poll()
        states = {s.version: s for s in client.status("ranker")}
        assert states[1].state == "AVAILABLE"
        assert states[2].state == "END" and states[2].error_code == "INVALID_ARGUMENT"
        assert "warm-up record 0" in states[2].error_message and "not_an_input" in states[2].error_message
        assert client.predict("ranker", INPUTS).version == 1

        # Fixed and re-exported under a new number: it loads, warms up, and takes over.
        good = copy_version(base, "ranker", 1, 3)
        server.manager.poll()
        assert client.predict("ranker", INPUTS).version == 3
        assert good.exists()


def test_graph_with_an_unknown_op_fails_to_load_naming_the_op(tmp_path, one_model):
    base = _base_with_versions(tmp_path, one_model, [1])
    proto = read_saved_model(base / "ranker" / "1")
    proto.meta_graphs[0].graph_def.node.add(name="custom", op="Bogus>Lookup")
    (base / "ranker" / "1" / "saved_model.pb").write_bytes(proto.SerializeToString())
    with (
        ModelServer(ServerOptions(model_base_path=base, port=0, rest_port=None, poll_seconds=0)) as server,
        Client(server.grpc_target) as client,
    ):
        (state,) = client.status("ranker")
        assert (
            state.state == "END"
            and "Bogus>Lookup" in state.error_message
            and "--custom-op-library" in state.error_message
        )
        with pytest.raises(grpc.RpcError) as error:
            client.predict("ranker", INPUTS)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert tf.constant(1).numpy() == 1  # the process is fine


def test_an_unusable_base_path_or_config_stops_the_server_at_start(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        ModelServer(ServerOptions(model_base_path=tmp_path / "missing", port=0, rest_port=None)).start()
    (tmp_path / "models.config").write_text("model_config_list { config { name: 'a' base_path: 'a' } } }")
    with pytest.raises(ValueError, match="models.config"):
        ModelServer(ServerOptions(model_base_path=tmp_path, port=0, rest_port=None)).start()
