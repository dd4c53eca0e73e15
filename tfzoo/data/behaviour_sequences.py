"""Multi-channel user behaviour sequences (SUPER-MoE), from MovieLens-100K or generated.

One example per (user, target behaviour): the user's `length - 1` previous behaviours,
oldest first, followed by the target behaviour, left-padded to `length` steps. Channels,
aligned per step (ids 0 = padding, the last step is the target):

| channel    | kind                   | value                                               |
| ---------- | ---------------------- | --------------------------------------------------- |
| `item`     | ID, int [L]            | item id (1 .. num_items)                            |
| `genres`   | category bag, int [L, G] | genre index + 1 of each of the item's genres (0 = empty slot) |
| `rating`   | category, int [L]      | rating 1-5; at the target step the [MASK] id 6 (unknown) |
| `title`    | dense, float [L, P]    | the item's text embedding, reduced to P dims by PCA |
| `interval` | dense, float [L, 1]    | log(1 + days since the previous behaviour), 0 first |

Beside the channels, `step_timestamp` (int [L], seconds, 0 = padding) keeps each step's
time: with `item` and `rating` it is the raw form of a sequence, what a client sends to
the SUPER-MoE export, which looks the other channels up in the run's `ItemTables`.

Tasks (binary, one label column each, all observed unless a generator hides some):

| task     | label                                                  |
| -------- | ------------------------------------------------------ |
| `like`   | the user rates the target item >= 4                    |
| `female` | the user's gender is F                                 |
| `over_34`| the user is 35 or older                                |

The rows are a `TabularData`: the channels are extra columns (`CHANNELS`), beside the
features of `spec`, a flat view of the same information for the tabular baselines
(MMoE, PLE), as far as the tabular `FeatureEncoder` takes it: bags of the window's items,
its liked items and its genres (pooled embeddings), the ratings, the mean title vector
and mean log interval of the window; the target item, its genres, title vector and
interval. `timestamp` (of the target) orders the time split; `bag_features` is the
sparse view for logistic regression.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sparse
import tensorflow as tf

from tfzoo.data.features import DatasetSpec, EmbeddingFeature, IdFeature, NumericFeature, SequenceFeature
from tfzoo.data.readers.movielens import MAX_GENRES, MovieLens100K, user_histories
from tfzoo.data.tabular import TabularData

BEHAVIOUR_TASKS = ("like", "female", "over_34")
CHANNELS = ("item", "genres", "rating", "title", "interval")
RATING_VOCABULARY = 6  # ids 0 (padding) .. 5; 6 is the [MASK] id
LIKED_RATING = 4  # a rating of 4 or 5 is a liked item (the `like` task's threshold)
SECONDS_PER_DAY = 86_400.0


@dataclasses.dataclass(frozen=True)
class ChannelSizes:
    """Vocabulary sizes and widths of the channels, as `MoESequenceEncoder` takes them."""

    num_items: int
    num_genres: int
    title_dim: int

    @classmethod
    def from_channels(
        cls, *, category_channels: dict[str, int], id_channels: dict[str, int], dense_channels: dict[str, int]
    ) -> ChannelSizes:
        """The inverse of the three properties below (e.g. from a run's stored inputs)."""
        return cls(
            num_items=int(id_channels["item"]) - 1,
            num_genres=int(category_channels["genres"]) - 1,
            title_dim=int(dense_channels["title"]),
        )

    @property
    def category_channels(self) -> dict[str, int]:
        return {"genres": self.num_genres + 1, "rating": RATING_VOCABULARY}

    @property
    def id_channels(self) -> dict[str, int]:
        return {"item": self.num_items + 1}

    @property
    def dense_channels(self) -> dict[str, int]:
        return {"title": self.title_dim, "interval": 1}


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
    """Examples from behaviour events (see the module docstring).

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
    if length < 2:
        raise ValueError(f"`length` must be >= 2 (history and target). Received: length={length}")
    if stride < 1:
        raise ValueError(f"`stride` must be >= 1. Received: stride={stride}")
    n = len(user_id)
    history_items, history_ratings, history_times = user_histories(
        user_id, timestamp, [item_id, rating, timestamp.astype(np.float64)], [0, 0, np.nan], length - 1
    )
    # Position of each event within its user's timeline, to pick every stride-th one.
    order = np.lexsort((np.arange(n), timestamp, user_id))
    rank = np.empty(n, np.int64)
    sorted_users = user_id[order]
    starts = np.r_[True, sorted_users[1:] != sorted_users[:-1]]
    rank[order] = np.arange(n) - np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    keep = np.flatnonzero((rank >= 1) & (rank % stride == 0))

    def left_pad(history: np.ndarray, pad) -> np.ndarray:
        """Right-padded histories (oldest first) -> left-padded, so the target is always last."""
        filled = (history != pad) if not (isinstance(pad, float) and np.isnan(pad)) else np.isfinite(history)
        counts = filled.sum(axis=1)
        shift = (history.shape[1] - counts)[:, None]
        columns = (np.arange(history.shape[1])[None, :] - shift) % history.shape[1]
        shifted = np.take_along_axis(history, columns, axis=1)
        return np.where(np.arange(history.shape[1])[None, :] >= shift, shifted, pad)

    items = np.concatenate([left_pad(history_items[keep], 0), item_id[keep, None]], axis=1)  # [m, L]
    ratings = np.concatenate([left_pad(history_ratings[keep], 0), np.full((len(keep), 1), RATING_VOCABULARY)], 1)
    times = np.concatenate([left_pad(history_times[keep], np.nan), timestamp[keep, None].astype(np.float64)], 1)
    gaps = np.diff(times, axis=1, prepend=np.nan) / SECONDS_PER_DAY  # [m, L]
    interval = np.log1p(np.clip(np.nan_to_num(gaps, nan=0.0), 0.0, None)).astype(np.float32)[..., None]
    users = user_id[keep]
    labels = {
        "like": (rating[keep] >= 4).astype(np.float32),
        "female": user_female[users].astype(np.float32),
        "over_34": user_over_34[users].astype(np.float32),
    }
    masks = {task: np.asarray(m)[users].astype(np.float32) for task, m in (attribute_masks or {}).items()}
    title_dim = item_titles.shape[1]
    features = {
        "item": items.astype(np.int64),
        "genres": item_genres[items].astype(np.int64),  # [m, L, G]; padding item 0 has no genres
        "rating": ratings.astype(np.int64),
        "title": item_titles[items].astype(np.float32),  # [m, L, P]
        "interval": interval,
        "user_id": users.astype(np.int64),
        "timestamp": timestamp[keep].astype(np.int64),
        # The raw form of the steps, as a client sends them to the export: seconds, 0 = padding.
        "step_timestamp": np.nan_to_num(times, nan=0.0).astype(np.int64),  # [m, L]
    }
    num_items, num_genres = item_genres.shape[0] - 1, int(item_genres.max(initial=0))
    # Flat view for the tabular baselines (MMoE, PLE): every channel in a form the tabular
    # `FeatureEncoder` takes (bags of ids, pooled dense vectors), sequences left-aligned
    # (oldest first, then the sequence feature's padding: -1, NaN).
    window, window_genres = items[:, :-1], features["genres"][:, :-1]  # the history steps
    real = window > 0
    liked = real & (ratings[:, :-1] >= LIKED_RATING)
    real_steps = np.maximum(real.sum(axis=1, keepdims=True), 1)
    features.update(
        {
            "history": _left_aligned(window, real, -1),
            "history_rating": _left_aligned(ratings[:, :-1].astype(np.float32), real, np.nan),
            "liked_history": _left_aligned(window, liked, -1),
            "history_genres": _left_aligned(
                window_genres.reshape(len(keep), -1), window_genres.reshape(len(keep), -1) > 0, -1
            ),
            "history_title": ((features["title"][:, :-1] * real[..., None]).sum(axis=1) / real_steps).astype(
                np.float32
            ),
            "history_interval": (interval[:, :-1, 0].sum(axis=1) / real_steps[:, 0]).astype(np.float32),
            "item_id": item_id[keep].astype(np.int64),
            "item_genres": _left_aligned(features["genres"][:, -1], features["genres"][:, -1] > 0, -1),
            "title_embedding": item_titles[item_id[keep]].astype(np.float32),
            "target_interval": interval[:, -1, 0],
        }
    )
    history_ids = IdFeature("history", num_ids=num_items + 1)
    genre_ids = IdFeature("genres", num_ids=num_genres + 1)
    spec = DatasetSpec(
        features=(
            SequenceFeature("history", history_ids, max_length=length - 1),
            SequenceFeature("history_rating", NumericFeature("history_rating"), max_length=length - 1),
            SequenceFeature(
                "liked_history", dataclasses.replace(history_ids, name="liked_history"), max_length=length - 1
            ),
            SequenceFeature(
                "history_genres",
                dataclasses.replace(genre_ids, name="history_genres"),
                max_length=(length - 1) * item_genres.shape[1],
            ),
            EmbeddingFeature("history_title", dim=title_dim),
            NumericFeature("history_interval"),
            IdFeature("item_id", num_ids=num_items + 1),
            SequenceFeature(
                "item_genres", dataclasses.replace(genre_ids, name="item_genres"), max_length=item_genres.shape[1]
            ),
            EmbeddingFeature("title_embedding", dim=title_dim),
            NumericFeature("target_interval"),
        ),
        labels=BEHAVIOUR_TASKS,
    )
    data = TabularData(features=features, labels=labels, label_masks=masks, spec=spec, source=source)
    return data, ChannelSizes(num_items=num_items, num_genres=num_genres, title_dim=title_dim)


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
    """The SUPER-MoE input channels of `data`."""
    return {name: data.features[name] for name in CHANNELS}


def example_channels(sizes: ChannelSizes, *, num_rows: int = 2, length: int = 3) -> dict[str, np.ndarray]:
    """`num_rows` valid sequences in the layout of `channel_columns` (row i: `length - i`
    steps, then padding; the target step's rating unknown): builds a model for these
    channel sizes without reading a dataset."""
    steps = np.arange(length)[np.newaxis, :] >= np.arange(num_rows)[:, np.newaxis] % length  # [rows, L], left-padded
    position = np.broadcast_to(np.arange(length), steps.shape)  # [rows, L]
    rating = np.where(steps, 1 + position % (RATING_VOCABULARY - 1), 0)
    rating[:, -1] = RATING_VOCABULARY  # the [MASK] id
    return {
        "item": np.where(steps, 1 + position % max(1, sizes.num_items), 0).astype(np.int64),
        "genres": np.where(steps, 1 + position % max(1, sizes.num_genres), 0).astype(np.int64)[..., np.newaxis],
        "rating": rating.astype(np.int64),
        "title": np.repeat(np.where(steps, 0.1, 0.0)[..., np.newaxis], sizes.title_dim, axis=2).astype(np.float32),
        "interval": np.where(steps, 0.5, 0.0).astype(np.float32)[..., np.newaxis],
    }


@dataclasses.dataclass(frozen=True)
class ItemTables:
    """What a behaviour step's item id stands for: the `genres` [num_items + 1, G] and
    `title` [num_items + 1, P] channels of each item id (row 0, no item: empty)."""

    genres: np.ndarray
    title: np.ndarray

    @classmethod
    def of(cls, *datas: TabularData) -> ItemTables:
        """The item tables of behaviour-sequence rows: every item seen at some step of
        `datas` (an item never seen keeps no genres and a zero title)."""
        sizes = channel_sizes(datas[0])
        genres = np.zeros((sizes.num_items + 1, datas[0].features["genres"].shape[-1]), np.int64)
        title = np.zeros((sizes.num_items + 1, sizes.title_dim), np.float32)
        for data in datas:
            items = data.features["item"].ravel()  # [n L]
            genres[items] = data.features["genres"].reshape(len(items), -1)
            title[items] = data.features["title"].reshape(len(items), -1)
        genres[0], title[0] = 0, 0.0
        return cls(genres=genres, title=title)

    def save(self, path) -> None:
        np.savez_compressed(path, genres=self.genres, title=self.title)

    @classmethod
    def load(cls, path) -> ItemTables:
        try:
            with np.load(path, allow_pickle=False) as stored:
                return cls(genres=stored["genres"], title=stored["title"])
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
    """The `ChannelSizes` of behaviour-sequence rows, from their spec and columns."""
    return ChannelSizes(
        num_items=data.spec.feature("item_id").num_ids - 1,
        num_genres=int(data.features["genres"].max(initial=0)),
        title_dim=int(data.features["title"].shape[-1]),
    )


def bag_features(data: TabularData, sizes: ChannelSizes) -> sparse.csr_matrix:
    """Sparse [rows, 3 (I + 1) + 2 (G + 1)] features of the strong simple baseline
    (logistic regression, `tfzoo.evaluation.logistic`), blocks in this order:

    - the bag of the window's items (the history steps, target excluded; one column per item id);
    - the bag of its liked items (history steps rated >= 4);
    - the target item (one-hot);
    - genre counts over the window's items;
    - the target item's genres.

    `sizes` fixes the columns (take the training split's, so that every split agrees).
    """
    items = data.features["item"]  # [rows, L]
    genres = data.features["genres"]  # [rows, L, K]
    ratings = data.features["rating"]  # [rows, L]
    rows = len(items)
    width_items, width_genres = sizes.num_items + 1, sizes.num_genres + 1
    if items.size and (items.max() >= width_items or genres.max(initial=0) >= width_genres):
        raise ValueError(f"Item or genre ids beyond the sizes given ({sizes}): pass the training split's sizes.")
    history, history_genres = items[:, :-1], genres[:, :-1]
    liked = (history > 0) & (ratings[:, :-1] >= LIKED_RATING) & (ratings[:, :-1] < RATING_VOCABULARY)
    blocks = [
        (history > 0, history, 0),
        (liked, history, width_items),
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
