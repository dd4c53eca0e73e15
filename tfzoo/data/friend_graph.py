"""Friend graphs in memory: users with multi-hot features, undirected friendships, and a
deterministic per-user split of the friendships into train / validation / test.

A `FriendGraph` is plain NumPy: the readers (`read_twitch`) and the generator
(`make_friend_graph`) return one, and `tfzoo.graph` turns it into a `tfgnn.GraphTensor`
and samples subgraphs from it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from tfzoo.data.ids import client_ids


@dataclasses.dataclass(frozen=True)
class MultiHotFeatures:
    """What a user's node features are: a set of active indices out of `dim` binary ones.

    Attributes:
      dim: number of binary features (the multi-hot width).
      description: what the indices stand for, for people.
    """

    dim: int
    description: str = ""

    def __post_init__(self):
        if self.dim < 1:
            raise ValueError(f"`dim` must be >= 1. Received: dim={self.dim}")


@dataclasses.dataclass
class FriendGraph:
    """Users, their multi-hot features and their (undirected) friendships.

    Attributes:
      num_users: users are `0 .. num_users - 1`.
      edges: [num_friendships, 2] int64, each friendship once, as `(u, v)` with `u < v`.
      feature_splits: [num_users + 1] int64 row splits into `feature_indices` (CSR).
      feature_indices: [nnz] int32, the active features of each user, sorted and unique.
      features: what the indices mean (`MultiHotFeatures`).
      node_targets: per-user attributes that are not model inputs (e.g. Twitch's `views`),
        float64 [num_users] each, NaN where unknown.
      source: where the graph came from, for messages.
      skipped_rows: rows dropped by a reader's `on_bad_row="skip"`.
      node_ids: [num_users] the users' ids as their files give them (text), where they
        are not simply 0 .. num_users - 1 (`tfzoo.data.graph_config`); None otherwise.
    """

    num_users: int
    edges: np.ndarray
    feature_splits: np.ndarray
    feature_indices: np.ndarray
    features: MultiHotFeatures
    node_targets: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    source: str = ""
    skipped_rows: int = 0
    node_ids: np.ndarray | None = None

    def __post_init__(self):
        self.edges = canonical_edges(self.edges, self.num_users)
        if self.node_ids is not None:
            self.node_ids = np.asarray(self.node_ids, str)
            if self.node_ids.shape != (self.num_users,):
                raise ValueError(
                    f"`node_ids` must hold one id per user ({self.num_users}). Received: shape={self.node_ids.shape}"
                )
        self.feature_splits = np.asarray(self.feature_splits, np.int64)
        self.feature_indices = np.asarray(self.feature_indices, np.int32)
        if self.feature_splits.shape != (self.num_users + 1,) or self.feature_splits[-1] != len(self.feature_indices):
            raise ValueError(
                f"`feature_splits` must have num_users + 1 = {self.num_users + 1} entries ending at "
                f"len(feature_indices) = {len(self.feature_indices)}. Received: shape={self.feature_splits.shape}"
            )
        if (
            len(self.feature_indices)
            and not 0 <= self.feature_indices.min() <= self.feature_indices.max() < self.features.dim
        ):
            raise ValueError(f"feature indices must lie in [0, {self.features.dim}) in {self.source or 'graph'}.")

    @property
    def num_friendships(self) -> int:
        return len(self.edges)

    def degrees(self) -> np.ndarray:
        """[num_users] number of friends of each user."""
        return degrees(self.edges, self.num_users)

    def serving_ids(self) -> np.ndarray | None:
        """The users' ids as a client names them: int64 where every id is an integer, else
        text; None where they are the row indices 0 .. num_users - 1 themselves."""
        if self.node_ids is None:
            return None
        named = client_ids(self.node_ids)
        if named.dtype == np.int64 and np.array_equal(named, np.arange(self.num_users)):
            return None
        return named

    def user_features(self, user: int) -> np.ndarray:
        return self.feature_indices[self.feature_splits[user] : self.feature_splits[user + 1]]

    def multi_hot(self, users: np.ndarray) -> np.ndarray:
        """[len(users), features.dim] float32 0/1 rows of `users`."""
        users = np.asarray(users)
        rows = np.zeros((len(users), self.features.dim), np.float32)
        for row, user in enumerate(users):
            rows[row, self.user_features(user)] = 1.0
        return rows

    def save(self, path: str | Path) -> None:
        """Writes the graph (users, friendships, features, node targets) to one `.npz` file."""
        targets = {f"target_{name}": np.asarray(values) for name, values in self.node_targets.items()}
        np.savez_compressed(
            path,
            num_users=self.num_users,
            edges=self.edges,
            feature_splits=self.feature_splits,
            feature_indices=self.feature_indices,
            feature_dim=self.features.dim,
            feature_description=self.features.description,
            source=self.source,
            **({} if self.node_ids is None else {"node_ids": self.node_ids}),
            **targets,
        )

    @classmethod
    def load(cls, path: str | Path) -> FriendGraph:
        """The graph `save` wrote to `path`."""
        try:
            stored = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise FileNotFoundError(f"{path} not found: no friend graph was saved there.") from None
        with stored:
            return cls(
                num_users=int(stored["num_users"]),
                edges=stored["edges"],
                feature_splits=stored["feature_splits"],
                feature_indices=stored["feature_indices"],
                features=MultiHotFeatures(int(stored["feature_dim"]), str(stored["feature_description"])),
                node_targets={k[len("target_") :]: stored[k] for k in stored.files if k.startswith("target_")},
                source=str(stored["source"]),
                node_ids=stored["node_ids"] if "node_ids" in stored.files else None,
            )

    def with_edges(self, edges: np.ndarray) -> FriendGraph:
        """The same users and features with other friendships (e.g. the training ones)."""
        return dataclasses.replace(self, edges=edges)


def canonical_edges(edges: np.ndarray, num_users: int) -> np.ndarray:
    """[E, 2] int64 with `u < v` per row, sorted, duplicates (in either direction) removed."""
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    if len(edges) and (edges.min() < 0 or edges.max() >= num_users):
        raise ValueError(f"edge endpoints must lie in [0, {num_users}). Received: min={edges.min()}, max={edges.max()}")
    if np.any(edges[:, 0] == edges[:, 1]):
        raise ValueError("a friendship joins two different users; found a self-loop.")
    edges = np.sort(edges, axis=1)
    return np.unique(edges, axis=0) if len(edges) else edges


def degrees(edges: np.ndarray, num_users: int) -> np.ndarray:
    return np.bincount(np.asarray(edges).ravel(), minlength=num_users).astype(np.int64)


def neighbours(edges: np.ndarray, num_users: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR adjacency of undirected `edges`: (row_splits [num_users + 1], neighbour ids sorted per user)."""
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    source = np.concatenate([edges[:, 0], edges[:, 1]])
    target = np.concatenate([edges[:, 1], edges[:, 0]])
    order = np.lexsort((target, source))
    splits = np.zeros(num_users + 1, np.int64)
    np.cumsum(np.bincount(source, minlength=num_users), out=splits[1:])
    return splits, target[order]


@dataclasses.dataclass
class FriendshipSplits:
    """A friend graph with its friendships split for link-prediction training and evaluation.

    Attributes:
      graph: every user and every friendship.
      train: the training graph (same users, training friendships only): what the model
        trains on and samples subgraphs from, also when it is evaluated.
      validation, test: [n, 2] held-out friendships (`u < v`), absent from `train`.
      split: how the friendships were split, reported with every result.
      cold_start_users: users left with exactly one training friendship on purpose (see
        `split_friendships(cold_start_share=...)`), reported as their own slice.
    """

    graph: FriendGraph
    train: FriendGraph
    validation: np.ndarray
    test: np.ndarray
    split: str
    cold_start_users: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))

    def held_out(self, split: str) -> np.ndarray:
        if split == "train":
            return self.train.edges
        if split in ("validation", "test"):
            return getattr(self, split)
        raise ValueError(f"`split` must be 'train', 'validation' or 'test'. Received: split={split!r}")


def split_friendships(
    graph: FriendGraph,
    *,
    validation_share: float = 0.1,
    test_share: float = 0.1,
    seed: int = 0,
    cold_start_share: float = 0.0,
) -> FriendshipSplits:
    """Holds out a share of every user's friendships for validation and test.

    Each user may lose `validation_share + test_share` of its friendships, rounded at
    random (so a user with 3 friends and a 0.2 share loses one with probability 0.6), and
    always keeps at least one training friend. Friendships are visited in a seeded random
    order; one is held out when both of its users still have some of their share left and
    would keep a training friend. Held-out friendships go to validation or test at random
    in proportion to the two shares. The same graph and seed always give the same split.

    With `cold_start_share`, a seeded share of the users with at least two friendships
    become true cold-start users: each keeps exactly one training friendship (drawn at
    random among those whose other user keeps another one) and every other friendship
    it has goes to test, validation ones included. They are `cold_start_users`, reported
    apart from the low-degree quartile.
    """
    held_share = validation_share + test_share
    if validation_share < 0 or test_share <= 0 or held_share >= 1:
        raise ValueError(
            "`validation_share` must be >= 0, `test_share` > 0 and their sum < 1. "
            f"Received: validation_share={validation_share}, test_share={test_share}"
        )
    if not 0.0 <= cold_start_share < 1.0:
        raise ValueError(f"`cold_start_share` must be in [0, 1). Received: cold_start_share={cold_start_share}")
    rng = np.random.default_rng(seed)
    edges = graph.edges
    degree = graph.degrees()
    quota = np.floor(held_share * degree + rng.random(graph.num_users)).astype(np.int64)
    remaining = degree.copy()
    held = np.zeros(len(edges), bool)
    for index in rng.permutation(len(edges)):
        u, v = edges[index]
        if quota[u] > 0 and quota[v] > 0 and remaining[u] > 1 and remaining[v] > 1:
            held[index] = True
            quota[u] -= 1
            quota[v] -= 1
            remaining[u] -= 1
            remaining[v] -= 1
    to_test = np.zeros(len(edges), bool)  # where each held-out friendship goes
    to_test[held] = rng.random(int(held.sum())) < test_share / held_share
    cold = np.zeros(0, np.int64)
    if cold_start_share > 0:
        cold = _cold_start_users(edges, held, to_test, degree, cold_start_share, rng)
    validation, test = edges[held & ~to_test], edges[held & to_test]
    description = (
        f"per-user friendship split, seed {seed}: {int((~held).sum())} train / {len(validation)} validation / "
        f"{len(test)} test friendships of {graph.num_users} users (each user holds out about "
        f"{validation_share:g} + {test_share:g} of its friends and keeps at least one"
    )
    if len(cold):
        description += (
            f"; {len(cold)} cold-start users ({cold_start_share:g} of those with 2+ friends) keep exactly one"
        )
    return FriendshipSplits(graph, graph.with_edges(edges[~held]), validation, test, description + ")", cold)


def _cold_start_users(
    edges: np.ndarray, held: np.ndarray, to_test: np.ndarray, degree: np.ndarray, share: float, rng: np.random.Generator
) -> np.ndarray:
    """Picks the cold-start users and moves their friendships (all but one training one)
    to test, in place on `held` / `to_test`; returns the users, sorted."""
    num_users = len(degree)
    candidates = np.flatnonzero(degree >= 2)
    chosen = np.sort(rng.choice(candidates, size=int(round(share * len(candidates))), replace=False))
    is_cold = np.zeros(num_users, bool)
    is_cold[chosen] = True
    train_degree = np.bincount(edges[~held].ravel(), minlength=num_users)
    kept = []
    for user in chosen:
        own = np.flatnonzero((edges[:, 0] == user) | (edges[:, 1] == user))  # [friendships of user]
        others = edges[own].sum(axis=1) - user
        # Keep a training friendship whose other user is not cold and keeps another one
        # after this user's move (else the friendship to a cold user, or any).
        training = own[~held[own]]
        options = training[
            (train_degree[edges[training].sum(axis=1) - user] >= 2) & ~is_cold[edges[training].sum(axis=1) - user]
        ]
        if not len(options):
            options = training if len(training) else own
        keep = rng.choice(options)
        for index, other in zip(own, others):
            if index == keep:
                continue
            if not held[index]:
                if train_degree[other] <= 1:
                    continue  # the other user would lose its last training friendship
                train_degree[other] -= 1
                train_degree[user] -= 1
            held[index] = True
            to_test[index] = True
        if held[keep]:  # the kept friendship was held out: it becomes the one training friendship
            held[keep] = False
            train_degree[user] += 1
            train_degree[edges[keep].sum() - user] += 1
        kept.append(user)
    # A user whose friends had no other training friendship keeps more than one: not cold.
    return np.asarray([user for user in kept if train_degree[user] == 1], np.int64)


def friend_sets(edges: np.ndarray, num_users: int) -> list[np.ndarray]:
    """Per user, the sorted ids of its friends in `edges`."""
    splits, ids = neighbours(edges, num_users)
    return [ids[splits[u] : splits[u + 1]] for u in range(num_users)]
