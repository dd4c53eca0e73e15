import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_gnn as tfgnn

from tfzoo.evaluation import ranked_candidates, top_k_excluding
from tfzoo.evaluation.fusion import FusedScores
from tfzoo.evaluation.heuristics import HeuristicScores
from tfzoo.export import call_in_fresh_process
from tfzoo.export.ann import scann_op_library_path
from tfzoo.export.retrieval import Fusion, export_friend_retrieval
from tfzoo.graph import subgraph_spec
from tfzoo.models.ssmtl import SSMTLRetrieval

K = 5


@pytest.fixture(scope="module")
def exported(small_friend_graph, small_sampler, tmp_path_factory):
    graph = small_friend_graph.train  # the graph `small_sampler` samples from
    tf.keras.utils.set_random_seed(0)
    # Id embeddings and a candidate bias: the index serves query . candidate, not a plain
    # dot product of one embedding with itself.
    model = SSMTLRetrieval(
        feature_dim=60,
        hidden_dim=8,
        embedding_dim=8,
        num_layers=2,
        num_heads=2,
        id_buckets=graph.num_users,
        candidate_bias=True,
        readout="concat",
    )
    sampler = small_sampler
    model.candidate_embeddings(sampler(tf.constant([0], tf.int64)))  # builds the encoder and the bias
    model.bias_embedding.embeddings.assign(
        np.random.default_rng(0).normal(size=(graph.num_users, 1)).astype(np.float32)
    )
    vectors = model.user_vectors(sampler)
    base = tmp_path_factory.mktemp("savedmodels")
    scann = export_friend_retrieval(model, graph, base, "ssmtl_retrieval", k=K, fanouts=(4, 3), vectors=vectors)
    brute = export_friend_retrieval(
        model,
        graph,
        base,
        "ssmtl_retrieval_brute_force",
        version=int(scann.name),
        index="brute_force",
        k=K,
        fanouts=(4, 3),
        vectors=vectors,
    )
    return model, sampler, graph, vectors, scann, brute


def test_layout_is_tf_serving(exported):
    *_, scann, brute = exported
    assert scann.name == "1" and scann.parent.name == "ssmtl_retrieval"
    assert (scann / "saved_model.pb").is_file() and (scann / "assets" / "subgraph_schema.pbtxt").is_file()
    assert brute.parent.name == "ssmtl_retrieval_brute_force"


def test_vectors_are_the_embeddings_with_the_bias_dimension(exported):
    model, sampler, graph, (queries, candidates), *_ = exported
    bias = model.bias_embedding.embeddings.numpy()  # [users, 1]
    assert queries.shape == candidates.shape == (graph.num_users, 9)
    np.testing.assert_array_equal(queries[:, -1], 1.0)
    np.testing.assert_array_equal(candidates[:, -1], bias[:, 0])
    subgraphs = sampler(tf.constant([5, 77, 3], tf.int64))  # one draw for both sides
    embeddings = model(subgraphs).numpy()
    np.testing.assert_allclose(model.query_embeddings(subgraphs), np.c_[embeddings, np.ones(3)], atol=1e-6)
    np.testing.assert_allclose(model.candidate_embeddings(subgraphs), np.c_[embeddings, bias[[5, 77, 3]]], atol=1e-6)


def test_brute_force_serving_is_exact_and_excludes_known_friends(exported):
    _, _, graph, (queries, candidates), _, brute = exported
    users = np.array([0, 7, 123, 299])
    out = call_in_fresh_process(brute, {"user_ids": users})  # TensorFlow only
    expected = top_k_excluding(queries, users, [graph.edges], K, candidate_embeddings=candidates)
    np.testing.assert_array_equal(out["friend_ids"], expected)
    np.testing.assert_allclose(
        out["scores"], np.take_along_axis(queries[users] @ candidates.T, expected, 1), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("ids", ["integers", "text"])
def test_a_graph_with_its_own_user_ids_is_served_in_them(exported, tmp_path, ids):
    # A graph read from a user's files (`tfzoo.data.graph_config`) keeps their ids: the
    # export takes and returns them, int64 where every id is an integer, else text.
    model, _, graph, (queries, candidates), *_ = exported
    numbers = 10_000 + 7 * np.random.default_rng(0).permutation(graph.num_users)
    own = numbers if ids == "integers" else np.char.add("user-", numbers.astype(str))
    path = export_friend_retrieval(
        model,
        dataclasses.replace(graph, node_ids=own.astype(str)),
        tmp_path,
        "own_ids",
        index="brute_force",
        k=K,
        fanouts=(4, 3),
        vectors=(queries, candidates),
    )
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    rows = np.array([3, 0, graph.num_users - 1])
    served = serve(user_ids=tf.constant(own[rows]))["friend_ids"].numpy()
    expected = top_k_excluding(queries, rows, [graph.edges], K, candidate_embeddings=candidates)
    served = served.astype(str) if ids == "text" else served
    assert served.tolist() == own[expected].tolist()
    # An id no user has is refused, naming what was received, before any row is looked up.
    unknown = tf.constant(np.array([own[0], 5 if ids == "integers" else "user-5"], own.dtype))
    with pytest.raises(tf.errors.InvalidArgumentError, match="user_ids must name indexed users"):
        serve(user_ids=unknown)


def test_scann_serving_loads_with_the_op_library_and_excludes_known_friends(exported):
    _, _, graph, (queries, candidates), scann, _ = exported
    users = np.arange(0, 300, 10)
    out = call_in_fresh_process(scann, {"user_ids": users}, op_libraries=[scann_op_library_path()])
    exact = top_k_excluding(queries, users, [graph.edges], K, candidate_embeddings=candidates)
    friends = {
        u: set(graph.edges[graph.edges[:, 0] == u, 1]) | set(graph.edges[graph.edges[:, 1] == u, 0]) for u in users
    }
    for user, row in zip(users, out["friend_ids"]):
        assert user not in row and not friends[user] & set(row.tolist())
    overlap = np.mean([len(set(a) & set(b)) / K for a, b in zip(out["friend_ids"], exact)])
    assert overlap >= 0.8


def test_embed_signature_embeds_a_serialized_subgraph(exported):
    model, sampler, *_, brute = exported
    serialized = sampler.serialized_subgraphs([4, 250])
    out = call_in_fresh_process(brute, {"subgraphs": np.array(serialized, dtype=object)}, signature="embed")
    # The same subgraphs, parsed and embedded in this process by the trained model.
    graph = tfgnn.parse_example(subgraph_spec(), tf.constant(serialized)).merge_batch_to_components()
    np.testing.assert_allclose(out["embedding"], model.query_embeddings(graph).numpy(), rtol=1e-4, atol=1e-5)
    assert out["embedding"].shape == (2, model.index_dim)


FUSIONS = {
    # The heuristic through the two-hop rescoring, popularity through the index's vectors.
    "heuristic_and_popularity": Fusion(heuristic="adamic_adar", weight=2.0, popularity_weight=0.5),
    # Popularity alone: the index serves it, no rescoring.
    "popularity": Fusion(heuristic="adamic_adar", weight=0.0, popularity_weight=1.0),
}


@pytest.fixture(scope="module", params=sorted(FUSIONS))
def fused_export(request, exported, tmp_path_factory):
    # Brute force only: the fused rescoring is the same code behind either index (the
    # unfused tests above cover ScaNN's part), and every export costs CI seconds.
    model, _, graph, vectors, *_ = exported
    fusion = FUSIONS[request.param]
    path = export_friend_retrieval(
        model,
        graph,
        tmp_path_factory.mktemp("fused"),
        "fused_brute_force",
        index="brute_force",
        k=K,
        fanouts=(4, 3),
        vectors=vectors,
        fusion=fusion,
    )
    return fusion, path


def _offline_fused(graph, queries, candidates, users, fusion):
    """The fused ranking as `tfzoo.evaluation.fusion` scores it offline, over the export's graph."""
    scores = FusedScores(
        queries,
        candidates,
        HeuristicScores(fusion.heuristic, graph.edges, graph.num_users),
        fusion.weight,
        fusion.popularity_weight,
    )
    top = ranked_candidates(scores, graph.num_users, users, [graph.edges], K)
    return top, np.take_along_axis(scores(users), top, axis=1)


def test_fused_brute_force_serving_is_the_offline_fused_ranking(exported, fused_export):
    model, sampler, graph, (queries, candidates), *_ = exported
    fusion, brute = fused_export
    users = np.array([0, 7, 123, 299, 42])
    out = call_in_fresh_process(brute, {"user_ids": users})
    expected, expected_scores = _offline_fused(graph, queries, candidates, users, fusion)
    np.testing.assert_array_equal(out["friend_ids"], expected)
    np.testing.assert_allclose(out["scores"], expected_scores, rtol=1e-4, atol=1e-4)
    # The fusion changed the ranking: the fused export is not the model alone.
    alone = top_k_excluding(queries, users, [graph.edges], K, candidate_embeddings=candidates)
    assert (alone != expected).any()
    metadata = json.loads((brute / "assets.extra" / "ann_index.json").read_text())
    assert metadata["fusion"] == dataclasses.asdict(fusion)
    # `embed` gives queries of the index's width: the popularity dimension's 1 included.
    serialized = sampler.serialized_subgraphs([4])
    embedded = call_in_fresh_process(brute, {"subgraphs": np.array(serialized, dtype=object)}, signature="embed")[
        "embedding"
    ]
    assert embedded.shape == (1, model.index_dim + 1)
    np.testing.assert_array_equal(embedded[:, -2:], 1.0)  # the bias's and the popularity's


def test_fusion_is_validated():
    with pytest.raises(ValueError, match="fusion='popularity'"):
        Fusion(heuristic="popularity", weight=1.0)
    with pytest.raises(ValueError, match="weight=0, popularity_weight=0"):
        Fusion(heuristic="adamic_adar", weight=0)
    with pytest.raises(ValueError, match="popularity_weight=-1"):
        Fusion(heuristic="adamic_adar", weight=1.0, popularity_weight=-1)
    assert Fusion.chosen({"heuristic": "adamic_adar", "weight": 2.0}) == Fusion("adamic_adar", 2.0)  # older runs
    assert Fusion.chosen({"heuristic": "adamic_adar", "weight": 0.0, "popularity_weight": 0.0}) is None
