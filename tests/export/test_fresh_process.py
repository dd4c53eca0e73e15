import shutil

import numpy as np
import pytest
import tensorflow as tf

from tfzoo.export import call_in_fresh_process, check_in_fresh_process, predict_log, write_warmup_requests


class Echo(tf.Module):
    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="blobs"),
            tf.TensorSpec([None, 2], tf.float32, name="values"),
        ]
    )
    def serve(self, blobs, values):
        return {"blobs": blobs, "lengths": tf.strings.length(blobs), "doubled": 2.0 * values}


@pytest.fixture(scope="module")
def echo_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("echo") / "1"
    module = Echo()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve.get_concrete_function()})
    return path


def test_bytes_reach_the_child_and_come_back_unchanged(echo_model):
    # Serialized protos are arbitrary bytes: trailing NULs and invalid UTF-8 included.
    blobs = np.array([b"ab\x00", b"\x00\xfb\x00\x00", b""], dtype=object)
    values = np.array([[1.5, -2.0], [0.0, 3.25], [7.0, 8.0]], np.float32)
    out = call_in_fresh_process(echo_model, {"blobs": blobs, "values": values})
    assert list(out["blobs"]) == list(blobs)
    np.testing.assert_array_equal(out["lengths"], [3, 4, 0])
    np.testing.assert_array_equal(out["doubled"], 2.0 * values)


def test_unicode_strings_are_sent_as_utf8(echo_model):
    out = call_in_fresh_process(
        echo_model, {"blobs": np.array(["né", "x"], dtype=object), "values": np.zeros([2, 2], np.float32)}
    )
    assert list(out["blobs"]) == ["né".encode(), b"x"]
    np.testing.assert_array_equal(out["lengths"], [3, 1])


def test_a_failing_call_reports_the_child_error(echo_model):
    with pytest.raises(RuntimeError, match="fresh process failed"):
        call_in_fresh_process(echo_model, {"blobs": np.array([b"a"], dtype=object)})  # `values` missing


class Clock(tf.Module):
    """A signature whose answer depends on when it is called (seconds apart in two processes)."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float64, name="x")])
    def serve(self, x):
        return {"y": x + tf.timestamp()}


def test_warmup_requests_are_answered_alike_in_a_fresh_process(echo_model, tmp_path):
    with pytest.raises(RuntimeError, match="has no warm-up requests"):
        check_in_fresh_process(echo_model)

    version = tmp_path / "echo" / "1"
    shutil.copytree(echo_model, version)
    blobs = np.array([b"a\x00", b""], dtype=object)
    write_warmup_requests(version, [predict_log("echo", "", {"blobs": blobs, "values": np.ones([2, 2], np.float32)})])
    assert check_in_fresh_process(version) == 0.0

    clock = tmp_path / "clock" / "1"
    module = Clock()
    tf.saved_model.save(module, str(clock), signatures={"serving_default": module.serve.get_concrete_function()})
    write_warmup_requests(clock, [predict_log("clock", "serving_default", {"x": np.zeros([2], np.float64)})])
    with pytest.raises(RuntimeError, match="serving_default/y differs in a fresh process by"):
        check_in_fresh_process(clock)
