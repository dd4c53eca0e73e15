"""Multi-channel feature projection of SUPER-MoE (Jiang et al., ICML-W 2022, eq. 4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from tfzoo.layers.backend import keras
from tfzoo.layers.kernel_options import check_kernel_options, kernel_options_config


def _channels(value, argument: str) -> dict[str, int]:
    # Sorted by name: the channels' parts are concatenated in this order, which must not
    # depend on how the mapping was made (a run's config.json stores it with sorted keys).
    channels = {str(k): int(v) for k, v in sorted(dict(value or {}).items())}
    bad = {k: v for k, v in channels.items() if v < 1}
    if bad:
        raise ValueError(f"`{argument}` sizes must be >= 1. Received: {argument}={bad}")
    return channels


@keras.utils.register_keras_serializable(package="tfzoo")
class MultiChannelProjection(keras.layers.Layer):
    """y = act(LayerNorm([s_cat w_cat, split(s_ID w_ID), s_dense] W + b)), per time step.

    A behaviour sequence is several aligned channels of length L:

    - category channels (small vocabularies: a rating, genres): int ids [batch, L], or
      [batch, L, K] for a multi-valued channel whose K slots are summed (a bag);
    - ID channels (large vocabularies: item ids): int ids [batch, L]. Their tables are
      read with `tf.nn.embedding_lookup`, which also takes a `ShardedVariable`: created
      under a `ParameterServerStrategy` with a `variable_partitioner`, a table is split
      row-wise over the parameter servers (the paper's `split`) and each lookup reads
      only the shards that hold its rows;
    - dense channels (title embeddings, the log time interval): floats [batch, L, width],
      used as they are.

    Ids: 0 is padding (and an empty slot of a bag), 1 .. vocabulary_size - 1 are values,
    and `vocabulary_size` itself is the [MASK] token of masked channel prediction: every
    table has vocabulary_size + 1 rows, the last one the learned mask embedding. A masked
    bag holds the mask id in its first slot and 0 in the others.

    The parts are concatenated category, ID, dense, and within a kind by channel name,
    whatever order the mappings are given in: a layer rebuilt from a config with sorted
    keys computes what the original did.

    Args:
      units: width d of the projected behaviour.
      category_channels: {name: vocabulary_size} of the category channels.
      id_channels: {name: vocabulary_size} of the ID channels.
      dense_channels: {name: width} of the dense channels.
      category_dim: embedding width of the category channels.
      id_dim: embedding width of the ID channels.
      activation: the nonlinearity after the layer norm.
      epsilon: layer-norm epsilon.
      kernel_initializer, kernel_regularizer: a Keras initializer / regularizer of the
        projection kernel W (None: Glorot uniform, no regularizer); the channels'
        embedding tables, the bias and the layer norm keep theirs
        (`tfzoo.layers.kernel_options`).

    Call arguments:
      inputs: {channel name: tensor}, every channel of the constructor.
      mask: optional [batch, L] (bool or 0/1), False/0 at padding; padded steps output 0.

    Returns:
      [batch, L, units].
    """

    def __init__(
        self,
        units: int,
        *,
        category_channels: Mapping[str, int] | None = None,
        id_channels: Mapping[str, int] | None = None,
        dense_channels: Mapping[str, int] | None = None,
        category_dim: int = 8,
        id_dim: int = 16,
        activation: str = "gelu",
        epsilon: float = 1e-6,
        kernel_initializer=None,
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if units < 1:
            raise ValueError(f"`units` must be >= 1. Received: units={units}")
        if category_dim < 1 or id_dim < 1:
            raise ValueError(f"Embedding widths must be >= 1. Received: category_dim={category_dim}, id_dim={id_dim}")
        check_kernel_options(kernel_initializer, kernel_regularizer)
        self.units = int(units)
        self.category_channels = _channels(category_channels, "category_channels")
        self.id_channels = _channels(id_channels, "id_channels")
        self.dense_channels = _channels(dense_channels, "dense_channels")
        names = [*self.category_channels, *self.id_channels, *self.dense_channels]
        if not names:
            raise ValueError("A multi-channel projection needs at least one channel. Received: no channels")
        if len(set(names)) != len(names):
            raise ValueError(f"Channel names must be unique across kinds. Received: channels={names}")
        self.category_dim = int(category_dim)
        self.id_dim = int(id_dim)
        self.activation = activation
        self.epsilon = float(epsilon)
        self.kernel_initializer = kernel_initializer
        self.kernel_regularizer = kernel_regularizer

    @property
    def channel_names(self) -> tuple[str, ...]:
        return (*self.category_channels, *self.id_channels, *self.dense_channels)

    def build(self, input_shape):
        self.tables = {}
        for name, size in self.category_channels.items():
            self.tables[name] = self.add_weight(
                name=f"{name}_embedding",
                shape=(size + 1, self.category_dim),
                initializer=keras.initializers.RandomNormal(stddev=0.05),
            )
        for name, size in self.id_channels.items():
            self.tables[name] = self.add_weight(
                name=f"{name}_embedding",
                shape=(size + 1, self.id_dim),
                initializer=keras.initializers.RandomNormal(stddev=0.05),
            )
        width = (
            len(self.category_channels) * self.category_dim
            + len(self.id_channels) * self.id_dim
            + sum(self.dense_channels.values())
        )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(width, self.units),
            initializer=self.kernel_initializer or "glorot_uniform",
            regularizer=self.kernel_regularizer,
        )
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self.layer_norm = keras.layers.LayerNormalization(epsilon=self.epsilon, name="layer_norm")
        self.layer_norm.build([None, None, self.units])
        self._activation = keras.activations.get(self.activation)
        super().build(input_shape)

    def _check(self, inputs):
        missing = sorted(set(self.channel_names) - set(inputs))
        if missing:
            raise ValueError(
                f"MultiChannelProjection {self.name!r} is missing channels {missing}. "
                f"Received: channels={sorted(inputs)}"
            )

    def call(self, inputs, mask=None):
        if isinstance(mask, dict):  # Keras 3 hands a layer of dict inputs one mask per input
            if any(m is not None for m in mask.values()):
                raise ValueError(
                    f"MultiChannelProjection {self.name!r} takes one [batch, steps] mask for every channel. "
                    f"Received: a mask per channel for {sorted(k for k, m in mask.items() if m is not None)}"
                )
            mask = None
        self._check(inputs)
        parts = []
        for name in self.category_channels:
            ids = tf.cast(inputs[name], tf.int64)  # [batch, L] or [batch, L, K]
            vectors = tf.nn.embedding_lookup(self.tables[name], ids)  # [batch, L, (K,) c]
            if ids.shape.rank == 3:  # a bag: sum the filled slots
                filled = tf.cast(ids > 0, vectors.dtype)[..., tf.newaxis]  # [batch, L, K, 1]
                vectors = tf.reduce_sum(vectors * filled, axis=2)  # [batch, L, c]
            parts.append(vectors)
        for name in self.id_channels:
            ids = tf.cast(inputs[name], tf.int64)  # [batch, L]
            parts.append(tf.nn.embedding_lookup(self.tables[name], ids))  # [batch, L, i]
        for name, width in self.dense_channels.items():
            values = tf.cast(inputs[name], self.compute_dtype)  # [batch, L, width]
            parts.append(tf.reshape(values, tf.concat([tf.shape(values)[:2], [width]], 0)))
        concatenated = tf.concat(parts, axis=-1)  # [batch, L, sum of widths]
        projected = tf.einsum("blw,wu->blu", concatenated, self.kernel) + self.bias  # [batch, L, units]
        outputs = self._activation(self.layer_norm(projected))  # [batch, L, units]
        if mask is not None:
            outputs *= tf.cast(mask, outputs.dtype)[..., tf.newaxis]
        return outputs

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            units=self.units,
            category_channels=dict(self.category_channels),
            id_channels=dict(self.id_channels),
            dense_channels=dict(self.dense_channels),
            category_dim=self.category_dim,
            id_dim=self.id_dim,
            activation=self.activation,
            epsilon=self.epsilon,
            **kernel_options_config(self),
        )
        return config
