import numpy as np
import pytest
import tensorflow as tf

from tests.harness import KERNEL_KNOBS, assert_allclose, check_default_kernels, check_kernel_knobs
from tfzoo.models.ssmtl import SSMTLRetrieval


def _model(**weights):
    return SSMTLRetrieval(feature_dim=60, hidden_dim=8, embedding_dim=8, num_layers=2, num_heads=2, **weights)


def _fit_generator(batches, repeats):
    for _ in range(repeats):
        yield from batches


def test_model_round_trips_and_embeds_roots(friendship_batches, tmp_path):
    # `check_model`'s steps, except that the objectives' heads are built by a first loss
    # evaluation (a plain call only runs the encoder), as the training family does.
    batch = friendship_batches[0]
    model = _model(
        cca_weight=0.5,
        mae_weight=2.0,
        id_buckets=300,
        readout="concat",
        message_passing="both",
        candidate_bias=True,
        ssl_batch_size=16,
        mae_decoder_dim=8,
    )
    model.compute_loss(batch)
    embeddings = model(batch["query"])
    assert embeddings.shape == (32, 8)
    config = model.get_config()
    clone = SSMTLRetrieval.from_config(config)
    assert clone.get_config() == config
    clone.compute_loss(batch)
    clone.set_weights(model.get_weights())
    assert_allclose(clone(batch["query"]), embeddings)
    assert float(clone.compute_loss(batch)) == pytest.approx(float(model.compute_loss(batch)), rel=1e-5)

    # Runs restore models from checkpoints; serving loads the exported encoder
    # (tests/export/test_retrieval.py), so the checkpoint is the round trip that matters.
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    restored = SSMTLRetrieval.from_config(config)
    restored.compute_loss(batch)
    tf.train.Checkpoint(model=restored).restore(path).assert_existing_objects_matched()
    assert_allclose(restored(batch["query"]), embeddings)
    assert tf.keras.utils.get_registered_object("tfzoo>SSMTLRetrieval") is SSMTLRetrieval


@pytest.mark.parametrize(
    "weights, parts",
    [
        ({}, ["retrieval_loss"]),
        ({"cca_weight": 0.5}, ["retrieval_loss", "cca_loss"]),
        ({"mae_weight": 2.0}, ["retrieval_loss", "mae_loss"]),
        ({"cca_weight": 0.5, "mae_weight": 2.0}, ["retrieval_loss", "cca_loss", "mae_loss"]),
        ({"retrieval_weight": 0.0, "mae_weight": 1.0}, ["mae_loss"]),
    ],
)
def test_each_enabled_part_is_logged_and_the_total_is_eq_6(friendship_batches, weights, parts):
    model = _model(**weights)
    total = float(model.compute_loss(friendship_batches[0], training=True))
    logged = {m.name: float(m.result()) for m in model.metrics}
    assert sorted(logged) == sorted(["loss", *parts])
    weight_of = {
        "retrieval_loss": weights.get("retrieval_weight", 1.0),
        "cca_loss": weights.get("cca_weight", 0.0),
        "mae_loss": weights.get("mae_weight", 0.0),
    }
    assert total == pytest.approx(sum(weight_of[p] * logged[p] for p in parts), rel=1e-5)
    assert logged["loss"] == pytest.approx(total, rel=1e-5)
    # A switched-off objective builds nothing: no CCA head or GraphMAE decoder weights.
    encoder_weights = len(model.encoder.trainable_weights)
    head_weights = len(model.trainable_weights) - encoder_weights
    assert hasattr(model, "cca_head") == ("cca_loss" in parts)
    assert hasattr(model, "decoder") == ("mae_loss" in parts)
    assert (head_weights == 0) == (parts == ["retrieval_loss"])


def test_mae_part_is_one_for_a_zero_reconstruction_with_gamma_one(friendship_batches):
    # With the decoder's output at zero everywhere, every root's cosine is 0: error 1 ** gamma = 1.
    model = _model(retrieval_weight=0.0, mae_weight=1.0, mae_gamma=1.0)
    model.compute_loss(friendship_batches[0])
    for weight in model.decoder.weights:
        weight.assign(tf.zeros_like(weight))
    assert float(model.mae_loss(friendship_batches[0]["query"], training=False)) == pytest.approx(1.0)


def test_fitting_reduces_every_loss(friendship_batches):
    tf.keras.utils.set_random_seed(0)
    model = _model(cca_weight=0.05, mae_weight=10.0)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    spec = {
        name: graph.spec.relax(num_components=True, num_nodes=True, num_edges=True)
        for name, graph in friendship_batches[0].items()
    }
    data = tf.data.Dataset.from_generator(lambda: _fit_generator(friendship_batches, 100), output_signature=spec)
    history = model.fit(data, steps_per_epoch=4, epochs=4, verbose=0).history
    for name in ("loss", "retrieval_loss", "cca_loss", "mae_loss"):
        assert history[name][-1] < 0.9 * history[name][0], (name, history[name])
    # The in-batch softmax over 32 candidates starts near 32 * ln(32) and must clearly beat it.
    assert history["retrieval_loss"][-1] < 0.8 * 32 * np.log(32)


def test_bad_weights_are_rejected():
    with pytest.raises(ValueError, match="at least one > 0"):
        _model(retrieval_weight=0.0)
    with pytest.raises(ValueError, match="mae_gamma=0.5"):
        _model(mae_gamma=0.5)


def _expected_retrieval_loss(queries, candidates, query_ids, candidate_ids, probability=None):
    """Eq. 5 by hand: in-batch softmax, positives on the diagonal, copies of a row's
    positive elsewhere masked (accidental hits), log-Q subtracted when given."""
    scores = queries @ candidates.T  # [batch, candidates]
    if probability is not None:
        scores = scores - np.log(probability)[np.newaxis, :]
    batch = len(queries)
    for row in range(batch):
        accidental = (candidate_ids == candidate_ids[row]) & (np.arange(len(candidate_ids)) != row)
        scores[row, accidental] = -np.inf
    log_softmax = (
        scores
        - np.log(np.exp(scores - scores.max(1, keepdims=True)).sum(1, keepdims=True))
        - scores.max(1, keepdims=True)
    )
    return -log_softmax[np.arange(batch), np.arange(batch)].sum()


@pytest.mark.parametrize("logq", [False, True])
def test_retrieval_loss_is_eq_5_with_bias_log_q_and_uniform_negatives(friendship_batches, small_sampler, logq):
    from tfzoo.graph import root_ids

    model = _model(id_buckets=300, candidate_bias=True, logq_correction=logq, readout="concat")
    batch = dict(friendship_batches[0])
    rng = np.random.default_rng(0)
    batch["candidate_probability"] = tf.constant(rng.uniform(0.001, 0.01, size=32), tf.float32)
    batch["negatives"] = small_sampler(tf.constant([7, 8, 9, 10, 11], tf.int64))
    batch["negative_probability"] = tf.constant(rng.uniform(0.001, 0.01, size=5), tf.float32)
    model.compute_loss(batch)
    model.bias_embedding.embeddings.assign(rng.normal(size=(300, 1)).astype(np.float32))
    queries = model.query_embeddings(batch["query"]).numpy()
    candidates = np.concatenate(
        [model.candidate_embeddings(batch["candidate"]).numpy(), model.candidate_embeddings(batch["negatives"]).numpy()]
    )
    ids = np.concatenate([root_ids(batch["candidate"]).numpy(), [7, 8, 9, 10, 11]])
    probability = np.concatenate([batch["candidate_probability"].numpy(), batch["negative_probability"].numpy()])
    expected = _expected_retrieval_loss(
        queries, candidates, root_ids(batch["query"]).numpy(), ids, probability if logq else None
    )
    assert float(model.retrieval_loss(batch, training=False)) == pytest.approx(expected, rel=1e-4)


def test_log_q_needs_the_sampling_probabilities(friendship_batches):
    model = _model(logq_correction=True)
    with pytest.raises(ValueError, match="candidate_probability"):
        model.compute_loss(friendship_batches[0])


def test_self_supervision_sees_the_first_ssl_batch_size_subgraphs(friendship_batches):
    from tfzoo.graph import first_components

    tf.keras.utils.set_random_seed(0)
    model = _model(cca_weight=1.0, mae_weight=1.0, ssl_batch_size=8, mae_decoder_dim=8)
    batch = friendship_batches[0]
    model.compute_loss(batch)
    subset = first_components(batch["query"], 8)
    # Without augmentation (training=False) both losses are deterministic functions of the subset.
    terms = model.loss_terms(batch, training=False)
    assert float(terms["mae"].value) == pytest.approx(float(model.mae_loss(subset, training=False)), rel=1e-5)
    assert float(terms["cca"].value) == pytest.approx(float(model.cca_loss(subset, training=False)), rel=1e-5)
    with pytest.raises(ValueError, match="ssl_batch_size=1"):
        _model(ssl_batch_size=1)


def test_calibrated_weights_equalise_encoder_gradient_norms(friendship_batches):
    from tfzoo.models.ssmtl import calibrated_weights, encoder_gradient_norms

    config = {"feature_dim": 60, "hidden_dim": 8, "embedding_dim": 8, "num_heads": 2, "id_buckets": 300}
    norms = encoder_gradient_norms(config, friendship_batches[:2])
    assert sorted(norms) == ["cca", "mae", "retrieval"] and all(np.isfinite(v) and v > 0 for v in norms.values())
    weights = calibrated_weights({"retrieval": 10.0, "cca": 2.0, "mae": 0.5}, cca=1.0, mae=0.1)
    assert weights == pytest.approx({"cca_weight": 5.0, "mae_weight": 2.0})
    with pytest.raises(ValueError, match="cca=-1"):
        calibrated_weights(norms, cca=-1)


def test_candidate_bias_needs_id_buckets():
    with pytest.raises(ValueError, match="id_buckets=0"):
        _model(candidate_bias=True)


def test_kernel_options_reach_every_dense_kernel_and_round_trip(friendship_batches):
    batch = friendship_batches[0]
    options = dict(
        cca_weight=0.5, mae_weight=2.0, id_buckets=300, candidate_bias=True, readout="concat", mae_decoder_dim=4
    )
    model = _model(**options, **KERNEL_KNOBS)
    model.build_objectives(batch)
    # The encoder: the feature map W (1), per GATv2 round the query, value and attention
    # kernels and the next-state kernel (2 x 4), the concat readout (1); the CCA head (2);
    # the GraphMAE head (1) and decoder (GATv2's 3, the widening map 1). The id embedding,
    # the candidate biases and the [MASK] token are not dense kernels.
    total = check_kernel_knobs(model, 1 + 2 * 4 + 1 + 2 + 1 + 4)
    config = model.get_config()
    assert {k: config[k] for k in KERNEL_KNOBS} == KERNEL_KNOBS
    rebuilt = SSMTLRetrieval.from_config(config)
    rebuilt.build_objectives(batch)
    assert float(tf.add_n(rebuilt.losses)) == pytest.approx(total, rel=1e-5)
    # Training minimises the regularization too: the step's objective holds it.
    terms = model.loss_terms(batch, training=False)
    with_layer_losses = model._objective(terms, layer_losses=True)
    assert float(with_layer_losses - model._objective(terms, layer_losses=False)) == pytest.approx(total, rel=1e-4)
    with pytest.raises(ValueError, match="Received: kernel_regularizer='l3'"):
        _model(kernel_regularizer="l3")


def test_without_kernel_options_every_layer_keeps_its_default(friendship_batches):
    model = _model(cca_weight=0.5, mae_weight=2.0, readout="concat", mae_decoder_dim=4)
    model.build_objectives(friendship_batches[0])
    # No regularization term at all (TF-GNN's GATv2MPNNGraphUpdate put zero-weight L2 ones).
    check_default_kernels(model)
