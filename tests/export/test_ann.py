import dataclasses
import json
import logging

import numpy as np
import pytest
import tensorflow as tf
from scann.scann_ops.py import scann_ops

from tfzoo.export.ann import LARGE_INDEX, ScaNNIndex, ScannSettings, build_index, index_metadata, leaves_to_try
from tfzoo.export.retrieval import export_friend_retrieval
from tfzoo.models.ssmtl import SSMTLRetrieval


def test_large_indexes_scale_the_tuned_tree_with_sqrt_n():
    assert ScannSettings.for_size(1_000_000) == LARGE_INDEX
    # 4x the candidates: 2x the leaves, the same share of them searched.
    quadrupled = ScannSettings.for_size(4_000_000)
    assert quadrupled.num_leaves == 2 * LARGE_INDEX.num_leaves
    assert quadrupled.num_leaves_to_search == 2 * LARGE_INDEX.num_leaves_to_search
    assert quadrupled.num_reordering_candidates == LARGE_INDEX.num_reordering_candidates
    small = ScannSettings.for_size(10_000)
    assert (small.num_leaves, small.num_leaves_to_search) == (100, 50)


def test_settings_are_validated():
    with pytest.raises(ValueError, match="num_leaves_to_search=11"):
        ScannSettings(num_leaves=10, num_leaves_to_search=11)
    with pytest.raises(ValueError, match="dimensions_per_block=0"):
        ScannSettings(num_leaves=10, num_leaves_to_search=5, dimensions_per_block=0)
    with pytest.raises(ValueError, match="num_reordering_candidates=0"):
        ScannSettings(num_leaves=10, num_leaves_to_search=5, num_reordering_candidates=0)
    with pytest.raises(ValueError, match="kind='annoy'"):
        build_index("annoy", np.zeros((4, 2), np.float32))


def test_scann_index_finds_the_exact_top_k_and_returns_more_than_its_reordering_budget():
    rng = np.random.default_rng(0)
    # 20 well-separated clusters: a tree that searches half its leaves finds the exact answer.
    centres = rng.standard_normal((20, 16)).astype(np.float32) * 5
    candidates = (centres[rng.integers(0, 20, 2000)] + 0.1 * rng.standard_normal((2000, 16))).astype(np.float32)
    queries = candidates[:50] + 0.01
    ids = tf.constant(np.arange(2000, dtype=np.int64) + 10_000)
    exact = np.argsort(-(queries @ candidates.T), axis=1)[:, :10] + 10_000
    index = build_index(
        "scann",
        candidates,
        ids,
        k=10,
        settings=ScannSettings(num_leaves=20, num_leaves_to_search=10, num_reordering_candidates=100),
    )
    scores, found = index(tf.constant(queries))
    recall = np.mean([len(np.intersect1d(f, e)) / 10 for f, e in zip(found.numpy(), exact)])
    assert recall >= 0.95
    np.testing.assert_allclose(scores.numpy()[:, 0], np.max(queries @ candidates.T, axis=1), rtol=1e-5)
    # k above num_reordering_candidates (100) (top K + known friends at serving): still k answers.
    _, many = index(tf.constant(queries), k=150)
    assert many.shape == (50, 150) and len(np.unique(many.numpy()[0])) == 150


def test_neighbours_the_searched_leaves_do_not_hold_score_minus_infinity():
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((20, 8)).astype(np.float32) * 5
    candidates = (centres[rng.integers(0, 20, 400)] + 0.1 * rng.standard_normal((400, 8))).astype(np.float32)
    index = build_index(
        "scann",
        candidates,
        tf.constant(np.arange(400, dtype=np.int64)),
        k=10,
        settings=ScannSettings(num_leaves=20, num_leaves_to_search=1, num_reordering_candidates=None),
    )
    # One leaf of 20 holds ~20 points, not 400: ScaNN answers as many as the fullest
    # searched leaf of the batch holds and pads the other rows (NaN scores before).
    scores, _ = index(tf.constant(candidates[:5]), k=400)
    scores = scores.numpy()
    assert not np.isnan(scores).any()
    found = np.isfinite(scores)
    assert found[:, 0].all() and not found[:, -1].all()  # every row answers; some rows run out
    assert np.isneginf(scores[~found]).all()
    assert (np.diff(found.astype(int), axis=1) <= 0).all()  # answers first, then no answer


# --- target_recall -------------------------------------------------------------------

N, DIM, COMPONENTS = 20_000, 16, 40


def mixture_sampler(seed: int = 0):
    """Draws from one fixed 40-component Gaussian mixture in 16 dims (clustered, like
    learned embeddings); each call draws new vectors."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((COMPONENTS, DIM))
    spreads = rng.uniform(0.3, 0.8, COMPONENTS)

    def draw(n: int) -> np.ndarray:
        component = rng.integers(0, COMPONENTS, n)
        return (centres[component] + spreads[component, None] * rng.standard_normal((n, DIM))).astype(np.float32)

    return draw


@pytest.fixture(scope="module")
def tuned():
    draw = mixture_sampler()
    candidates, fresh = draw(N), draw(1000)
    ids = tf.constant(np.arange(N, dtype=np.int64) + 10_000)
    index = build_index("scann", candidates, ids, k=10, target_recall=0.9)
    return candidates, fresh, index


def exact_ids(candidates, queries, k=10):
    return np.argsort(-(queries @ candidates.T), axis=1)[:, :k]


def test_target_recall_keeps_the_fewest_leaves_that_reach_it(tuned):
    candidates, _, index = tuned
    tuning = index.tuning
    assert isinstance(index, ScaNNIndex)
    assert index.settings == ScannSettings.for_size(N)  # 141 leaves, 70 searched by default
    assert tuning.target_recall == 0.9 and tuning.k == 10 and tuning.sample_queries == 1000
    assert tuning.target_reached and tuning.measured_recall >= 0.9
    assert index.leaves_to_search == tuning.leaves_to_search == tuning.recall_by_leaves[-1][0]
    # The cheapest: every setting tried before the chosen one falls short, in increasing order.
    tried = [leaves for leaves, _ in tuning.recall_by_leaves]
    assert tried == leaves_to_try(141)[: len(tried)] and tried == sorted(tried)
    assert all(found < 0.9 for _, found in tuning.recall_by_leaves[:-1])
    # Clustered vectors: far fewer leaves than the size defaults' half.
    assert tuning.leaves_to_search <= 14


def test_measured_recall_holds_on_fresh_queries(tuned):
    candidates, fresh, index = tuned
    _, found = index(tf.constant(fresh))  # the layer's own call, at the chosen leaves
    exact = exact_ids(candidates, fresh) + 10_000
    fresh_recall = np.mean([len(np.intersect1d(f, e)) / 10 for f, e in zip(found.numpy(), exact)])
    assert abs(fresh_recall - index.tuning.measured_recall) <= 0.02


def test_higher_targets_never_choose_fewer_leaves(tuned):
    candidates, _, index = tuned
    targets = (0.5, 0.8, 0.9, 0.95, 0.99, 1.0)
    try:
        choices = [index.tune(candidates, target) for target in targets]
    finally:
        index.tune(candidates, 0.9)  # the fixture's state for the other tests
    leaves = [choice.leaves_to_search for choice in choices]
    assert leaves == sorted(leaves) and leaves[0] < leaves[-1]
    for choice in choices:
        assert choice.target_reached == (choice.measured_recall >= choice.target_recall)
        # Reached, or no setting reached it and every leaf is searched.
        assert choice.target_reached or choice.leaves_to_search == 141
    # Quantisation and a 200-candidate reordering keep recall short of 1 on 20k vectors.
    assert not choices[-1].target_reached and choices[-1].measured_recall > 0.99


def test_the_chosen_leaves_are_what_call_searches(tuned):
    candidates, fresh, index = tuned
    searcher = scann_ops.searcher_from_module(index._serialized_searcher)
    queries = tf.constant(fresh[:200])
    _, found = index(queries)
    at = {
        leaves: searcher.search_batched_parallel(
            queries, final_num_neighbors=10, pre_reorder_num_neighbors=200, leaves_to_search=leaves
        ).indices.numpy()
        + 10_000
        for leaves in (index.leaves_to_search, index.settings.num_leaves_to_search)
    }
    np.testing.assert_array_equal(found.numpy(), at[index.leaves_to_search])
    assert (at[index.leaves_to_search] != at[index.settings.num_leaves_to_search]).any()


@pytest.mark.parametrize("bad", [0, 0.0, -0.5, 1.01, 2, float("nan"), True, "0.9"])
def test_bad_target_recall_is_refused(bad):
    candidates = mixture_sampler()(200)
    for kind in ("scann", "brute_force"):
        with pytest.raises(ValueError, match="Received: target_recall="):
            build_index(kind, candidates, target_recall=bad)
    with pytest.raises(ValueError, match="Received: target_recall="):
        ScaNNIndex(ScannSettings(num_leaves=10, num_leaves_to_search=5), target_recall=bad)


def test_brute_force_ignores_a_valid_target_recall():
    candidates = mixture_sampler()(200)
    index = build_index("brute_force", candidates, target_recall=0.9)
    _, found = index(tf.constant(candidates[:5]), k=3)
    np.testing.assert_array_equal(found.numpy(), exact_ids(candidates, candidates[:5], k=3))
    assert index_metadata(index) == {"kind": "brute_force", "exact": True}


def test_tuning_measures_the_row_queries_without_their_own_rows():
    draw = mixture_sampler(1)
    candidates = draw(3000)
    # Queries that differ from their candidates: row i's query is far from candidate i.
    row_queries = draw(3000)
    index = build_index(
        "scann",
        candidates,
        k=10,
        target_recall=0.95,
        row_queries=row_queries,
        settings=ScannSettings(num_leaves=50, num_leaves_to_search=25),
    )
    tuning = index.tuning
    assert tuning.sample_queries == 300  # a tenth of a small index
    rows = np.sort(np.random.default_rng(tuning.seed).choice(3000, 300, replace=False))
    exact = np.argsort(-(row_queries[rows] @ candidates.T), axis=1)[:, :11]
    exact = np.array([[c for c in e if c != r][:10] for e, r in zip(exact, rows)])
    _, found = index(tf.constant(row_queries[rows]), k=11)
    found = np.array([[c for c in f if c != r][:10] for f, r in zip(found.numpy(), rows)])
    expected = np.mean([len(np.intersect1d(f, e)) / 10 for f, e in zip(found, exact)])
    assert tuning.measured_recall == pytest.approx(expected, abs=1e-9)
    with pytest.raises(ValueError, match="row_queries.shape"):
        index.tune(candidates, 0.9, row_queries=row_queries[:, :4])


def test_the_chosen_leaves_survive_a_saved_model(tuned, tmp_path):
    candidates, fresh, index = tuned
    module = tf.Module()
    module.index = index
    module.search = tf.function(
        lambda queries: index(queries), input_signature=[tf.TensorSpec([None, DIM], tf.float32)]
    )
    queries = tf.constant(fresh[:100])
    scores, found = module.search(queries)
    options = tf.saved_model.SaveOptions(namespace_whitelist=["Scann"])  # the ScaNN ops
    tf.saved_model.save(module, str(tmp_path / "index"), options=options)
    loaded = tf.saved_model.load(str(tmp_path / "index"))
    assert int(loaded.index._leaves_to_search.numpy()) == index.leaves_to_search < index.settings.num_leaves_to_search
    loaded_scores, loaded_found = loaded.search(queries)
    np.testing.assert_array_equal(loaded_found.numpy(), found.numpy())
    np.testing.assert_allclose(loaded_scores.numpy(), scores.numpy(), rtol=1e-6)


def test_scann_metadata_records_the_choice(tuned):
    _, _, index = tuned
    meta = json.loads(json.dumps(index_metadata(index)))  # JSON-ready
    assert meta["kind"] == "scann" and meta["settings"] == dataclasses.asdict(index.settings)
    assert meta["leaves_to_search"] == index.tuning.leaves_to_search
    assert (meta["target_recall"], meta["measured_recall"]) == (0.9, index.tuning.measured_recall)
    assert (meta["sample_queries"], meta["recall_k"]) == (1000, 10)


def test_recall_against_latency_is_measured_at_every_number_of_leaves(tuned):
    candidates, _, index = tuned
    chosen = index.leaves_to_search
    sweep = index.measure_recall_latency(candidates, batch=50, repeats=3)
    assert index.leaves_to_search == chosen  # what the index serves is unchanged
    leaves = [point[0] for point in sweep.points]
    assert leaves == leaves_to_try(141) and (sweep.k, sweep.sample_queries, sweep.batch) == (10, 1000, 50)
    recalls = [point[1] for point in sweep.points]
    # The same sample as the tuning: its recall at the chosen leaves, and more leaves find more.
    assert dict(zip(leaves, recalls))[chosen] == index.tuning.measured_recall
    assert all(b >= a - 0.005 for a, b in zip(recalls, recalls[1:])) and recalls[-1] > 0.99 > recalls[0]
    latencies = [point[2] for point in sweep.points]
    assert all(ms > 0 for ms in latencies) and sweep.brute_force_latency_ms > 0
    assert latencies[-1] > latencies[0]  # all 141 leaves cost more than one
    meta = json.loads(json.dumps(index_metadata(index)))["recall_latency"]
    assert meta["queries"] == 50 and [p["leaves_to_search"] for p in meta["scann"]] == leaves
    assert [p["recall"] for p in meta["scann"]] == recalls


def test_friend_retrieval_export_writes_the_index_metadata(small_friend_graph, small_sampler, tmp_path):
    graph = small_friend_graph.train
    tf.keras.utils.set_random_seed(0)
    model = SSMTLRetrieval(feature_dim=60, hidden_dim=8, embedding_dim=8, num_layers=1, num_heads=2)
    vectors = model.user_vectors(small_sampler)
    path = export_friend_retrieval(
        model,
        graph,
        tmp_path,
        "friends",
        k=5,
        fanouts=(4, 3),
        vectors=vectors,
        target_recall=0.9,
        recall_latency=True,
    )
    meta = json.loads((path / "assets.extra" / "ann_index.json").read_text())
    sweep = meta["recall_latency"]
    assert [p["leaves_to_search"] for p in sweep["scann"]] == leaves_to_try(
        settings_leaves := meta["settings"]["num_leaves"]
    )
    assert sweep["scann"][-1]["leaves_to_search"] == settings_leaves and sweep["brute_force_latency_ms"] > 0
    assert (path / "assets.extra" / "tf_serving_warmup_requests").is_file()
    assert [p.name for p in (tmp_path / "friends").iterdir()] == ["1"]  # no staging directory left behind
    settings = ScannSettings.for_size(graph.num_users)
    assert meta["kind"] == "scann" and meta["settings"] == dataclasses.asdict(settings)
    assert meta["target_recall"] == 0.9 and meta["recall_k"] == 10 and meta["sample_queries"] == 30
    assert meta["target_reached"] == (meta["measured_recall"] >= 0.9)
    last_tried = meta["recall_by_leaves_to_search"][-1]
    assert (meta["leaves_to_search"], meta["measured_recall"]) == (last_tried["leaves_to_search"], last_tried["recall"])
    assert meta["target_reached"] or meta["leaves_to_search"] == settings.num_leaves
    brute = export_friend_retrieval(
        model,
        graph,
        tmp_path,
        "friends_brute_force",
        k=5,
        fanouts=(4, 3),
        vectors=vectors,
        index="brute_force",
        target_recall=0.9,
    )
    assert json.loads((brute / "assets.extra" / "ann_index.json").read_text()) == {
        "kind": "brute_force",
        "exact": True,
        "fusion": None,
    }


def test_scann_index_config_round_trips_without_the_non_serializable_warning():
    index = ScaNNIndex(ScannSettings(num_leaves=20, num_leaves_to_search=7), k=5, target_recall=0.9, name="friends")
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    tf.get_logger().addHandler(handler)
    try:
        config = index.get_config()
    finally:
        tf.get_logger().removeHandler(handler)
    assert not messages, messages  # Keras's default config warned that `settings` is not serializable
    restored = ScaNNIndex.from_config(config)
    assert restored.get_config() == config and restored.settings == index.settings
    assert (restored._k, restored.target_recall, restored.name) == (5, 0.9, "friends")


@pytest.mark.parametrize("level", ["3", "2"])
def test_scann_native_logs_are_quiet_where_tensorflows_are(level, monkeypatch, capfd):
    # Half the candidates are zero vectors: ScaNN's k-means warns of zero-norm centroids
    # and logs its partitioner's progress, through absl's C++ logging.
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", level)
    candidates = np.zeros((2000, 16), np.float32)
    candidates[:1000] = np.random.default_rng(0).normal(size=(1000, 16))
    build_index("scann", candidates, k=5, settings=ScannSettings(num_leaves=50, num_leaves_to_search=5))
    native = capfd.readouterr().err
    if level == "3":
        assert "partitioner" not in native.lower() and "gmm_utils" not in native, native
    else:
        assert "Partitioner" in native or "partitioner" in native  # nothing hidden below level 3
