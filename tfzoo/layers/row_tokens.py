"""`RowTokens`: a row's features -> GRec's token sequence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import tensorflow as tf

from tfzoo.data.features import as_spec
from tfzoo.layers.behaviour_sequence_encoder import BehaviourSequenceEncoder
from tfzoo.layers.kernel_options import check_kernel_options, kernel_options, kernel_options_config
from tfzoo.layers.wide_deep_encoder import WideDeepEncoder


@tf.keras.utils.register_keras_serializable(package="tfzoo")
class RowTokens(tf.keras.layers.Layer):
    """A row's features -> its token sequence [batch, groups + sequences, model_dim].

    Args:
      feature_spec: the fitted dataset spec.
      token_features: token name -> its features (one `WideDeepEncoder` each, projected
        to `model_dim`).
      behaviour_sequences: token name -> its aligned sequence channels (one
        `BehaviourSequenceEncoder` each).
      model_dim, embedding_dim, num_heads, sequence_layers, dropout: see `GRec`.
      kernel_initializer, kernel_regularizer: a Keras initializer / regularizer of every
        dense kernel: the encoders' deep towers and wide feed-forwards, the token
        projections and the behaviour sequences' (None: Glorot uniform, no regularizer);
        embedding tables, biases and layer norms keep theirs
        (`tfzoo.layers.kernel_options`).
    """

    def __init__(
        self,
        feature_spec,
        *,
        token_features: Mapping[str, Sequence[str]],
        behaviour_sequences: Mapping[str, Sequence[str]],
        model_dim: int = 32,
        embedding_dim: int = 8,
        num_heads: int = 4,
        sequence_layers: int = 1,
        dropout: float = 0.0,
        kernel_initializer=None,
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_kernel_options(kernel_initializer, kernel_regularizer)
        self.feature_spec = as_spec(feature_spec)
        self.token_features = {k: list(v) for k, v in token_features.items()}
        self.behaviour_sequences = {k: list(v) for k, v in behaviour_sequences.items()}
        self.model_dim = model_dim
        self.embedding_dim = embedding_dim
        self.num_heads = num_heads
        self.sequence_layers = sequence_layers
        self.dropout = dropout
        self.kernel_initializer = kernel_initializer
        self.kernel_regularizer = kernel_regularizer

    @property
    def num_tokens(self) -> int:
        return len(self.token_features) + len(self.behaviour_sequences)

    def build(self, input_shape):
        self.encoders = {
            name: tf.keras.Sequential(
                [
                    WideDeepEncoder(
                        self.feature_spec.select(names),
                        units=self.model_dim,
                        embedding_dim=self.embedding_dim,
                        name=f"{name}_encoder",
                        **kernel_options(self),
                    ),
                    tf.keras.layers.Dense(self.model_dim, name=f"{name}_token", **kernel_options(self)),
                ],
                name=f"{name}_token",
            )
            for name, names in self.token_features.items()
        }
        self.sequences = {
            name: BehaviourSequenceEncoder(
                self.feature_spec.select(channels),
                model_dim=self.model_dim,
                num_heads=self.num_heads,
                num_layers=self.sequence_layers,
                dropout=self.dropout,
                name=f"{name}_sequence",
                **kernel_options(self),
            )
            for name, channels in self.behaviour_sequences.items()
        }
        super().build(input_shape)

    def call(self, features, training=None):
        tokens = [self.encoders[name](features, training=training) for name in self.token_features]
        tokens += [self.sequences[name](features, training=training) for name in self.behaviour_sequences]
        return tf.stack(tokens, axis=1)  # [batch, tokens, d]

    def get_config(self):
        config = super().get_config()
        config.update(
            feature_spec=self.feature_spec.to_config(),
            token_features=dict(self.token_features),
            behaviour_sequences=dict(self.behaviour_sequences),
            model_dim=self.model_dim,
            embedding_dim=self.embedding_dim,
            num_heads=self.num_heads,
            sequence_layers=self.sequence_layers,
            dropout=self.dropout,
            **kernel_options_config(self),
        )
        return config
