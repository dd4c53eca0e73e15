"""`BehaviourSequenceEncoder`: aligned sequence channels -> one behaviour token (GRec)."""

from __future__ import annotations

import tensorflow as tf

from tfzoo.data.features import as_spec
from tfzoo.layers.kernel_options import check_kernel_options, kernel_options, kernel_options_config
from tfzoo.layers.parallel_transformer import ParallelTransformerBlock
from tfzoo.layers.routers import masked_mean


@tf.keras.utils.register_keras_serializable(package="tfzoo")
class BehaviourSequenceEncoder(tf.keras.layers.Layer):
    """Aligned sequence channels (e.g. item ids and ratings) -> one behaviour token.

    Each channel is embedded to `model_dim` (categorical / id elements by a table,
    numbers by a dense layer), channels and a learned position embedding are summed,
    parallel transformer blocks encode the sequence with its padding mask, and the
    real positions are averaged. The first categorical or id channel defines the mask.

    Args:
      feature_spec: the fitted spec of the channels (sequence features of one length).
      model_dim: token width d.
      num_heads: attention heads.
      num_layers: transformer blocks.
      dropout: dropout in the blocks.
      kernel_initializer, kernel_regularizer: a Keras initializer / regularizer of every
        dense kernel: the numeric channels' projections and the blocks' (None: Glorot
        uniform, no regularizer); the channel and position embedding tables, biases and
        layer norms keep theirs (`tfzoo.layers.kernel_options`).

    Call arguments:
      features: dict of preprocessed inputs (other keys are ignored).

    Returns:
      [batch, model_dim]; zeros for an empty sequence.
    """

    def __init__(
        self,
        feature_spec,
        *,
        model_dim: int = 32,
        num_heads: int = 4,
        num_layers: int = 1,
        dropout: float = 0.0,
        kernel_initializer=None,
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.feature_spec = as_spec(feature_spec)
        channels = self.feature_spec.features
        if not channels or not all(f.is_sequence for f in channels):
            raise ValueError(
                f"A behaviour sequence needs sequence features only. Received: features={[f.name for f in channels]}"
            )
        if len({f.max_length for f in channels}) != 1:
            raise ValueError(
                "The channels of one behaviour sequence must share `max_length`. "
                f"Received: { {f.name: f.max_length for f in channels} }"
            )
        if not any(f.modality != "numeric" for f in channels):
            raise ValueError(
                "A behaviour sequence needs a categorical or id channel to tell padding apart. "
                f"Received: features={[f.name for f in channels]}"
            )
        check_kernel_options(kernel_initializer, kernel_regularizer)
        self.model_dim = model_dim
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.dropout = dropout
        self.kernel_initializer = kernel_initializer
        self.kernel_regularizer = kernel_regularizer

    def build(self, input_shape):
        self.channel_embeddings = {}
        for f in self.feature_spec.features:
            if f.modality == "numeric":
                self.channel_embeddings[f.name] = tf.keras.layers.Dense(
                    self.model_dim, name=f"{f.name}_projection", **kernel_options(self)
                )
            else:
                self.channel_embeddings[f.name] = tf.keras.layers.Embedding(
                    f.cardinality, self.model_dim, name=f"{f.name}_embedding"
                )
        self.position_embedding = tf.keras.layers.Embedding(
            self.feature_spec.features[0].max_length, self.model_dim, name="position_embedding"
        )
        self.blocks = [
            ParallelTransformerBlock(self.num_heads, dropout=self.dropout, name=f"block_{i}", **kernel_options(self))
            for i in range(self.num_layers)
        ]
        super().build(input_shape)

    def call(self, features, training=None):
        mask_channel = next(f for f in self.feature_spec.features if f.modality != "numeric")
        mask = features[mask_channel.name] > 0  # [batch, L]
        x = 0.0
        for f in self.feature_spec.features:
            values = features[f.name]
            if f.modality == "numeric":
                x += self.channel_embeddings[f.name](tf.cast(values, tf.float32)[:, :, tf.newaxis])  # [batch, L, d]
            else:
                x += self.channel_embeddings[f.name](values)  # [batch, L, d]
        x += self.position_embedding(tf.range(tf.shape(mask)[1]))[tf.newaxis]  # [batch, L, d]
        for block in self.blocks:
            x = block(x, mask=mask, training=training)
        return masked_mean(x, mask)  # [batch, d]

    def get_config(self):
        config = super().get_config()
        config.update(
            feature_spec=self.feature_spec.to_config(),
            model_dim=self.model_dim,
            num_heads=self.num_heads,
            num_layers=self.num_layers,
            dropout=self.dropout,
            **kernel_options_config(self),
        )
        return config
