"""Shared checks for every public layer and model (after keras-hub's TestCase and TF-GNN's
reload tests): config round trip, serialisation by registered name, SavedModel reload, and
equal outputs after each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_gnn as tfgnn


def assert_allclose(actual, expected, atol=1e-5):
    # expand_composites: GraphTensors and RaggedTensors compare component by component.
    flat_actual = tf.nest.flatten(actual, expand_composites=True)
    flat_expected = tf.nest.flatten(expected, expand_composites=True)
    assert len(flat_actual) == len(flat_expected), "the outputs must have the same structure"
    for a, e in zip(flat_actual, flat_expected):
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), atol=atol, rtol=1e-5)


def _spec(value):
    if isinstance(value, tfgnn.GraphTensor):
        return value.spec.relax(num_components=True, num_nodes=True, num_edges=True)
    return tf.TensorSpec([None] + list(value.shape[1:]), value.dtype)


def _signature(inputs):
    return tf.nest.map_structure(_spec, inputs)


def check_layer(layer: tf.keras.layers.Layer, inputs, tmp_path: Path, **call_kwargs):
    """Calls `layer`, then checks it survives config, Keras serialisation and SavedModel.

    Returns the layer's outputs on `inputs`.
    """
    outputs = layer(inputs, **call_kwargs)
    config = layer.get_config()

    clone = type(layer).from_config(config)
    clone(inputs, **call_kwargs)
    clone.set_weights(layer.get_weights())
    assert clone.get_config() == config, "from_config(get_config()) must give the same config"
    assert_allclose(clone(inputs, **call_kwargs), outputs)

    revived = tf.keras.layers.deserialize(tf.keras.layers.serialize(layer))
    assert type(revived) is type(layer), "the layer must be registered for serialisation"

    module = tf.Module()
    module.layer = layer
    module.call = tf.function(lambda x: layer(x, **call_kwargs), input_signature=[_signature(inputs)])
    path = str(tmp_path / f"saved_{layer.name}")
    tf.saved_model.save(module, path)
    loaded = tf.saved_model.load(path)  # keep a reference: its variables die with it
    assert_allclose(loaded.call(inputs), outputs)
    return outputs


def check_model(model: tf.keras.Model, features, tmp_path: Path):
    """Checks a zoo model's config round trip and Keras SavedModel reload; returns outputs."""
    outputs = model(features)
    config = model.get_config()
    clone = type(model).from_config(config)
    assert clone.get_config() == config, "from_config(get_config()) must give the same config"
    clone(features)
    clone.set_weights(model.get_weights())
    assert_allclose(clone(features), outputs)

    path = str(tmp_path / "keras_saved_model")
    model.save(path)
    reloaded = tf.keras.models.load_model(path)
    assert type(reloaded) is type(model), "load_model must revive the registered class"
    assert_allclose(reloaded(features), outputs)
    return outputs
