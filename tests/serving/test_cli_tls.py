"""`tfzoo serve` in its own process (with a ScaNN index), `tfzoo query`, the recipe, and TLS."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tests.serving.helpers import ranker_rows, rest_call, to_json
from tfzoo import cli
from tfzoo.serving import Client, ModelServer, ServerOptions
from tfzoo.serving.process import ServerProcess

REPO = Path(__file__).resolve().parents[2]
SCANN_CANDIDATES = np.random.default_rng(0).normal(size=(100, 8)).astype(np.float32)


class _Index(tf.Module):
    def __init__(self, index):
        super().__init__()
        self.index = index

    @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="queries")])
    def search(self, queries):
        scores, ids = self.index(queries)  # [batch, k] each
        return {"ids": ids, "scores": scores}


def export_scann_index(path: Path) -> None:
    """A ScaNN top-5 index over 100 vectors, saved with its `Scann>` ops."""
    index = tfrs.layers.factorized_top_k.ScaNN(k=5, num_leaves=4, num_leaves_to_search=4, num_reordering_candidates=100)
    index.index(tf.constant(SCANN_CANDIDATES), tf.range(100, dtype=tf.int64))
    module = _Index(index)
    tf.saved_model.save(
        module,
        str(path),
        signatures={"serving_default": module.search},
        options=tf.saved_model.SaveOptions(namespace_whitelist=["Scann"]),
    )


@pytest.fixture(scope="module")
def served_process(small_models, tmp_path_factory):
    """`tfzoo serve` as a separate process over the small models plus a ScaNN index."""
    base = tmp_path_factory.mktemp("served_process")
    for name in ("ranker", "half_plus_two"):
        os.symlink(small_models / name, base / name)
    export_scann_index(base / "scann_index" / "1")
    with ServerProcess(
        ["--model-base-path", str(base), "--port", "0", "--rest-port", "0", "--poll-seconds", "0"], timeout=90
    ) as server:
        yield server


# What `tfzoo query` must not load: the model libraries, and tfzoo's models, data pipelines,
# server and exporters (of the export package only the neutral input values, which import
# nothing of tfzoo).
HEAVY_MODULES = (
    "tensorflow_recommenders",
    "tensorflow_gnn",
    "scann",
    "tfzoo.models",
    "tfzoo.graph",
    "tfzoo.data",
    "tfzoo.serving.server",
    "tfzoo.tasks",
    "tfzoo.training.task",
)
IMPORTED = (
    f"sorted(m for m in sys.modules if m in {HEAVY_MODULES!r}"
    " or (m.startswith('tfzoo.export.') and m != 'tfzoo.export.signature_values'))"
)


def _fresh_python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=REPO)


# Before the test below, which stops the server.
@pytest.mark.timeout(300)
def test_tfzoo_query_imports_neither_tfrs_tfgnn_nor_scann(served_process):
    query = ["query", "half_plus_two", "--server", served_process.grpc_target, "--input", "x=[1.0, 3.0]"]
    result = _fresh_python(
        f"import json, sys\nfrom tfzoo import cli\ncode = cli.main({query!r})\n"
        f"print(json.dumps({{'code': code, 'imported': {IMPORTED}}}))"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert json.loads(lines[-1]) == {"code": 0, "imported": []}, result.stderr[-2000:]
    assert "y: [2.5, 3.5]" in lines  # y = 0.5 x + 2

    # `--help` needs no TensorFlow at all.
    result = _fresh_python(
        "import json, sys\nfrom tfzoo import cli\ntry:\n    cli.main(['query', '--help'])\n"
        f"except SystemExit as stop:\n    print(json.dumps([stop.code, 'tensorflow' in sys.modules, {IMPORTED}]))"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [0, False, []]


@pytest.mark.timeout(300)
def test_tfzoo_serve_process_serves_a_scann_index_and_answers_tfzoo_query(served_process, capsys):
    target = served_process.grpc_target
    assert served_process.rest_url is None  # --rest-port 0: no REST API, as in TF Serving
    with Client(target) as client:
        assert {s.state for name in ("ranker", "half_plus_two", "scann_index") for s in client.status(name)} == {
            "AVAILABLE"
        }
        # The ScaNN ops were registered by the server process for this graph; exact top-5 by dot product.
        ids = client.predict("scann_index", {"queries": SCANN_CANDIDATES[:2]})["ids"]
        np.testing.assert_array_equal(ids, np.argsort(-(SCANN_CANDIDATES[:2] @ SCANN_CANDIDATES.T), axis=1)[:, :5])

    row = ranker_rows("serving_default", rows=1)
    arguments = [f"--input={k}={to_json(v[0]) if v.dtype != object else v[0]}" for k, v in row.items()]
    arguments = [a.replace("nan", "NaN") for a in arguments]
    assert cli.main(["query", "ranker", "--server", target, *arguments]) == 0
    output = capsys.readouterr().out
    assert "model ranker version 1 signature serving_default" in output
    assert {"ctr", "atc", "cvr"} == {line.split(":")[0] for line in output.splitlines()[1:]}

    assert cli.main(["query", "ranker", "--server", target, "--metadata"]) == 0
    output = capsys.readouterr().out
    assert "version 1: AVAILABLE OK" in output and "in  item_vector: DT_FLOAT [-1,16]" in output

    assert cli.main(["query", "ranker", "--server", target, "--input", "num_0=1.0"]) == 1
    assert "missing --input for: cat_0" in capsys.readouterr().err
    assert cli.main(["query", "no_such_model", "--server", target]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err

    assert served_process.stop() == 0, "".join(served_process.lines)  # SIGTERM: a clean stop


@pytest.mark.timeout(180)
def test_recipe_queries_every_signature_of_every_model(small_models, capsys):
    sys.path.insert(0, str(REPO / "recipes"))
    try:
        import serve_and_query
    finally:
        sys.path.remove(str(REPO / "recipes"))
    answers = serve_and_query.serve_and_query(small_models)
    assert set(answers) == {"ranker", "half_plus_two"}
    assert set(answers["ranker"]["serving_default"].outputs) == {"ctr", "atc", "cvr"}
    # No warm-up records in the TF1 model: its request is built from its metadata alone.
    half_plus_two = answers["half_plus_two"]["serving_default"]
    assert half_plus_two.inputs["x"].tolist() == [0.0, 0.0] and half_plus_two.outputs["y"].tolist() == [2.0, 2.0]
    assert half_plus_two.path.parent.name == "half_plus_two" and half_plus_two.version == int(half_plus_two.path.name)
    output = capsys.readouterr().out
    assert "classify: tensorflow/serving/classify (not queried)" in output and "server stopped" in output


@pytest.mark.timeout(180)
def test_tls_on_grpc_and_rest(small_models, tls_files):
    cert, key = tls_files
    options = ServerOptions(
        model_base_path=small_models, port=0, rest_port=0, poll_seconds=0, tls_cert_file=cert, tls_key_file=key
    )
    inputs = {"x": np.array([2.0], np.float32)}
    with ModelServer(options) as server:
        with Client(server.grpc_target, root_certificates=cert.read_bytes()) as client:
            assert client.predict("half_plus_two", inputs)["y"].tolist() == [3.0]
        with Client(server.grpc_target, timeout=3) as plaintext:
            with pytest.raises(grpc.RpcError) as error:
                plaintext.predict("half_plus_two", inputs)
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        assert server.rest_url.startswith("https://")
        context = ssl.create_default_context(cafile=str(cert))
        status, body = rest_call(
            server.rest_url, "/v1/models/half_plus_two:predict", {"instances": [2.0]}, context=context
        )
        assert (status, body) == (200, {"predictions": [3.0]})


@pytest.mark.timeout(120)
def test_server_binds_loopback_by_default_and_refuses_a_taken_port(tmp_path):
    assert ServerOptions().host == "127.0.0.1"
    # No models yet is a valid state: the server starts and answers NOT_FOUND until some arrive.
    with ModelServer(ServerOptions(model_base_path=tmp_path, port=0, rest_port=0, poll_seconds=0)) as server:
        with pytest.raises(OSError, match="Cannot listen"):
            ModelServer(
                ServerOptions(model_base_path=tmp_path, port=server.grpc_port, rest_port=None, poll_seconds=0)
            ).start()
        with pytest.raises(OSError):
            ModelServer(
                ServerOptions(model_base_path=tmp_path, port=0, rest_port=server.rest_port, poll_seconds=0)
            ).start()
        with Client(server.grpc_target) as client, pytest.raises(grpc.RpcError) as error:
            client.status("anything")
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
