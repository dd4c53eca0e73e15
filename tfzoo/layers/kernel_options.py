"""`kernel_initializer` / `kernel_regularizer`: the dense-kernel knobs of layers and models.

Every layer and model that builds dense kernels takes both arguments and hands them on to
its dense sublayers. Their scope is the same everywhere: the kernels of dense maps (Dense
and EinsumDense layers, expert banks, attention and input projections, towers and logit
layers); embedding tables, router and gate kernels, biases and normalisation weights keep
their own initialisation and no regularizer. None keeps each sublayer's own default, so
that a layer or model built without them has exactly the weights it had before the
arguments existed (the same draws for the same seed).

A layer or model stores the arguments as given (a name, a config dict or an object), checks
them with `check_kernel_options`, passes `kernel_options(self)` on and writes
`kernel_options_config(self)` into its `get_config`.
"""

from __future__ import annotations

from typing import Any

from tfzoo.layers.backend import keras

KERNEL_OPTIONS = ("kernel_initializer", "kernel_regularizer")

_GETTERS = {
    "kernel_initializer": (keras.initializers.get, "initializer"),
    "kernel_regularizer": (keras.regularizers.get, "regularizer"),
}


def check_kernel_options(kernel_initializer=None, kernel_regularizer=None) -> None:
    """Fails with a one-line ValueError on an argument Keras does not resolve to an
    initializer / regularizer (None is accepted: the sublayers' own defaults)."""
    for name, value in (("kernel_initializer", kernel_initializer), ("kernel_regularizer", kernel_regularizer)):
        get, kind = _GETTERS[name]
        try:
            # `get` hands an unknown name back unchanged: what it returns must be callable.
            known = value is None or callable(get(value))
        except (ValueError, TypeError):
            known = False
        if not known:
            raise ValueError(f"`{name}` is not a Keras {kind}. Received: {name}={value!r}")


def serializable(value):
    """A Keras initializer / regularizer argument as a config holds it (names and dicts as given)."""
    if value is None or isinstance(value, (str, dict)):
        return value
    return keras.utils.serialize_keras_object(value)


def kernel_options(owner) -> dict[str, Any]:
    """The knobs `owner` (a layer or model with both attributes) was given, to pass on as
    keyword arguments: those that are None are left out, so each sublayer keeps its own
    default. An initializer object is cloned at each call: an unseeded Keras initializer
    object draws the same values at every use, so sublayers sharing one would start alike
    (names and config dicts make a fresh initializer in every layer anyway)."""
    options = {name: getattr(owner, name) for name in KERNEL_OPTIONS}
    initializer = options["kernel_initializer"]
    if isinstance(initializer, keras.initializers.Initializer):
        options["kernel_initializer"] = type(initializer).from_config(initializer.get_config())
    return {name: value for name, value in options.items() if value is not None}


def kernel_options_config(owner) -> dict[str, Any]:
    """`owner`'s two knobs as its `get_config` holds them (None included)."""
    return {name: serializable(getattr(owner, name)) for name in KERNEL_OPTIONS}
