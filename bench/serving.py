"""Serving latency and throughput: gRPC vs REST vs a direct in-process signature call.

    python bench/serving.py                      # MMoE on Census, batch 1 and 256
    python bench/serving.py --requests 100 --quick

One run exports a zoo ranker (default MMoE, default sizes, on the Census feature spec: 39
raw features), starts `tfzoo serve` as a separate process (as in production: the client
does not share the server's interpreter), and sends the same requests three ways, one at
a time from one client:

- direct: `tf.saved_model.load(...).signatures["serving_default"](**tensors)` in this
  process, from NumPy inputs (the floor: no transport, no (de)serialisation);
- gRPC: `tfzoo.serving.Client.predict` (TensorProto in, TensorProto out);
- REST: `POST /v1/models/NAME:predict` in column format over a kept-alive HTTP connection,
  JSON encoding and decoding included.

It prints p50 / p99 latency (ms), mean throughput (rows/s) and each transport's p50 as a
multiple of the direct call's, per batch size. Untrained weights: latency does not
depend on them.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import numpy as np
import tensorflow as tf

import tfzoo  # noqa: F401  (Keras 2 before TensorFlow)
from tfzoo.data import read_census_income
from tfzoo.export import export_saved_model
from tfzoo.serving import Client
from tfzoo.serving.process import ServerProcess
from tfzoo.training.registry import task_for


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _to_json(value: np.ndarray):
    if value.dtype == object:
        return [v.decode() if isinstance(v, bytes) else v for v in value.tolist()]
    return np.where(np.isfinite(value), value, 0).tolist() if value.dtype.kind == "f" else value.tolist()


def _measure(call, requests: int, warmup: int) -> np.ndarray:
    for _ in range(warmup):
        call()
    latencies = np.empty(requests)
    for i in range(requests):
        started = time.perf_counter()
        call()
        latencies[i] = time.perf_counter() - started
    return latencies


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mmoe", help="zoo ranker to export (default mmoe)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 256])
    parser.add_argument("--requests", type=int, default=500, help="timed requests per transport and batch size")
    parser.add_argument("--warmup", type=int, default=30, help="untimed requests first")
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument(
        "--server-option",
        action="append",
        default=[],
        metavar="ARG",
        help="extra `tfzoo serve` argument, e.g. --server-option=--enable-batching",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.warmup = min(args.requests, 50), 5

    data = read_census_income()
    spec = data.spec.fit(data.features)
    model = task_for(args.model).model_class(feature_spec=spec)
    workdir = Path(tempfile.mkdtemp(prefix="tfzoo-bench-serving-"))
    path = export_saved_model(model, spec, workdir, args.model)
    server = ServerProcess(
        [
            "--model-base-path",
            str(workdir),
            "--port",
            str(_free_port()),
            "--rest-port",
            str(_free_port()),
            "--poll-seconds",
            "0",
            *args.server_option,
        ]
    )
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    client = Client(server.grpc_target)
    rest = urllib.parse.urlsplit(server.rest_url)
    connection = http.client.HTTPConnection(rest.hostname, rest.port, timeout=60)
    route = f"/v1/models/{args.model}:predict"

    rows = []
    try:
        for batch in args.batch_sizes:
            index = np.arange(batch) % len(data)
            inputs = {
                k: (np.asarray(v[index], dtype=object) if v.dtype.kind in "OUS" else v[index])
                for k, v in data.features.items()
            }

            def direct(inputs=inputs):
                outputs = signature(**{k: tf.constant(v) for k, v in inputs.items()})
                return {k: v.numpy() for k, v in outputs.items()}

            def grpc_call(inputs=inputs):
                return client.predict(args.model, inputs)

            def rest_call(inputs=inputs):
                body = json.dumps({"inputs": {k: _to_json(v) for k, v in inputs.items()}})
                connection.request("POST", route, body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                payload = json.loads(response.read())
                if response.status != 200:
                    raise RuntimeError(payload)
                return {k: np.asarray(v) for k, v in payload["outputs"].items()}

            reference = direct()
            for name, call in (("gRPC", grpc_call), ("REST", rest_call)):
                got = call()
                assert all(np.allclose(got[k], reference[k], atol=1e-5) for k in reference), (
                    f"{name} differs from direct"
                )
            for name, call in (("direct", direct), ("gRPC", grpc_call), ("REST", rest_call)):
                latencies = _measure(call, args.requests, args.warmup)
                rows.append(
                    (
                        batch,
                        name,
                        np.percentile(latencies, 50) * 1e3,
                        np.percentile(latencies, 99) * 1e3,
                        batch * len(latencies) / latencies.sum(),
                    )
                )
    finally:
        client.close()
        connection.close()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    load = os.getloadavg()
    print(
        f"\nmodel {args.model} on Census ({len(spec.features)} raw features), {args.requests} sequential requests "
        f"per cell after {args.warmup} untimed; server options {args.server_option or 'default'}"
    )
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} CPUs\n")
    print("| batch | path   | p50 ms | p99 ms | rows/s    | p50 / direct |")
    print("| ----: | ------ | -----: | -----: | --------: | -----------: |")
    direct_p50 = {b: p50 for b, name, p50, _, _ in rows if name == "direct"}
    for batch, name, p50, p99, throughput in rows:
        print(
            f"| {batch:5d} | {name:6s} | {p50:6.2f} | {p99:6.2f} | {throughput:9.0f} | {p50 / direct_p50[batch]:11.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
