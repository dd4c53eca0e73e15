"""Export of SUPER-MoE: task probabilities and the universal user embedding.

The SavedModel takes a user's behaviour sequence in its raw form and looks the other
channels up itself, so a client sends what its logs hold:

- `serving_default`: `item` [batch, L] (item ids, padding 0 or "", sequences
  left-padded, the last step the target item), the action channel [batch, L] (`rating`:
  1-5 for MovieLens; `action`: the action names of an event log; the target's is unknown
  and ignored), `timestamp` [batch, L] int64 (seconds) -> {task: probability [batch]};
- `user_embedding`: the same inputs -> {"user_embedding": H [batch, units]} (eq. 8).

Items and actions are int64 ids, or, for an event log's run, the files' own ids: int64
where every item id is an integer, text otherwise, and the action names as text
(`ItemTables.item_keys` / `action_keys`, looked up in tables stored in the SavedModel).
Genres and title vectors come from the run's `ItemTables`, intervals from the
timestamps, exactly as `tfzoo.data.behaviour_sequences` builds them; the target's action
is the [MASK] id. An item outside the tables or an unknown action fails the request
(INVALID_ARGUMENT), naming the input.

`serving_channels` and `user_embedding_channels` take the channels themselves (the
layout of `tfzoo.data.behaviour_sequences`: ids already mapped, 0 = padding), for
clients that compute them (e.g. title vectors of items the tables do not hold).

It loads with `tf.saved_model.load` alone (no tfzoo, no Keras classes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from tfzoo.data.behaviour_sequences import ACTION_CHANNELS, SECONDS_PER_DAY, ItemTables
from tfzoo.data.ids import client_ids
from tfzoo.export.saved_model import hold_untracked, save_version


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


def _action_channel(encoder) -> tuple[str, int]:
    """The encoder's action channel and its vocabulary (ids 0 .. size - 1; size is [MASK])."""
    name = next(name for name in encoder.category_channels if name in ACTION_CHANNELS)
    return name, int(encoder.category_channels[name])


def _key_dtype(keys: np.ndarray | None) -> tf.DType:
    """int64 for ids written as integers (or no keys: the ids themselves), else string."""
    return tf.int64 if keys is None or client_ids(keys).dtype == np.int64 else tf.string


def raw_signature(encoder, items: ItemTables) -> dict[str, tf.TensorSpec]:
    """The input signature of a raw behaviour sequence: item, the action channel, timestamp."""
    action, _ = _action_channel(encoder)
    return {
        "item": tf.TensorSpec([None, None], _key_dtype(items.item_keys), name="item"),
        action: tf.TensorSpec([None, None], _key_dtype(items.action_keys), name=action),
        "timestamp": tf.TensorSpec([None, None], tf.int64, name="timestamp"),
    }


def warmup_raw(encoder, items: ItemTables, *, num_rows: int = 2, length: int = 3) -> dict[str, np.ndarray]:
    """Warm-up sequences in raw form: row i holds `length - i` steps (left-padded) of known
    items and actions, a day apart."""
    action, size = _action_channel(encoder)
    steps = np.arange(length)[np.newaxis, :] >= np.arange(num_rows)[:, np.newaxis] % length  # [rows, L]
    known = items.known_items()
    position = np.broadcast_to(np.arange(length), steps.shape)
    item_ids = np.where(steps, known[position % len(known)], 0)
    action_ids = np.where(steps, 1 + position % (size - 1), 0)

    def keyed(ids: np.ndarray, keys: np.ndarray | None) -> np.ndarray:
        if keys is None:
            return ids.astype(np.int64)
        named = client_ids(keys)
        padding = np.array(0 if named.dtype == np.int64 else "", named.dtype)
        return np.where(ids > 0, named[np.maximum(ids - 1, 0)], padding)

    return {
        "item": keyed(item_ids, items.item_keys),
        action: keyed(action_ids, items.action_keys),
        "timestamp": np.where(steps, 1_000_000 + 86_400 * position, 0).astype(np.int64),
    }


class SuperMoEServing(tf.Module):
    def __init__(self, model, items: ItemTables):
        super().__init__(name="supermoe_serving")
        hold_untracked(self, "model", model)
        self.action, self.action_vocabulary = _action_channel(model.encoder)
        self.num_items = items.num_items
        self.item_genres = None if items.genres is None else tf.constant(items.genres, tf.int64)  # [items + 1, G]
        self.item_title = None if items.title is None else tf.constant(items.title, tf.float32)  # [items + 1, P]
        # Items and actions as the files name them (`tfzoo.data.events_config`): a lookup
        # table to the model's ids, unknown keys -1 (refused).
        self.item_table = self._table(items.item_keys)
        self.action_table = self._table(items.action_keys)

    @staticmethod
    def _table(keys: np.ndarray | None):
        if keys is None:
            return None
        named = client_ids(keys)
        dtype = tf.int64 if named.dtype == np.int64 else tf.string
        return tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(named, dtype), tf.range(1, len(named) + 1, dtype=tf.int64)),
            default_value=-1,
        )

    @staticmethod
    def _ids(keys: tf.Tensor, table) -> tf.Tensor:
        """The model's ids of client keys: padding (0 or "") 0, unknown -1."""
        if table is None:
            return keys
        padding = tf.equal(keys, tf.zeros_like(keys)) if keys.dtype == tf.int64 else tf.equal(keys, "")
        return tf.where(padding, tf.constant(0, tf.int64), table.lookup(keys))

    def channels(self, item: tf.Tensor, action: tf.Tensor, timestamp: tf.Tensor) -> dict[str, tf.Tensor]:
        """The encoder's channels of raw sequences (see the module docstring)."""
        num_items, last_action = self.num_items, self.action_vocabulary - 1
        item = self._ids(item, self.item_table)
        action = self._ids(action, self.action_table)
        known = "the known items" if self.item_table is None else "an item the run was trained on"
        if self.action_table is None:
            actions = f"`{self.action}` must be in 0-{last_action} (0 = padding)"
        else:
            actions = f"`{self.action}` must be one of the actions the run was trained on (empty = padding)"
        checks = [
            tf.debugging.assert_equal(
                tf.shape(action), tf.shape(item), message=f"`{self.action}` must have the shape of `item`"
            ),
            tf.debugging.assert_equal(
                tf.shape(timestamp), tf.shape(item), message="`timestamp` must have the shape of `item`"
            ),
            tf.debugging.assert_non_negative(item, message=f"`item` must be {known} (or padding)"),
            tf.debugging.assert_less_equal(
                item, tf.constant(num_items, tf.int64), message=f"`item` ids must be <= {num_items} ({known})"
            ),
            # The history's actions; the target's is unknown and ignored.
            tf.debugging.assert_non_negative(action[:, :-1], message=actions),
            tf.debugging.assert_less_equal(action[:, :-1], tf.constant(last_action, tf.int64), message=actions),
        ]
        with tf.control_dependencies(checks):
            real = item > 0  # [batch, L]
            target = tf.equal(tf.range(tf.shape(item)[1]), tf.shape(item)[1] - 1)[tf.newaxis, :]  # [1, L]
            mask_id = tf.constant(self.action_vocabulary, tf.int64)
            masked = tf.where(target, mask_id, tf.where(real, tf.maximum(action, 0), 0))
            times = tf.where(real, tf.cast(timestamp, tf.float64), np.nan)  # [batch, L]
            previous = tf.concat([tf.fill([tf.shape(times)[0], 1], tf.constant(np.nan, tf.float64)), times[:, :-1]], 1)
            days = (times - previous) / SECONDS_PER_DAY  # NaN where either step is padding: the first step
            interval = tf.math.log1p(tf.maximum(tf.where(tf.math.is_nan(days), tf.zeros_like(days), days), 0.0))
            channels = {
                "item": tf.identity(item),
                self.action: masked,
                "interval": tf.cast(interval, tf.float32)[..., tf.newaxis],  # [batch, L, 1]
            }
            if self.item_genres is not None:
                channels["genres"] = tf.gather(self.item_genres, item)  # [batch, L, G]
            if self.item_title is not None:
                channels["title"] = tf.gather(self.item_title, item)  # [batch, L, P]
            return channels

    def probabilities(self, channels):
        return self.model(channels, training=False)

    def user_embedding(self, channels):
        return {"user_embedding": self.model.user_embedding(channels, training=False)}

    def raw_probabilities(self, raw):
        return self.probabilities(self.channels(raw["item"], raw[self.action], raw["timestamp"]))

    def raw_user_embedding(self, raw):
        return self.user_embedding(self.channels(raw["item"], raw[self.action], raw["timestamp"]))


def export_supermoe(model, items: ItemTables, export_base: str | Path, name: str, version: int | None = None) -> Path:
    """Exports a trained `SuperMoE` with the item tables of its run as
    `<export_base>/<name>/<version>/` (see the module docstring)."""
    module = SuperMoEServing(model, items)
    raw, channels = [raw_signature(model.encoder, items)], [channel_signature(model.encoder)]
    signatures = {
        "serving_default": tf.function(module.raw_probabilities, input_signature=raw).get_concrete_function(),
        "user_embedding": tf.function(module.raw_user_embedding, input_signature=raw).get_concrete_function(),
        "serving_channels": tf.function(module.probabilities, input_signature=channels).get_concrete_function(),
        "user_embedding_channels": tf.function(module.user_embedding, input_signature=channels).get_concrete_function(),
    }
    raw_warmup, channel_warmup = warmup_raw(model.encoder, items), warmup_channels(model.encoder)
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
