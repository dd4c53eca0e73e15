"""Generated friend graphs with community structure and community-dependent features.

A degree-corrected stochastic block model: every user belongs to one community and has
an activity weight drawn from a heavy-tailed (Pareto) law, so that, like real social
graphs, most users have few friends and a few have many. A friendship picks its first
user in proportion to activity, and its second user in proportion to activity inside the
same community with probability `within_community`, else among everybody. Features are
multi-hot: each community favours its own block of feature indices, and every user draws
part of its features from its community's block and the rest at random, so features
carry community (hence friendship) information without giving it away.

The graphs are tfzoo's own: tests and `make demo` use them where the real Twitch graphs
(GPL, not redistributable) are not available.
"""

from __future__ import annotations

import numpy as np

from tfzoo.data.friend_graph import FriendGraph, MultiHotFeatures


def make_friend_graph(
    num_users: int = 2000,
    *,
    num_communities: int = 20,
    mean_degree: float = 10.0,
    within_community: float = 0.8,
    activity_exponent: float = 2.5,
    feature_dim: int = 512,
    features_per_user: int = 12,
    community_feature_share: float = 0.6,
    seed: int = 0,
) -> FriendGraph:
    """A seeded random friend graph (see the module docstring).

    Args:
      num_users: number of users.
      num_communities: number of communities (blocks); users are spread evenly.
      mean_degree: target mean number of friends (before removing duplicate pairs).
      within_community: share of friendships drawn inside a community.
      activity_exponent: Pareto exponent of the users' activity (smaller: heavier tail).
      feature_dim: multi-hot width; each community owns `feature_dim // num_communities`
        indices.
      features_per_user: active features per user (before deduplication).
      community_feature_share: share of a user's features drawn from its community's block.
      seed: the same seed gives the same graph.
    """
    if num_users < 2 or num_communities < 1 or num_communities > num_users:
        raise ValueError(
            f"Need num_users >= 2 and 1 <= num_communities <= num_users. "
            f"Received: num_users={num_users}, num_communities={num_communities}"
        )
    if not 0.0 <= within_community <= 1.0 or not 0.0 <= community_feature_share <= 1.0:
        raise ValueError(
            "`within_community` and `community_feature_share` must lie in [0, 1]. Received: "
            f"within_community={within_community}, community_feature_share={community_feature_share}"
        )
    block = feature_dim // num_communities
    if block < 1:
        raise ValueError(f"`feature_dim` must be >= num_communities. Received: feature_dim={feature_dim}")
    rng = np.random.default_rng(seed)
    community = rng.permutation(np.arange(num_users) % num_communities)
    activity = rng.pareto(activity_exponent, num_users) + 1.0

    num_draws = int(round(mean_degree * num_users / 2))
    first = rng.choice(num_users, num_draws, p=activity / activity.sum())
    second = rng.choice(num_users, num_draws, p=activity / activity.sum())
    inside = rng.random(num_draws) < within_community
    members = [np.flatnonzero(community == c) for c in range(num_communities)]
    for c, users in enumerate(members):
        rows = np.flatnonzero(inside & (community[first] == c))
        weights = activity[users] / activity[users].sum()
        second[rows] = users[rng.choice(len(users), len(rows), p=weights)]
    keep = first != second
    edges = np.stack([first[keep], second[keep]], axis=1)

    from_community = rng.random((num_users, features_per_user)) < community_feature_share
    own_block = community[:, None] * block + rng.integers(0, block, (num_users, features_per_user))
    anywhere = rng.integers(0, feature_dim, (num_users, features_per_user))
    chosen = np.where(from_community, own_block, anywhere)
    per_user = [np.unique(row) for row in chosen]
    splits = np.zeros(num_users + 1, np.int64)
    np.cumsum([len(f) for f in per_user], out=splits[1:])
    return FriendGraph(
        num_users=num_users,
        edges=edges,
        feature_splits=splits,
        feature_indices=np.concatenate(per_user).astype(np.int32),
        features=MultiHotFeatures(
            dim=feature_dim,
            description=f"generated: {features_per_user} indices per user, {community_feature_share:g} of them from "
            f"the user's community block of {block}",
        ),
        node_targets={"community": community.astype(np.float64), "activity": activity},
        source=f"make_friend_graph(num_users={num_users}, seed={seed})",
    )
