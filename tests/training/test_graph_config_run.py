"""`tfzoo train ssmtl --data-config` on a friend graph written as a user's files: the run
trains on the graph and split the named dataset has, and keeps the files' user ids for
its export (which serves in them: tests/export/test_retrieval.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tfzoo import cli
from tfzoo.data import load_dataset, make_friend_graph
from tfzoo.training import RunConfig, task_for

pytestmark = pytest.mark.timeout(600)

NUM_USERS = 200
TINY = ["hidden_dim=8", "embedding_dim=8", "num_heads=2", "fanouts=[3,2]", "fusion=none"]
# The files' user ids: neither the row numbers nor in their order.
USER_IDS = 10_000 + 7 * np.random.default_rng(0).permutation(NUM_USERS)


def _train(tmp_path, name, source):
    arguments = ["train", "ssmtl", *source, "--epochs", "1", "--seed", "1", "--out", str(tmp_path / name)]
    for option in TINY:
        arguments += ["--option", option]
    assert cli.main(arguments) == 0
    return json.loads((tmp_path / name / "metrics.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("graph_config")
    graph = make_friend_graph(NUM_USERS, seed=0)  # the `friend_graph` dataset's graph
    features = ["|".join(map(str, graph.user_features(u))) for u in range(NUM_USERS)]
    (tmp_path / "users.csv").write_text("user,features\n" + "".join(f"{i},{f}\n" for i, f in zip(USER_IDS, features)))
    # One direction, the other or both: a friendship is one.
    edges = graph.edges.copy()
    edges[::2] = edges[::2, ::-1]
    (tmp_path / "friends.csv").write_text(
        "a,b\n" + "".join(f"{USER_IDS[u]},{USER_IDS[v]}\n" for u, v in [*edges, *graph.edges[:10]])
    )
    (tmp_path / "friends.yaml").write_text(
        "kind: friend_graph\n"
        "nodes: {files: users.csv, id: user, features: [{name: features, kind: indices, dim: "
        f"{graph.features.dim}}}]}}\n"
        "edges: {files: friends.csv, columns: [a, b]}\n"
    )
    return tmp_path, _train(tmp_path, "files", ["--data-config", str(tmp_path / "friends.yaml")])


def test_the_files_train_on_the_graph_and_split_of_the_named_dataset(runs):
    tmp_path, metrics = runs
    named = load_dataset("friend_graph", options={"num_users": NUM_USERS})
    stored = json.loads((tmp_path / "files" / "config.json").read_text())["run"]
    assert stored["data_config"]["kind"] == "friend_graph" and stored["dataset"] == "friends"
    data = task_for("ssmtl").load_data(RunConfig(**stored))  # the split the run trained on
    assert metrics["split"] == "friends: " + named.split
    for part in ("validation", "test"):
        np.testing.assert_array_equal(getattr(data, part), getattr(named, part))
    for graph in ("graph", "train"):
        for field in ("edges", "feature_splits", "feature_indices"):
            np.testing.assert_array_equal(getattr(getattr(data, graph), field), getattr(getattr(named, graph), field))
    # The graph saved with the run, for its export, keeps the files' ids.
    saved = task_for("ssmtl").run_graph(None, tmp_path / "files")
    assert saved.serving_ids().tolist() == USER_IDS.tolist()
    np.testing.assert_array_equal(saved.edges, named.graph.edges)
