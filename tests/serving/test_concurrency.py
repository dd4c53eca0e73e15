"""8 concurrent gRPC clients x 200 requests against the zoo server: no error, every answer right."""

from __future__ import annotations

import threading

import grpc
import numpy as np
import pytest

from tests.serving.helpers import ZOO_MODELS, request_inputs
from tfzoo.export import read_warmup_requests
from tfzoo.serving import Client

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
