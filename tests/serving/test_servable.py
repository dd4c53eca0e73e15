"""Pieces of the server without a server: custom-op registration, JSON tensors, signatures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from tfzoo.serving import ServingError
from tfzoo.serving import servable as servable_module
from tfzoo.serving.rest import array_from_json, predict_outputs_to_json
from tfzoo.serving.tensors import TensorSpec


def test_graph_op_names_include_function_bodies():
    meta_graph = meta_graph_pb2.MetaGraphDef()
    meta_graph.graph_def.node.add(name="a", op="Placeholder")
    meta_graph.graph_def.library.function.add().node_def.add(name="b", op="Scann>ScannSearchBatched")
    assert servable_module.graph_op_names(meta_graph) == {"Placeholder", "Scann>ScannSearchBatched"}


def test_scann_ops_are_registered_from_the_scann_package_when_missing(monkeypatch):
    registered, loaded = set(), []
    # Pretend this process has not registered the ScaNN ops yet (importing TFRS does it).
    monkeypatch.setattr(
        servable_module,
        "unregistered_ops",
        lambda ops: sorted(o for o in ops if o.startswith("Scann>") and o not in registered),
    )
    monkeypatch.setattr(servable_module, "_loaded_op_libraries", set())

    def load_op_library(path):
        loaded.append(path)
        registered.update({"Scann>ScannSearchBatched", "Scann>TensorsToScann"})

    monkeypatch.setattr(servable_module.tf, "load_op_library", load_op_library)
    libraries = servable_module.register_custom_ops({"Scann>TensorsToScann", "MatMul"})
    assert libraries == loaded and len(loaded) == 1 and loaded[0].endswith("scann_ops/cc/_scann_ops.so")
    assert servable_module.register_custom_ops({"Scann>ScannSearchBatched"}) == []  # already there


def test_ops_no_library_registers_are_a_clear_error():
    with pytest.raises(ValueError, match=r"NoSuchLib>Op.*--custom-op-library"):
        servable_module.register_custom_ops({"NoSuchLib>Op", "MatMul"})


def test_json_values_become_arrays_of_the_signature_dtype():
    floats = TensorSpec("x", tf.float32, tf.TensorShape([None, 2]))
    assert array_from_json([[1, 2.5], [3, float("nan")]], floats, "x").dtype == np.float32
    ints = TensorSpec("ids", tf.int64, tf.TensorShape([None]))
    assert array_from_json([1, 2], ints, "ids").tolist() == [1, 2]
    with pytest.raises(ServingError, match="ids.*1.5.*int64"):
        array_from_json([1, 1.5], ints, "input 'ids'")
    with pytest.raises(ServingError, match="ids.*true"):
        array_from_json([True], ints, "input 'ids'")
    strings = TensorSpec("s", tf.string, tf.TensorShape([None]))
    assert array_from_json(["a", {"b64": "AAE="}], strings, "s").tolist() == [b"a", b"\x00\x01"]
    with pytest.raises(ServingError, match="depth 2"):
        array_from_json([[1.0, 2.0], [3.0]], floats, "x")


def test_outputs_to_json_follow_tf_serving_formats():
    outputs = {"scores": np.array([0.5, 0.25], np.float32), "ids_bytes": np.array([b"\xff", b"a"], dtype=object)}
    row = predict_outputs_to_json(outputs, "row")
    assert row == {
        "predictions": [{"scores": 0.5, "ids_bytes": {"b64": "/w=="}}, {"scores": 0.25, "ids_bytes": {"b64": "YQ=="}}]
    }
    assert predict_outputs_to_json({"y": np.array([[1, 2]], np.int64)}, "column") == {"outputs": [[1, 2]]}
    assert (
        json.loads(json.dumps(predict_outputs_to_json({"y": np.array([np.nan], np.float32)}, "row")))["predictions"][0]
        != 0
    )
