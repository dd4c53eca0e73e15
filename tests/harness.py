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


# Kernel knobs whose effect is visible in the weights and the losses: every dense kernel
# starts at 0.01 and adds 0.5 x sum(w^2) to the layer losses.
KERNEL_KNOBS = {
    "kernel_initializer": {"class_name": "Constant", "config": {"value": 0.01}},
    "kernel_regularizer": {"class_name": "L2", "config": {"l2": 0.5}},
}


def dense_kernels(model: tf.keras.layers.Layer) -> list[tf.Variable]:
    """The trainable dense kernels of `model`: weights named `kernel`, `kernel_<i>` or
    `<part>_kernel` (Dense, EinsumDense, expert banks, attention projections) and GraphEncoder's
    input map `feature_embedding`, less the routers' (gates keep their own initialisation)."""
    from tfzoo.layers import Router

    routers = {
        id(w) for layer in model._flatten_layers(include_self=True) if isinstance(layer, Router) for w in layer.weights
    }
    kernels = []
    for variable in model.trainable_variables:
        short = variable.name.split("/")[-1].split(":")[0]
        is_kernel = short == "kernel" or short.startswith("kernel_") or short.endswith("_kernel")
        if (is_kernel or short == "feature_embedding") and id(variable) not in routers:
            kernels.append(variable)
    return kernels


def check_kernel_knobs(model: tf.keras.layers.Layer, num_kernels: int) -> float:
    """Asserts that `model` (built with `KERNEL_KNOBS`, called once outside training) has
    `num_kernels` dense kernels, all initialised and regularised by the knobs, and that no
    other weight (embedding, router, bias, norm) was; returns the regularization loss."""
    kernels = dense_kernels(model)
    assert len(kernels) == num_kernels, [k.name for k in kernels]
    for kernel in kernels:
        np.testing.assert_allclose(kernel.numpy(), 0.01, err_msg=kernel.name)
    ids = {id(k) for k in kernels}
    others = [v for v in model.trainable_variables if id(v) not in ids]
    assert others, "embeddings, routers and biases keep their own initialisation"
    for variable in others:
        assert not np.allclose(variable.numpy(), 0.01), f"{variable.name} is not a dense kernel"
    assert len(model.losses) == num_kernels, "one regularization loss per dense kernel, no other"
    expected = sum(0.5 * float(tf.reduce_sum(tf.square(k))) for k in kernels)
    total = float(tf.add_n(model.losses))
    np.testing.assert_allclose(total, expected, rtol=1e-5)
    return total


def check_default_kernels(model: tf.keras.layers.Layer) -> None:
    """Asserts that `model`, built without kernel knobs, kept every layer's previous default:
    Glorot uniform Keras kernels (tfzoo layers: None, their own Glorot uniform, per expert
    in an expert bank) and no regularizer, hence no regularization loss."""
    assert not model.losses
    checked = 0
    for layer in model._flatten_layers(include_self=False):
        regularizer = getattr(layer, "kernel_regularizer", getattr(layer, "_kernel_regularizer", None))
        assert regularizer is None, layer.name
        if isinstance(layer, (tf.keras.layers.Dense, tf.keras.layers.EinsumDense)):
            # None (TF-GNN's GATv2Conv passes its own default on): `add_weight`'s Glorot uniform.
            initializer = layer.kernel_initializer
            assert initializer is None or isinstance(initializer, tf.keras.initializers.GlorotUniform), layer.name
            checked += 1
        elif type(layer).__module__.startswith("tfzoo") and hasattr(layer, "kernel_initializer"):
            initializer = layer.kernel_initializer
            assert initializer is None or isinstance(initializer, tf.keras.initializers.GlorotUniform), layer.name
            checked += 1
    assert checked


def check_layer_kernel_knobs(make_layer, inputs, num_kernels: int, **call_kwargs) -> None:
    """For a layer that takes `kernel_initializer` / `kernel_regularizer`: built by
    `make_layer(**options)` with `KERNEL_KNOBS`, every one of its `num_kernels` dense
    kernels (and nothing else) starts at the initializer's value and adds one
    regularization loss; its config keeps both, and the layer it rebuilds does the same.
    An unknown regularizer name is refused when the layer is made."""
    layer = make_layer(**KERNEL_KNOBS)
    layer(inputs, **call_kwargs)
    total = check_kernel_knobs(layer, num_kernels)
    config = layer.get_config()
    assert {name: config[name] for name in KERNEL_KNOBS} == KERNEL_KNOBS
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    clone(inputs, **call_kwargs)
    np.testing.assert_allclose(float(tf.add_n(clone.losses)), total, rtol=1e-5)
    try:
        make_layer(kernel_regularizer="l3")
    except ValueError as error:
        assert str(error) == "`kernel_regularizer` is not a Keras regularizer. Received: kernel_regularizer='l3'"
    else:
        raise AssertionError("an unknown regularizer must be refused")
