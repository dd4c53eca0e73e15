"""Server-side batching: merged calls give each request its own rows; TF Serving's parameters file."""

from __future__ import annotations

import threading

import grpc
import numpy as np
import pytest

from tfzoo.serving import BatchingOptions, ServingError, read_batching_parameters
from tfzoo.serving.batching import SignatureBatcher

pytestmark = pytest.mark.timeout(120)


class Recorder:
    """A batch function y = 2 x + row_sum(z), recording the batch sizes it was called with."""

    def __init__(self):
        self.sizes = []
        self.lock = threading.Lock()

    def __call__(self, inputs):
        with self.lock:
            self.sizes.append(len(inputs["x"]))
        return {"y": 2 * inputs["x"] + inputs["z"].sum(axis=1), "x_copy": inputs["x"].copy()}


def _run_concurrently(batcher, requests):
    results = [None] * len(requests)
    start = threading.Barrier(len(requests))

    def call(i):
        start.wait()
        results[i] = batcher.run(requests[i])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_concurrent_requests_are_merged_and_split_back():
    recorder = Recorder()
    batcher = SignatureBatcher(recorder, BatchingOptions(max_batch_size=16, batch_timeout_micros=200_000), name="test")
    rng = np.random.default_rng(0)
    requests = [
        {"x": rng.normal(size=n).astype(np.float32), "z": rng.normal(size=(n, 3)).astype(np.float32)}
        for n in (1, 2, 3, 1, 2, 3)
    ]
    results = _run_concurrently(batcher, requests)
    batcher.close()
    for request, result in zip(requests, results):
        np.testing.assert_allclose(result["y"], 2 * request["x"] + request["z"].sum(axis=1), rtol=1e-6)
        np.testing.assert_array_equal(result["x_copy"], request["x"])
    assert sum(recorder.sizes) == 12 and len(recorder.sizes) < 6  # at least two requests shared a call
    assert max(recorder.sizes) <= 16


def test_incompatible_shapes_never_share_a_batch_and_large_requests_run_alone():
    recorder = Recorder()
    batcher = SignatureBatcher(recorder, BatchingOptions(max_batch_size=4, batch_timeout_micros=50_000), name="test")
    requests = [
        {"x": np.ones(2, np.float32), "z": np.ones((2, 3), np.float32)},
        {"x": np.ones(2, np.float32), "z": np.ones((2, 5), np.float32)},
        {"x": np.ones(9, np.float32), "z": np.ones((9, 1), np.float32)},
    ]
    results = _run_concurrently(batcher, requests)
    batcher.close()
    assert [r["y"].tolist() for r in results] == [[5.0, 5.0], [7.0, 7.0], [3.0] * 9]
    assert sorted(recorder.sizes) == [2, 2, 9]


def test_allowed_batch_sizes_pad_the_batch():
    recorder = Recorder()
    options = BatchingOptions(max_batch_size=8, batch_timeout_micros=0, allowed_batch_sizes=(4, 8))
    batcher = SignatureBatcher(recorder, options, name="test")
    result = batcher.run({"x": np.array([1.0, 2.0, 3.0], np.float32), "z": np.zeros((3, 2), np.float32)})
    batcher.close()
    assert recorder.sizes == [4] and result["y"].tolist() == [2.0, 4.0, 6.0]


def test_a_failing_batch_fails_each_of_its_requests_and_the_batcher_goes_on():
    calls = []

    def flaky(inputs):
        calls.append(len(inputs["x"]))
        if len(calls) == 1:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "bad batch")
        return {"y": inputs["x"]}

    batcher = SignatureBatcher(flaky, BatchingOptions(max_batch_size=8, batch_timeout_micros=0), name="test")
    with pytest.raises(ServingError, match="bad batch"):
        batcher.run({"x": np.ones(2)})
    assert batcher.run({"x": np.ones(3)})["y"].tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ServingError, match="same number of rows"):
        batcher.run({"x": np.ones(2), "z": np.ones(3)})
    batcher.close()
    # After close, late callers are refused rather than left waiting forever.
    with pytest.raises(ServingError):
        batcher.run({"x": np.ones(1)})


def test_tf_serving_batching_parameters_file(tmp_path):
    path = tmp_path / "batching_parameters.txt"
    path.write_text(
        "max_batch_size { value: 32 }\nbatch_timeout_micros { value: 500 }\n"
        "num_batch_threads { value: 2 }\nmax_enqueued_batches { value: 10 }\n"
        "allowed_batch_sizes: 8\nallowed_batch_sizes: 32\npad_variable_length_inputs: true\n"
    )
    assert read_batching_parameters(path) == BatchingOptions(
        max_batch_size=32,
        batch_timeout_micros=500,
        num_batch_threads=2,
        max_enqueued_batches=10,
        allowed_batch_sizes=(8, 32),
    )
    path.write_text("max_batch_size { value: 32 }\nmax_batch_sise { value: 3 }\n")
    with pytest.raises(ValueError, match=r"batching_parameters.txt.*2:1"):
        read_batching_parameters(path)
    path.write_text("max_batch_size { value: 32 }\nallowed_batch_sizes: 16\n")
    with pytest.raises(ValueError, match="allowed_batch_sizes"):
        read_batching_parameters(path)


def test_outputs_that_are_not_batch_major_turn_batching_off_without_failing_requests():
    def with_table(inputs):  # a [5, 2] table whatever the batch, and a batch-major output
        return {"table": np.arange(10.0).reshape(5, 2), "y": inputs["x"] * 2}

    batcher = SignatureBatcher(with_table, BatchingOptions(max_batch_size=8, batch_timeout_micros=100_000), name="test")
    results = _run_concurrently(batcher, [{"x": np.ones(1)}, {"x": np.full(2, 3.0)}])
    batcher.close()
    assert batcher.disabled
    assert [r["table"].shape for r in results] == [(5, 2), (5, 2)]
    assert [r["y"].tolist() for r in results] == [[2.0], [6.0, 6.0]]
