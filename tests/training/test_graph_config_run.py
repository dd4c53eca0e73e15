"""`tfzoo train ssmtl --data-config` on a friend graph written as a user's files: the run
trains on the graph and split the named dataset has, and the export speaks the files'
user ids."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from tfzoo import cli
from tfzoo.data import load_dataset, make_friend_graph
from tfzoo.evaluation import top_k_excluding
from tfzoo.export.retrieval import export_friend_retrieval
from tfzoo.training import load_run, task_for

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
    metrics = _train(tmp_path, "files", ["--data-config", str(tmp_path / "friends.yaml")])
    return tmp_path, metrics, load_run(tmp_path / "files")


def test_the_files_train_on_the_graph_and_split_of_the_named_dataset(runs):
    tmp_path, metrics, run = runs
    named = load_dataset("friend_graph", options={"num_users": NUM_USERS})
    data = run.prepared.data
    assert metrics["split"] == "friends: " + named.split
    for part in ("validation", "test"):
        np.testing.assert_array_equal(getattr(data, part), getattr(named, part))
    for graph in ("graph", "train"):
        for field in ("edges", "feature_splits", "feature_indices"):
            np.testing.assert_array_equal(getattr(getattr(data, graph), field), getattr(getattr(named, graph), field))
    stored = json.loads((tmp_path / "files" / "config.json").read_text())["run"]
    assert stored["data_config"]["kind"] == "friend_graph" and stored["dataset"] == "friends"
    # The heuristics beside the model are those of the named graph.
    assert (
        metrics["baselines"]["test"]["adamic_adar"]["all"]["recall@50"]
        > metrics["baselines"]["test"]["popularity"]["all"]["recall@50"]
    )


def test_the_export_takes_and_returns_the_files_user_ids(runs, tmp_path):
    run = runs[2]
    task = task_for("ssmtl")
    graph = task.run_graph(run.config, run.directory)
    assert graph.serving_ids().tolist() == USER_IDS.tolist()
    queries, candidates = task.user_vectors(run.prepared)
    path = export_friend_retrieval(
        run.model, graph, tmp_path, "friends", index="brute_force", k=10, vectors=(queries, candidates)
    )
    rows = np.array([3, 0, NUM_USERS - 1])
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    served = serve(user_ids=tf.constant(USER_IDS[rows]))
    expected = top_k_excluding(queries, rows, [graph.edges], 10, candidate_embeddings=candidates)
    np.testing.assert_array_equal(served["friend_ids"], np.where(expected >= 0, USER_IDS[expected], -1))
    # An id no file has is refused, naming what was received.
    with pytest.raises(tf.errors.InvalidArgumentError, match="user_ids must name indexed users"):
        serve(user_ids=tf.constant([USER_IDS[0], 5], tf.int64))
