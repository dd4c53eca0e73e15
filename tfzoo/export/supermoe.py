"""Export of SUPER-MoE: task probabilities and the universal user embedding.

The SavedModel takes the behaviour-sequence channels as tensors (the layout of
`tfzoo.data.behaviour_sequences`: ids already mapped, 0 = padding, the [MASK] id where a
value is unknown, e.g. the rating of the target step) and has two signatures:

- `serving_default`: channels -> {task: probability [batch]};
- `user_embedding`: channels -> {"user_embedding": H [batch, units]} (eq. 8).

It loads with `tf.saved_model.load` alone (no tfzoo, no Keras classes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from tfzoo.export.saved_model import save_version


def channel_signature(encoder) -> dict[str, tf.TensorSpec]:
    """The input signature of the encoder's channels."""
    specs = {}
    for name in encoder.category_channels:
        # Bags ([batch, L, K]) and single values ([batch, L]) differ in rank; a channel's
        # rank is fixed by the data it was trained on, recorded on the first call.
        rank = encoder.channel_ranks.get(name, 2)
        specs[name] = tf.TensorSpec([None] * rank, tf.int64, name=name)
    for name in encoder.id_channels:
        specs[name] = tf.TensorSpec([None, None], tf.int64, name=name)
    for name, width in encoder.dense_channels.items():
        specs[name] = tf.TensorSpec([None, None, width], tf.float32, name=name)
    return specs


def warmup_channels(encoder, *, num_rows: int = 2, length: int = 3) -> dict[str, np.ndarray]:
    """Warm-up inputs with real steps: row i holds `length - i` steps (ids 1, 2, ... kept
    below each channel's [MASK] id), then padding, so warm-up runs the encoder on real
    histories and on padding rather than on all-padding rows."""
    steps = np.array([[j < length - (i % length) for j in range(length)] for i in range(num_rows)])  # [rows, L]
    position = np.arange(1, length + 1)[np.newaxis, :]  # [1, L]
    channels = {}
    for name, size in {**encoder.category_channels, **encoder.id_channels}.items():
        ids = np.where(steps, 1 + (position - 1) % max(1, size - 2), 0).astype(np.int64)  # [rows, L]
        # A bag channel ([batch, L, K]) gets one value per step.
        channels[name] = ids[..., np.newaxis] if encoder.channel_ranks.get(name, 2) == 3 else ids
    for name, width in encoder.dense_channels.items():
        values = np.where(steps, 0.1, 0.0).astype(np.float32)[..., np.newaxis]  # [rows, L, 1]
        channels[name] = np.repeat(values, width, axis=2)  # [rows, L, width]
    return channels


class SuperMoEServing(tf.Module):
    def __init__(self, model):
        super().__init__(name="supermoe_serving")
        self.model = model

    def probabilities(self, channels):
        return self.model(channels, training=False)

    def user_embedding(self, channels):
        return {"user_embedding": self.model.user_embedding(channels, training=False)}


def export_supermoe(model, inputs, export_base: str | Path, name: str, version: int | None = None) -> Path:
    """Exports a trained `SuperMoE` as `<export_base>/<name>/<version>/` (see the module docstring)."""
    module = SuperMoEServing(model)
    signature = [channel_signature(model.encoder)]
    signatures = {
        "serving_default": tf.function(module.probabilities, input_signature=signature).get_concrete_function(),
        "user_embedding": tf.function(module.user_embedding, input_signature=signature).get_concrete_function(),
    }
    warmup = warmup_channels(model.encoder)
    return save_version(
        module,
        signatures,
        export_base,
        name,
        version=version,
        warmup_inputs={"serving_default": warmup, "user_embedding": warmup},
    )
