"""Multi-channel user behaviour sequences (SUPER-MoE), from MovieLens-100K, an event log
(`tfzoo.data.events_config`) or generated.

One example per (user, target behaviour): the user's `length - 1` previous behaviours,
oldest first, followed by the target behaviour, left-padded to `length` steps. Channels,
aligned per step (ids 0 = padding, the last step is the target):

| channel    | kind                   | value                                               |
| ---------- | ---------------------- | --------------------------------------------------- |
| `item`     | ID, int [L]            | item id (1 .. num_items)                            |
| `genres`   | category bag, int [L, G] | category index + 1 of each of the item's genres (0 = empty slot); where items have categories |
| `rating` or `action` | category, int [L] | the step's action: a rating 1-5 (MovieLens) or an action id 1 .. A (event logs); at the target step the [MASK] id A + 1 (unknown) |
| `title`    | dense, float [L, P]    | the item's vector (MovieLens: its text embedding reduced to P dims by PCA); where items have vectors |
| `interval` | dense, float [L, 1]    | log(1 + days since the previous behaviour), 0 first |

Beside the channels, `step_timestamp` (int [L], seconds, 0 = padding) keeps each step's
time: with `item` and the action channel it is the raw form of a sequence, what a client
sends to the SUPER-MoE export, which looks the other channels up in the run's `ItemTables`.

Tasks (binary, one label column each) are the target event's (`like`: the target rated
>= 4) or the user's (`female`, `over_34`: the user's gender is F, age 35 or more), with
masks where a user's attribute is unknown; an event log names its own.

The rows are a `TabularData`: the channels are extra columns (`CHANNELS`), beside the
features of `spec`, a flat view of the same information for the tabular baselines
(MMoE, PLE), as far as the tabular `FeatureEncoder` takes it: bags of the window's items,
its liked items and its genres (pooled embeddings), the actions, the mean title vector
and mean log interval of the window; the target item, its genres, title vector and
interval. `timestamp` (of the target) orders the time split; `bag_features` is the
sparse view for logistic regression.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sparse
import tensorflow as tf

from tfzoo.data.features import DatasetSpec, EmbeddingFeature, IdFeature, NumericFeature, SequenceFeature
from tfzoo.data.readers.movielens import MAX_GENRES, MovieLens100K, user_histories
from tfzoo.data.tabular import TabularData

BEHAVIOUR_TASKS = ("like", "female", "over_34")
# The channels a sequence may hold, in this order: `rating` (MovieLens) or `action` (an
# event log's action types) is the step's action channel; `genres` and `title` are there
# where the items have categories and vectors.
CHANNELS = ("item", "genres", "rating", "action", "title", "interval")
ACTION_CHANNELS = ("rating", "action")
ACTION_CHANNEL = "action"  # the action channel of event logs (`tfzoo.data.events_config`)
RATING_VOCABULARY = 6  # MovieLens ratings: ids 0 (padding) .. 5; 6 is the [MASK] id
LIKED_RATING = 4  # a rating of 4 or 5 is a liked item (the `like` task's threshold)
SECONDS_PER_DAY = 86_400.0


@dataclasses.dataclass(frozen=True)
class ChannelSizes:
    """Vocabulary sizes and widths of the channels, as `MoESequenceEncoder` takes them.

    `num_genres` 0: no `genres` channel; `title_dim` 0: no `title` channel. The action
    channel `action_channel` has ids 1 .. `num_actions` (0 padding, `num_actions + 1`
    the [MASK] id)."""

    num_items: int
    num_genres: int
    title_dim: int
    action_channel: str = "rating"
    num_actions: int = RATING_VOCABULARY - 1

    def __post_init__(self):
        if self.action_channel not in ACTION_CHANNELS:
            raise ValueError(
                f"`action_channel` must be one of {ACTION_CHANNELS}. Received: action_channel={self.action_channel!r}"
            )

    @classmethod
    def from_channels(
        cls, *, category_channels: dict[str, int], id_channels: dict[str, int], dense_channels: dict[str, int]
    ) -> ChannelSizes:
        """The inverse of the three properties below (e.g. from a run's stored inputs)."""
        actions = [name for name in category_channels if name in ACTION_CHANNELS]
        if len(actions) != 1:
            raise ValueError(f"Expected one action channel of {ACTION_CHANNELS}. Received: {dict(category_channels)}")
        return cls(
            num_items=int(id_channels["item"]) - 1,
            num_genres=int(category_channels.get("genres", 1)) - 1,
            title_dim=int(dense_channels.get("title", 0)),
            action_channel=actions[0],
            num_actions=int(category_channels[actions[0]]) - 1,
        )

    @property
    def action_vocabulary(self) -> int:
        """The action channel's ids 0 .. num_actions; the [MASK] id is this number."""
        return self.num_actions + 1

    @property
    def channel_names(self) -> tuple[str, ...]:
        present = {"item", self.action_channel, "interval"}
        present |= {"genres"} if self.num_genres else set()
        present |= {"title"} if self.title_dim else set()
        return tuple(name for name in CHANNELS if name in present)

    @property
    def category_channels(self) -> dict[str, int]:
        genres = {"genres": self.num_genres + 1} if self.num_genres else {}
        return {**genres, self.action_channel: self.action_vocabulary}

    @property
    def id_channels(self) -> dict[str, int]:
        return {"item": self.num_items + 1}

    @property
    def dense_channels(self) -> dict[str, int]:
        title = {"title": self.title_dim} if self.title_dim else {}
        return {**title, "interval": 1}


def _left_aligned(values: np.ndarray, keep: np.ndarray, pad) -> np.ndarray:
    """Each row's kept entries of [n, w] `values`, in order, then `pad`."""
    order = np.argsort(~keep, axis=1, kind="stable")  # kept entries first, in their order
    aligned = np.take_along_axis(values, order, axis=1)
    return np.where(np.take_along_axis(keep, order, axis=1), aligned, np.asarray(pad, dtype=aligned.dtype))


def reduce_title_embeddings(vectors: np.ndarray, dim: int) -> np.ndarray:
    """PCA of item text vectors [items + 1, D] -> [items + 1, dim]; row 0 (no item) stays 0."""
    rows = vectors[1:].astype(np.float64)
    centered = rows - rows.mean(axis=0)
    _, _, components = np.linalg.svd(centered, full_matrices=False)
    reduced = centered @ components[:dim].T  # [items, dim]
    reduced /= max(float(reduced.std()), 1e-8)
    return np.concatenate([np.zeros((1, dim)), reduced]).astype(np.float32)


def build_behaviour_sequences(
    *,
    user_id: np.ndarray,
    item_id: np.ndarray,
    rating: np.ndarray,
    timestamp: np.ndarray,
    item_genres: np.ndarray,
    item_titles: np.ndarray,
    user_female: np.ndarray,
    user_over_34: np.ndarray,
    length: int = 20,
    stride: int = 1,
    attribute_masks: dict[str, np.ndarray] | None = None,
    source: str = "",
) -> tuple[TabularData, ChannelSizes]:
    """Examples of rated items in the MovieLens layout: the `rating` channel (1-5) and the
    tasks `like` (the target rated >= 4), `female` and `over_34` (see the module docstring).

    Args:
      user_id, item_id, rating, timestamp: one entry per behaviour (int; ratings 1-5,
        timestamps in seconds).
      item_genres: int [num_items + 1, G], genre index + 1 per slot, 0 empty (row = item id).
      item_titles: float [num_items + 1, P] text embedding per item id.
      user_female, user_over_34: 0/1 per user id (index = user id).
      length: steps per example, the target included.
      stride: one example every `stride` behaviours of each user (the first behaviour of
        each user, which has no history, makes no example).
      attribute_masks: optional {task: 0/1 per user id} hiding attribute labels.
    """
    liked = np.asarray(rating) >= LIKED_RATING
    return sequences_from_events(
        user_id=user_id,
        item_id=item_id,
        action=rating,
        timestamp=timestamp,
        liked=liked,
        num_items=item_genres.shape[0] - 1,
        num_actions=RATING_VOCABULARY - 1,
        action_channel="rating",
        item_genres=item_genres,
        item_titles=item_titles,
        target_labels={"like": liked},
        user_labels={"female": user_female, "over_34": user_over_34},
        user_label_masks=attribute_masks,
        length=length,
        stride=stride,
        source=source,
    )


def sequences_from_events(
    *,
    user_id: np.ndarray,
    item_id: np.ndarray,
    action: np.ndarray,
    timestamp: np.ndarray,
    liked: np.ndarray,
    num_items: int,
    num_actions: int,
    action_channel: str = ACTION_CHANNEL,
    item_genres: np.ndarray | None = None,
    item_titles: np.ndarray | None = None,
    target_labels: Mapping[str, np.ndarray],
    user_labels: Mapping[str, np.ndarray] | None = None,
    user_label_masks: Mapping[str, np.ndarray] | None = None,
    task_order: Sequence[str] | None = None,
    length: int = 20,
    stride: int = 1,
    source: str = "",
) -> tuple[TabularData, ChannelSizes]:
    """Examples from behaviour events (see the module docstring): any action vocabulary,
    optional genres and title channels, any tasks.

    Args:
      user_id, item_id, action, timestamp: one entry per event (ints: user ids >= 1, item
        ids 1 .. num_items, actions 1 .. num_actions, timestamps in seconds).
      liked: bool per event: the step counts as a liked item (the flat view's and the
        logistic regression's liked-items bag).
      action_channel: the action channel's name, one of `ACTION_CHANNELS`.
      item_genres: int [num_items + 1, G] category index + 1 per slot (0 empty), or None.
      item_titles: float [num_items + 1, P] a vector per item id, or None.
      target_labels: {task: 0/1 per event}, the label of an example whose target it is.
      user_labels / user_label_masks: {task: 0/1 per user id} (index = user id), and
        which of them are observed (default: all).
      task_order: the tasks' order (default: target tasks, then user tasks).
      length: steps per example, the target included.
      stride: one example every `stride` events of each user (the first event of each
        user, which has no history, makes no example).
    """
    if length < 2:
        raise ValueError(f"`length` must be >= 2 (history and target). Received: length={length}")
    if stride < 1:
        raise ValueError(f"`stride` must be >= 1. Received: stride={stride}")
    user_id, item_id, action = (np.asarray(a, np.int64) for a in (user_id, item_id, action))
    timestamp, liked = np.asarray(timestamp), np.asarray(liked, bool)
    sizes = ChannelSizes(
        num_items=num_items,
        num_genres=0 if item_genres is None else int(item_genres.max(initial=0)),
        title_dim=0 if item_titles is None else item_titles.shape[1],
        action_channel=action_channel,
        num_actions=num_actions,
    )
    n = len(user_id)
    # Position of each event within its user's timeline, to pick every stride-th one.
    order = np.lexsort((np.arange(n), timestamp, user_id))
    rank = np.empty(n, np.int64)
    sorted_users = user_id[order]
    starts = np.r_[True, sorted_users[1:] != sorted_users[:-1]]
    rank[order] = np.arange(n) - np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    keep = np.flatnonzero((rank >= 1) & (rank % stride == 0))
    # The histories of the kept events only ([m, L - 1]; every event's would be `stride`
    # times larger: 4 x 152 MB for a million events of length 20).
    history_items, history_actions, history_liked, history_times = user_histories(
        user_id,
        timestamp,
        [item_id, action, liked.astype(np.int64), timestamp.astype(np.float64)],
        [0, 0, 0, np.nan],
        length - 1,
        rows=keep,
    )

    def left_pad(history: np.ndarray, pad, filled: np.ndarray | None = None) -> np.ndarray:
        """Right-padded histories (oldest first) -> left-padded, so the target is always last;
        `filled` marks the real steps where the values alone cannot (default: not `pad`)."""
        if filled is None:
            filled = (history != pad) if not (isinstance(pad, float) and np.isnan(pad)) else np.isfinite(history)
        counts = filled.sum(axis=1)
        shift = (history.shape[1] - counts)[:, None]
        columns = (np.arange(history.shape[1])[None, :] - shift) % history.shape[1]
        shifted = np.take_along_axis(history, columns, axis=1)
        return np.where(np.arange(history.shape[1])[None, :] >= shift, shifted, pad)

    items = np.concatenate([left_pad(history_items, 0), item_id[keep, None]], axis=1)  # [m, L]
    mask_id = sizes.action_vocabulary
    actions = np.concatenate([left_pad(history_actions, 0), np.full((len(keep), 1), mask_id)], 1)
    liked_steps = left_pad(history_liked, 0, filled=history_items > 0) > 0  # [m, L - 1]
    times = np.concatenate([left_pad(history_times, np.nan), timestamp[keep, None].astype(np.float64)], 1)
    gaps = np.diff(times, axis=1, prepend=np.nan) / SECONDS_PER_DAY  # [m, L]
    interval = np.log1p(np.clip(np.nan_to_num(gaps, nan=0.0), 0.0, None)).astype(np.float32)[..., None]
    users = user_id[keep]
    labels = {task: np.asarray(values, np.float32)[keep] for task, values in target_labels.items()}
    labels.update({task: np.asarray(values, np.float32)[users] for task, values in (user_labels or {}).items()})
    masks = {task: np.asarray(m)[users].astype(np.float32) for task, m in (user_label_masks or {}).items()}
    tasks = tuple(task_order or labels)
    if sorted(tasks) != sorted(labels):
        raise ValueError(
            f"`task_order` must name every task once. Received: task_order={list(tasks)}, tasks {sorted(labels)}"
        )
    features = {
        "item": items.astype(np.int64),
        action_channel: actions.astype(np.int64),
        "interval": interval,
        "user_id": users.astype(np.int64),
        "timestamp": timestamp[keep].astype(np.int64),
        # The raw form of the steps, as a client sends them to the export: seconds, 0 = padding.
        "step_timestamp": np.nan_to_num(times, nan=0.0).astype(np.int64),  # [m, L]
    }
    if item_genres is not None:
        features["genres"] = item_genres[items].astype(np.int64)  # [m, L, G]; padding item 0 has no genres
    if item_titles is not None:
        features["title"] = item_titles[items].astype(np.float32)  # [m, L, P]
    # Flat view for the tabular baselines (MMoE, PLE): every channel in a form the tabular
    # `FeatureEncoder` takes (bags of ids, pooled dense vectors), sequences left-aligned
    # (oldest first, then the sequence feature's padding: -1, NaN).
    window = items[:, :-1]  # the history steps
    real = window > 0
    real_steps = np.maximum(real.sum(axis=1, keepdims=True), 1)
    features.update(
        {
            "history": _left_aligned(window, real, -1),
            f"history_{action_channel}": _left_aligned(actions[:, :-1].astype(np.float32), real, np.nan),
            "liked_history": _left_aligned(window, real & liked_steps, -1),
            "history_interval": (interval[:, :-1, 0].sum(axis=1) / real_steps[:, 0]).astype(np.float32),
            "item_id": item_id[keep].astype(np.int64),
            "target_interval": interval[:, -1, 0],
        }
    )
    history_ids = IdFeature("history", num_ids=num_items + 1)
    history_genres = item_genre_features = history_title = title_embedding = ()
    if item_genres is not None:
        width = item_genres.shape[1]
        window_genres = features["genres"][:, :-1].reshape(len(keep), -1)
        features["history_genres"] = _left_aligned(window_genres, window_genres > 0, -1)
        features["item_genres"] = _left_aligned(features["genres"][:, -1], features["genres"][:, -1] > 0, -1)
        genre_ids = IdFeature("genres", num_ids=sizes.num_genres + 1)
        history_genres = (
            SequenceFeature(
                "history_genres", dataclasses.replace(genre_ids, name="history_genres"), max_length=(length - 1) * width
            ),
        )
        item_genre_features = (
            SequenceFeature("item_genres", dataclasses.replace(genre_ids, name="item_genres"), max_length=width),
        )
    if item_titles is not None:
        titles = (features["title"][:, :-1] * real[..., None]).sum(axis=1) / real_steps
        features["history_title"] = titles.astype(np.float32)
        features["title_embedding"] = item_titles[item_id[keep]].astype(np.float32)
        history_title = (EmbeddingFeature("history_title", dim=sizes.title_dim),)
        title_embedding = (EmbeddingFeature("title_embedding", dim=sizes.title_dim),)
    action_history = f"history_{action_channel}"
    flat_features = (
        SequenceFeature("history", history_ids, max_length=length - 1),
        SequenceFeature(action_history, NumericFeature(action_history), max_length=length - 1),
        SequenceFeature("liked_history", dataclasses.replace(history_ids, name="liked_history"), max_length=length - 1),
        *history_genres,
        *history_title,
        NumericFeature("history_interval"),
        IdFeature("item_id", num_ids=num_items + 1),
        *item_genre_features,
        *title_embedding,
        NumericFeature("target_interval"),
    )
    spec = DatasetSpec(features=flat_features, labels=tasks)
    data = TabularData(features=features, labels=labels, label_masks=masks, spec=spec, source=source)
    return data, sizes


def movielens_behaviour_sequences(
    movielens: MovieLens100K, *, length: int = 20, stride: int = 1, title_dim: int = 16
) -> tuple[TabularData, ChannelSizes]:
    """MovieLens-100K as behaviour sequences; needs the title embeddings (`embeddings_dir`)."""
    if movielens.title_embeddings is None:
        raise ValueError(
            f"{movielens.source}: behaviour sequences need title embeddings; read the folder with `embeddings_dir`."
        )
    items, users = movielens.items, movielens.users
    genre_index = {name: i + 1 for i, name in enumerate(movielens.genre_names)}
    item_genres = np.zeros((movielens.num_items + 1, MAX_GENRES), np.int64)
    for item, names in zip(items["item_id"], items["genres"]):
        item_genres[item, : len(names)] = [genre_index[g] for g in names[:MAX_GENRES]]
    female = np.zeros(movielens.num_users + 1, np.float32)
    over_34 = np.zeros(movielens.num_users + 1, np.float32)
    female[users["user_id"]] = users["gender"] == "F"
    over_34[users["user_id"]] = users["age"] >= 35
    ratings = movielens.ratings
    return build_behaviour_sequences(
        user_id=ratings["user_id"],
        item_id=ratings["item_id"],
        rating=ratings["rating"],
        timestamp=ratings["timestamp"],
        item_genres=item_genres,
        item_titles=reduce_title_embeddings(movielens.title_embeddings, title_dim),
        user_female=female,
        user_over_34=over_34,
        length=length,
        stride=stride,
        source=movielens.source,
    )


def make_behaviour_sequences(
    num_users: int = 300,
    *,
    num_items: int = 200,
    num_genres: int = 8,
    events_per_user: int = 30,
    length: int = 12,
    title_dim: int = 8,
    attribute_observed: float = 0.7,
    seed: int = 0,
) -> tuple[TabularData, ChannelSizes]:
    """Generated behaviour sequences with the MovieLens layout (for tests and demos).

    Each user has a latent taste over genres; they watch items of their favourite genres
    more often, rate them higher, and their gender / age attributes follow their taste.
    So every task is learnable from the sequence alone: `like` from the target item's
    genres against the user's history, `female` / `over_34` from the genres watched.
    Attribute labels are observed for a share `attribute_observed` of the users (mask
    0 elsewhere), like declared profile fields.
    """
    rng = np.random.default_rng(seed)
    item_genre = rng.integers(1, num_genres + 1, size=num_items + 1)  # [items + 1] main genre
    item_genres = np.zeros((num_items + 1, 2), np.int64)
    item_genres[:, 0] = item_genre
    second = rng.integers(1, num_genres + 1, size=num_items + 1)
    item_genres[:, 1] = np.where(rng.random(num_items + 1) < 0.5, second, 0)
    item_genres[0] = 0
    genre_vectors = rng.normal(size=(num_genres + 1, title_dim))
    item_titles = (genre_vectors[item_genre] + 0.5 * rng.normal(size=(num_items + 1, title_dim))).astype(np.float32)
    item_titles[0] = 0.0

    taste = rng.normal(size=(num_users + 1, num_genres + 1)) * 1.5  # [users + 1, genres + 1]
    female = (taste[:, 1] + taste[:, 2] + 0.5 * rng.normal(size=num_users + 1) > 0).astype(np.float32)
    over_34 = (taste[:, 3] - taste[:, 4] + 0.5 * rng.normal(size=num_users + 1) > 0).astype(np.float32)
    user_ids, item_ids, ratings, times = [], [], [], []
    for user in range(1, num_users + 1):
        affinity = taste[user, item_genre[1:]]  # [items]
        choice = np.exp(affinity - affinity.max())
        watched = rng.choice(num_items, size=events_per_user, p=choice / choice.sum()) + 1
        score = taste[user, item_genre[watched]] + rng.normal(size=events_per_user)
        ratings.append(np.clip(np.round(3.0 + score), 1, 5).astype(np.int64))
        start = rng.uniform(0, 200) * SECONDS_PER_DAY
        times.append((start + np.cumsum(rng.exponential(2.0, events_per_user)) * SECONDS_PER_DAY).astype(np.int64))
        user_ids.append(np.full(events_per_user, user))
        item_ids.append(watched)
    observed = (rng.random(num_users + 1) < attribute_observed).astype(np.float32)
    return build_behaviour_sequences(
        user_id=np.concatenate(user_ids),
        item_id=np.concatenate(item_ids),
        rating=np.concatenate(ratings),
        timestamp=np.concatenate(times),
        item_genres=item_genres,
        item_titles=item_titles,
        user_female=female,
        user_over_34=over_34,
        length=length,
        attribute_masks={"female": observed, "over_34": observed},
        source="generated behaviour sequences",
    )


def with_noise_task(data: TabularData, name: str = "noise", *, seed: int = 0) -> TabularData:
    """`data` with one more task, `name`, whose labels are fair coin flips (observed on
    every row): an auxiliary task that nothing can predict, to test task weighting."""
    if name in data.labels:
        raise ValueError(f"`name` must be a new task. Received: name={name!r}")
    rng = np.random.default_rng(seed)
    labels = {**data.labels, name: rng.integers(0, 2, size=len(data)).astype(np.float32)}
    masks = {**data.label_masks, name: np.ones(len(data), np.float32)}
    spec = dataclasses.replace(data.spec, labels=(*data.spec.labels, name))
    return dataclasses.replace(data, labels=labels, label_masks=masks, spec=spec)


def channel_columns(data: TabularData) -> dict[str, np.ndarray]:
    """The SUPER-MoE input channels of `data` (those of `CHANNELS` it holds)."""
    return {name: data.features[name] for name in CHANNELS if name in data.features}


def example_channels(sizes: ChannelSizes, *, num_rows: int = 2, length: int = 3) -> dict[str, np.ndarray]:
    """`num_rows` valid sequences in the layout of `channel_columns` (row i: `length - i`
    steps, then padding; the target step's action unknown): builds a model for these
    channel sizes without reading a dataset."""
    steps = np.arange(length)[np.newaxis, :] >= np.arange(num_rows)[:, np.newaxis] % length  # [rows, L], left-padded
    position = np.broadcast_to(np.arange(length), steps.shape)  # [rows, L]
    action = np.where(steps, 1 + position % sizes.num_actions, 0)
    action[:, -1] = sizes.action_vocabulary  # the [MASK] id
    channels = {
        "item": np.where(steps, 1 + position % max(1, sizes.num_items), 0).astype(np.int64),
        sizes.action_channel: action.astype(np.int64),
        "interval": np.where(steps, 0.5, 0.0).astype(np.float32)[..., np.newaxis],
    }
    if sizes.num_genres:
        channels["genres"] = np.where(steps, 1 + position % sizes.num_genres, 0).astype(np.int64)[..., np.newaxis]
    if sizes.title_dim:
        title = np.repeat(np.where(steps, 0.1, 0.0)[..., np.newaxis], sizes.title_dim, axis=2)
        channels["title"] = title.astype(np.float32)
    return {name: channels[name] for name in CHANNELS if name in channels}


@dataclasses.dataclass(frozen=True)
class ItemTables:
    """What a behaviour step's ids stand for: the `genres` [num_items + 1, G] and `title`
    [num_items + 1, P] channels of each item id (row 0, no item: empty; None where the
    sequences have no such channel), and where the files name items and actions their own
    way (`tfzoo.data.events_config`), `item_keys` [num_items] (item id i + 1 is
    `item_keys[i]`) and `action_keys` [num_actions] (text)."""

    genres: np.ndarray | None
    title: np.ndarray | None
    item_keys: np.ndarray | None = None
    action_keys: np.ndarray | None = None

    @classmethod
    def of(cls, *datas: TabularData, keys: Mapping[str, np.ndarray] | None = None) -> ItemTables:
        """The item tables of behaviour-sequence rows: every item seen at some step of
        `datas` (an item never seen keeps no genres and a zero title); `keys`: the
        `DatasetSplits.vocabularies` of the rows, where they have any."""
        sizes = channel_sizes(datas[0])
        genres = title = None
        if "genres" in datas[0].features:
            genres = np.zeros((sizes.num_items + 1, datas[0].features["genres"].shape[-1]), np.int64)
        if "title" in datas[0].features:
            title = np.zeros((sizes.num_items + 1, sizes.title_dim), np.float32)
        for data in datas:
            items = data.features["item"].ravel()  # [n L]
            if genres is not None:
                genres[items] = data.features["genres"].reshape(len(items), -1)
                genres[0] = 0
            if title is not None:
                title[items] = data.features["title"].reshape(len(items), -1)
                title[0] = 0.0
        keys = keys or {}
        return cls(genres=genres, title=title, item_keys=keys.get("item"), action_keys=keys.get("action"))

    @property
    def num_items(self) -> int:
        for table in (self.genres, self.title):
            if table is not None:
                return len(table) - 1
        return len(self.item_keys) if self.item_keys is not None else 0

    def known_items(self) -> np.ndarray:
        """The item ids (>= 1) that some table describes, or every id where none does."""
        described = np.zeros(self.num_items + 1, bool)
        if self.title is not None:
            described |= self.title.any(axis=1)
        if self.genres is not None:
            described |= (self.genres > 0).any(axis=1)
        described[0] = False
        known = np.flatnonzero(described)
        return known if len(known) else np.arange(1, max(self.num_items, 1) + 1)

    def save(self, path) -> None:
        tables = {"genres": self.genres, "title": self.title, "item_keys": self.item_keys}
        tables["action_keys"] = self.action_keys
        np.savez_compressed(path, **{k: np.asarray(v) for k, v in tables.items() if v is not None})

    @classmethod
    def load(cls, path) -> ItemTables:
        try:
            with np.load(path, allow_pickle=False) as stored:
                return cls(
                    **{
                        k: stored[k] if k in stored.files else None
                        for k in ("genres", "title", "item_keys", "action_keys")
                    }
                )
        except FileNotFoundError:
            raise FileNotFoundError(f"{path} not found: no item tables were saved there.") from None


def channel_dataset(
    data: TabularData,
    batch_size: int,
    *,
    labels: bool = True,
    shuffle_seed: int | None = None,
    repeat: bool = False,
) -> tf.data.Dataset:
    """Batches of `data`'s channels (with `labels`: `(channels, labels, label_masks)`, as
    `SuperMoE.fit` takes them); with `shuffle_seed`, reshuffled every epoch; with `repeat`,
    without end."""
    columns = channel_columns(data)
    dataset = tf.data.Dataset.from_tensor_slices((columns, data.labels, data.label_masks) if labels else columns)
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(data), seed=shuffle_seed, reshuffle_each_iteration=True)
    return (dataset.repeat() if repeat else dataset).batch(batch_size)


def channel_sizes(data: TabularData) -> ChannelSizes:
    """The `ChannelSizes` of behaviour-sequence rows, from their spec (the sizes of all
    splits) and columns (every row's target step holds the action channel's [MASK] id,
    its largest)."""
    action_channel = next(name for name in ACTION_CHANNELS if name in data.features)
    actions = data.features[action_channel]
    if not len(actions):
        raise ValueError(f"No behaviour-sequence rows in {data.source or 'the data'}: their channel sizes are unknown.")
    return ChannelSizes(
        num_items=data.spec.feature("item_id").num_ids - 1,
        # The genre ids of every split (the flat view's vocabulary), not only those these rows hold.
        num_genres=data.spec.feature("item_genres").element.num_ids - 1 if "genres" in data.features else 0,
        title_dim=int(data.features["title"].shape[-1]) if "title" in data.features else 0,
        action_channel=action_channel,
        num_actions=int(actions.max()) - 1,
    )


def bag_features(data: TabularData, sizes: ChannelSizes) -> sparse.csr_matrix:
    """Sparse [rows, 3 (I + 1) + 2 (G + 1)] features of the strong simple baseline
    (logistic regression, `tfzoo.evaluation.logistic`), blocks in this order:

    - the bag of the window's items (the history steps, target excluded; one column per item id);
    - the bag of its liked items (`liked_history`: e.g. rated >= 4);
    - the target item (one-hot);
    - genre counts over the window's items;
    - the target item's genres.

    Without a genres channel the last two blocks are empty (G = 0 gives one zero column
    each). `sizes` fixes the columns (take the training split's, so that every split agrees).
    """
    items = data.features["item"]  # [rows, L]
    rows = len(items)
    genres = data.features.get("genres", np.zeros((rows, items.shape[1], 0), np.int64))  # [rows, L, K]
    liked = data.features["liked_history"]  # [rows, L - 1], item ids then -1
    width_items, width_genres = sizes.num_items + 1, sizes.num_genres + 1
    if items.size and (items.max() >= width_items or genres.max(initial=0) >= width_genres):
        raise ValueError(f"Item or genre ids beyond the sizes given ({sizes}): pass the training split's sizes.")
    history, history_genres = items[:, :-1], genres[:, :-1]
    blocks = [
        (history > 0, history, 0),
        (liked > 0, liked, width_items),
        (items[:, -1:] > 0, items[:, -1:], 2 * width_items),
        (history_genres > 0, history_genres, 3 * width_items),
        (genres[:, -1] > 0, genres[:, -1], 3 * width_items + width_genres),
    ]
    row_ids, column_ids = [], []
    for present, ids, offset in blocks:
        row_index = np.broadcast_to(np.arange(rows).reshape((rows,) + (1,) * (ids.ndim - 1)), ids.shape)
        row_ids.append(row_index[present])
        column_ids.append(ids[present].astype(np.int64) + offset)
    row_ids, column_ids = np.concatenate(row_ids), np.concatenate(column_ids)
    shape = (rows, 3 * width_items + 2 * width_genres)
    # Duplicates add up: a genre seen on three steps counts 3.
    return sparse.csr_matrix((np.ones(len(row_ids)), (row_ids, column_ids)), shape=shape)
