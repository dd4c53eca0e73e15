"""A stack of dense layers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from tfzoo.layers.backend import keras
from tfzoo.layers.kernel_options import check_kernel_options


@keras.utils.register_keras_serializable(package="tfzoo")
class MLP(keras.layers.Layer):
    """Dense layers, each followed by `activation` and dropout.

    Args:
      units: width of each layer, e.g. `(128, 64)`.
      activation: activation of every layer (the output layer too).
      dropout: dropout rate after each layer, in [0, 1).
      kernel_initializer: a Keras initializer of every kernel (default Glorot uniform).
      kernel_regularizer: a Keras regularizer of every kernel (e.g. "l2"), or None.

    Call arguments:
      inputs: [batch, ..., d_in].

    Returns:
      [batch, ..., units[-1]].
    """

    def __init__(
        self,
        units: Sequence[int],
        *,
        activation: str = "relu",
        dropout: float = 0.0,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        units = tuple(int(u) for u in units)
        if not units or any(u < 1 for u in units):
            raise ValueError(f"`units` must be a non-empty list of positive widths. Received: units={units}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
        check_kernel_options(kernel_initializer, kernel_regularizer)
        self.units = units
        self.activation = activation
        self.dropout = dropout
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        self._dense = [
            keras.layers.Dense(
                width,
                activation=self.activation,
                # A copy per layer: one unseeded initializer object draws the same values at
                # every use, so layers of one shape sharing it would start alike.
                kernel_initializer=type(self.kernel_initializer).from_config(self.kernel_initializer.get_config()),
                kernel_regularizer=self.kernel_regularizer,
                name=f"dense_{i}",
            )
            for i, width in enumerate(self.units)
        ]
        # Built here, not at the first call: a saved layer is rebuilt from its input shape
        # before its weights are read back (Keras 3's `.keras` files).
        shape = tuple(input_shape)
        for dense in self._dense:
            dense.build(shape)
            shape = (*shape[:-1], dense.units)
        self._dropout = keras.layers.Dropout(self.dropout) if self.dropout else None
        super().build(input_shape)

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        x = inputs
        for dense in self._dense:
            x = dense(x)
            if self._dropout is not None:
                x = self._dropout(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)[:-1].concatenate([self.units[-1]])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            units=list(self.units),
            activation=self.activation,
            dropout=self.dropout,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer)
            if self.kernel_regularizer
            else None,
        )
        return config
