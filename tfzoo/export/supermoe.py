"""Export of SUPER-MoE: task probabilities and the universal user embedding.

The SavedModel takes a user's behaviour sequence in its raw form and looks the other
channels up itself, so a client sends what its logs hold:

- `serving_default`: `item` [batch, L] int64 (item ids, 0 = padding, sequences
  left-padded, the last step the target item), `rating` [batch, L] int64 (1-5 for the
  history steps; the target's is unknown and ignored), `timestamp` [batch, L] int64
  (seconds) -> {task: probability [batch]};
- `user_embedding`: the same inputs -> {"user_embedding": H [batch, units]} (eq. 8).

Genres and title vectors come from the run's `ItemTables` (stored in the SavedModel),
intervals from the timestamps, exactly as `tfzoo.data.behaviour_sequences` builds them;
the target's rating is the [MASK] id. An item id outside the tables or a rating outside
0-5 fails the request (INVALID_ARGUMENT), naming the input.

`serving_channels` and `user_embedding_channels` take the channels themselves (the
layout of `tfzoo.data.behaviour_sequences`: ids already mapped, 0 = padding), for
clients that compute them (e.g. title vectors of items the tables do not hold).

It loads with `tf.saved_model.load` alone (no tfzoo, no Keras classes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from tfzoo.data.behaviour_sequences import RATING_VOCABULARY, SECONDS_PER_DAY, ItemTables
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


RAW_INPUTS = ("item", "rating", "timestamp")


def raw_signature() -> dict[str, tf.TensorSpec]:
    """The input signature of a raw behaviour sequence."""
    return {name: tf.TensorSpec([None, None], tf.int64, name=name) for name in RAW_INPUTS}


def warmup_raw(items: ItemTables, *, num_rows: int = 2, length: int = 3) -> dict[str, np.ndarray]:
    """Warm-up sequences in raw form: row i holds `length - i` steps (left-padded) of known
    items, a day apart."""
    steps = np.arange(length)[np.newaxis, :] >= np.arange(num_rows)[:, np.newaxis] % length  # [rows, L]
    known = np.flatnonzero(items.title.any(axis=1) | (items.genres > 0).any(axis=1))
    known = known if len(known) else np.array([1])
    position = np.broadcast_to(np.arange(length), steps.shape)
    return {
        "item": np.where(steps, known[position % len(known)], 0).astype(np.int64),
        "rating": np.where(steps, 1 + position % 5, 0).astype(np.int64),
        "timestamp": np.where(steps, 1_000_000 + 86_400 * position, 0).astype(np.int64),
    }


class SuperMoEServing(tf.Module):
    def __init__(self, model, items: ItemTables):
        super().__init__(name="supermoe_serving")
        self.model = model
        self.item_genres = tf.constant(items.genres, tf.int64)  # [items + 1, G]
        self.item_title = tf.constant(items.title, tf.float32)  # [items + 1, P]

    def channels(self, item: tf.Tensor, rating: tf.Tensor, timestamp: tf.Tensor) -> dict[str, tf.Tensor]:
        """The encoder's channels of raw sequences (see the module docstring)."""
        num_items = self.item_genres.shape[0] - 1
        checks = [
            tf.debugging.assert_equal(
                tf.shape(rating), tf.shape(item), message="`rating` must have the shape of `item`"
            ),
            tf.debugging.assert_equal(
                tf.shape(timestamp), tf.shape(item), message="`timestamp` must have the shape of `item`"
            ),
            tf.debugging.assert_non_negative(item, message="`item` ids must be >= 0 (0 = padding)"),
            tf.debugging.assert_less_equal(
                item, tf.constant(num_items, tf.int64), message=f"`item` ids must be <= {num_items} (the known items)"
            ),
            # The history's ratings; the target's is unknown and ignored.
            tf.debugging.assert_non_negative(rating[:, :-1], message="`rating` must be in 0-5 (0 = padding)"),
            tf.debugging.assert_less_equal(
                rating[:, :-1],
                tf.constant(RATING_VOCABULARY - 1, tf.int64),
                message="`rating` must be in 0-5 (0 = padding)",
            ),
        ]
        with tf.control_dependencies(checks):
            real = item > 0  # [batch, L]
            target = tf.equal(tf.range(tf.shape(item)[1]), tf.shape(item)[1] - 1)[tf.newaxis, :]  # [1, L]
            masked = tf.where(target, tf.constant(RATING_VOCABULARY, tf.int64), tf.where(real, rating, 0))
            times = tf.where(real, tf.cast(timestamp, tf.float64), np.nan)  # [batch, L]
            previous = tf.concat([tf.fill([tf.shape(times)[0], 1], tf.constant(np.nan, tf.float64)), times[:, :-1]], 1)
            days = (times - previous) / SECONDS_PER_DAY  # NaN where either step is padding: the first step
            interval = tf.math.log1p(tf.maximum(tf.where(tf.math.is_nan(days), tf.zeros_like(days), days), 0.0))
            return {
                "item": item,
                "genres": tf.gather(self.item_genres, item),  # [batch, L, G]
                "rating": masked,
                "title": tf.gather(self.item_title, item),  # [batch, L, P]
                "interval": tf.cast(interval, tf.float32)[..., tf.newaxis],  # [batch, L, 1]
            }

    def probabilities(self, channels):
        return self.model(channels, training=False)

    def user_embedding(self, channels):
        return {"user_embedding": self.model.user_embedding(channels, training=False)}

    def raw_probabilities(self, raw):
        return self.probabilities(self.channels(**raw))

    def raw_user_embedding(self, raw):
        return self.user_embedding(self.channels(**raw))


def export_supermoe(model, items: ItemTables, export_base: str | Path, name: str, version: int | None = None) -> Path:
    """Exports a trained `SuperMoE` with the item tables of its run as
    `<export_base>/<name>/<version>/` (see the module docstring)."""
    module = SuperMoEServing(model, items)
    raw, channels = [raw_signature()], [channel_signature(model.encoder)]
    signatures = {
        "serving_default": tf.function(module.raw_probabilities, input_signature=raw).get_concrete_function(),
        "user_embedding": tf.function(module.raw_user_embedding, input_signature=raw).get_concrete_function(),
        "serving_channels": tf.function(module.probabilities, input_signature=channels).get_concrete_function(),
        "user_embedding_channels": tf.function(module.user_embedding, input_signature=channels).get_concrete_function(),
    }
    raw_warmup, channel_warmup = warmup_raw(items), warmup_channels(model.encoder)
    return save_version(
        module,
        signatures,
        export_base,
        name,
        version=version,
        warmup_inputs={
            "serving_default": raw_warmup,
            "user_embedding": raw_warmup,
            "serving_channels": channel_warmup,
            "user_embedding_channels": channel_warmup,
        },
    )
