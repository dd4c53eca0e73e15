import numpy as np
import pytest
import tensorflow as tf

from tfzoo.export import call_in_fresh_process


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
