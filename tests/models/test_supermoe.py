import numpy as np
import pytest
import tensorflow as tf

from tests.harness import KERNEL_KNOBS, check_default_kernels, check_kernel_knobs, check_model
from tfzoo.data.behaviour_sequences import (
    BEHAVIOUR_TASKS,
    RATING_VOCABULARY,
    ItemTables,
    channel_columns,
    make_behaviour_sequences,
    with_noise_task,
)
from tfzoo.evaluation.metrics import roc_auc
from tfzoo.export import read_warmup_requests
from tfzoo.export.fresh_process import call_in_fresh_process
from tfzoo.export.supermoe import export_supermoe
from tfzoo.models.supermoe import (
    MaskedChannelPretrainer,
    SuperMoE,
    dense_counterpart,
    encoder_parameters,
    masked_max_pool,
    pairwise_hinge_auc_loss,
)


@pytest.fixture(scope="module")
def sequences():
    return make_behaviour_sequences(80, num_items=60, events_per_user=16, length=6, seed=3)


def encoder_options(sizes, experts=3):
    return dict(
        units=16,
        category_channels=sizes.category_channels,
        id_channels=sizes.id_channels,
        dense_channels=sizes.dense_channels,
        num_heads=2,
        key_dim=8,
        ffn_units=16,
        num_experts=experts,
    )


def batches(data, labels=True):
    columns = channel_columns(data)
    return tf.data.Dataset.from_tensor_slices((columns, data.labels, data.label_masks) if labels else columns).batch(64)


def test_hinge_surrogate_and_max_pool_by_hand():
    # Pairs (+0: 2.0, -: 1.5 and 3.0): hinge 1 - 0.5 = 0.5 and 1 + 1 = 2; masked row ignored -> 1.25.
    loss = pairwise_hinge_auc_loss(
        tf.constant([2.0, 1.5, 3.0, 9.0]), tf.constant([1.0, 0.0, 0.0, 0.0]), tf.constant([1.0, 1.0, 1.0, 0.0])
    )
    assert float(loss) == pytest.approx(1.25)
    pooled = masked_max_pool(
        tf.constant([[[1.0, -5.0], [3.0, -7.0], [9.0, 9.0]], [[4.0, 4.0], [5.0, 5.0], [6.0, 6.0]]]),
        tf.constant([[True, True, False], [False, False, False]]),
    )
    # Row 1 has no real step (no history): the zero vector, not the -1e9 floor.
    np.testing.assert_allclose(pooled.numpy(), [[3.0, -5.0], [0.0, 0.0]])


def test_a_masked_step_hides_every_channel(sequences):
    # MCP must not leak its answer: the title vector and genres of a step are functions of
    # its item, so masking only the item (and rating) lets the item be read off its own
    # step. Whatever the chosen steps held, the masked batch, and hence everything the
    # encoder computes from it, must be the same.
    data, sizes = sequences
    features = {k: np.asarray(v) for k, v in channel_columns(data.take(np.arange(64))).items()}
    pretrainer = MaskedChannelPretrainer(
        encoder=encoder_options(sizes), masked_channels=["item", "rating"], mask_rate=0.3, seed=1
    )
    seed = tf.constant([1, 0], tf.int64)
    chosen = pretrainer.draw_masked_steps(features, seed).numpy()  # [64, L]
    valid = features["item"] > 0
    assert chosen.sum() > 20 and not (chosen & ~valid).any()
    rng = np.random.default_rng(0)
    other = {k: v.copy() for k, v in features.items()}  # the chosen steps hold something else
    other["item"][chosen] = rng.integers(1, sizes.num_items + 1, size=chosen.sum())
    other["rating"][chosen] = rng.integers(1, 6, size=chosen.sum())
    other["genres"][chosen] = rng.integers(0, sizes.num_genres + 1, size=(chosen.sum(), other["genres"].shape[-1]))
    other["title"][chosen] = rng.normal(size=(chosen.sum(), other["title"].shape[-1]))
    other["interval"][chosen] = rng.exponential(size=(chosen.sum(), 1))
    masked = {k: np.asarray(v) for k, v in pretrainer.mask_steps(features, chosen).items()}
    masked_other = {k: np.asarray(v) for k, v in pretrainer.mask_steps(other, chosen).items()}
    for channel in features:
        np.testing.assert_array_equal(masked[channel], masked_other[channel], err_msg=f"{channel} leaks")
        np.testing.assert_array_equal(masked[channel][~chosen], features[channel][~chosen])  # the rest is kept
    np.testing.assert_array_equal(masked["item"][chosen], sizes.id_channels["item"])
    np.testing.assert_array_equal(masked["genres"][chosen][:, 0], sizes.category_channels["genres"])
    np.testing.assert_array_equal(masked["genres"][chosen][:, 1:], 0)
    np.testing.assert_array_equal(masked["title"][chosen], 0.0)
    np.testing.assert_allclose(pretrainer.encoder(masked).numpy(), pretrainer.encoder(masked_other).numpy())

    # The prediction targets: the masked steps with a known value (a target's rating is [MASK]).
    masked_features, positions = pretrainer.mask_channels(features, seed)
    np.testing.assert_array_equal(positions["item"].numpy(), chosen & valid)
    targets = positions["rating"].numpy()
    assert targets.any() and not (targets & (features["rating"] == RATING_VOCABULARY)).any()
    np.testing.assert_array_equal(masked_features["title"].numpy()[positions["item"].numpy()], 0.0)


def test_stateless_negatives_follow_the_log_uniform_distribution():
    from tfzoo.models.supermoe import log_uniform_negatives

    num_classes, num_sampled = 50, 64
    draws = [
        log_uniform_negatives(tf.constant([0, 7]), num_sampled, num_classes, seed=tf.constant([3, step], tf.int64))
        for step in range(300)
    ]
    sampled, true_expected, sampled_expected = draws[0]
    again = log_uniform_negatives(tf.constant([0, 7]), num_sampled, num_classes, seed=tf.constant([3, 0], tf.int64))
    np.testing.assert_array_equal(sampled.numpy(), again[0].numpy())  # a function of the seed
    counts = np.bincount(np.concatenate([d[0].numpy() for d in draws]), minlength=num_classes) / len(draws)
    expected = (
        num_sampled * np.log((np.arange(num_classes) + 2) / (np.arange(num_classes) + 1)) / np.log(num_classes + 1)
    )
    np.testing.assert_allclose(true_expected.numpy()[:, 0], expected[[0, 7]], rtol=1e-5)
    np.testing.assert_allclose(sampled_expected.numpy(), expected[sampled.numpy()], rtol=1e-5)
    np.testing.assert_allclose(counts[:5], expected[:5], rtol=0.1)  # the draws follow it


def test_pretrainer_evaluation_masks_the_same_steps_every_time(sequences):
    data, sizes = sequences
    pretrainer = MaskedChannelPretrainer(
        encoder=encoder_options(sizes), masked_channels=["item", "rating"], mask_rate=0.3, num_sampled=8
    )
    pretrainer.compile(optimizer="adam")
    first = pretrainer.evaluate(batches(data.take(np.arange(128)), labels=False), return_dict=True, verbose=0)
    second = pretrainer.evaluate(batches(data.take(np.arange(128)), labels=False), return_dict=True, verbose=0)
    assert first == second


def test_pretraining_predicts_masked_items_from_their_context():
    # With every channel of a masked step hidden, the item can only come from the other
    # steps (the user's taste shows in the genres they watch). Held-out loss below the
    # entropy of the item frequencies = better than any predictor that ignores the context.
    data, sizes = make_behaviour_sequences(300, num_items=60, events_per_user=16, length=8, seed=3)
    order = np.random.default_rng(0).permutation(len(data))
    train, held_out = data.take(order[:3800]), data.take(order[3800:])
    frequencies = np.bincount(train.features["item"][train.features["item"] > 0], minlength=61)[1:] + 1.0
    frequencies /= frequencies.sum()
    unigram_entropy = -(frequencies * np.log(frequencies)).sum()
    tf.keras.utils.set_random_seed(0)
    pretrainer = MaskedChannelPretrainer(
        encoder=encoder_options(sizes), masked_channels=["item", "rating"], mask_rate=0.3, num_sampled=32
    )
    pretrainer.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    before = pretrainer.evaluate(batches(held_out, labels=False), return_dict=True, verbose=0)
    pretrainer.fit(batches(train, labels=False), epochs=3, verbose=0)
    after = pretrainer.evaluate(batches(held_out, labels=False), return_dict=True, verbose=0)
    assert after["item_loss"] < unigram_entropy - 0.1, (after, unigram_entropy)
    assert after["rating_loss"] < before["rating_loss"] - 1.0


def test_trained_model_learns_the_attributes_and_exports_raw_sequences(sequences, tmp_path):
    # Pre-training and fine-tuning from it run end to end in tests/training/test_supermoe_run.py
    # (the encoder's weights checked there); here the fine-tuned model's quality and export.
    data, sizes = sequences
    order = np.random.default_rng(0).permutation(len(data))
    train, test = data.take(order[:1000]), data.take(order[1000:])
    tf.keras.utils.set_random_seed(0)
    model = SuperMoE(encoder=encoder_options(sizes), tasks=BEHAVIOUR_TASKS)
    sample = channel_columns(test.take(np.arange(4)))
    model(sample)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    model.fit(batches(train), epochs=3, verbose=0)
    predictions = model.predict(batches(test, labels=False), verbose=0)
    # Attributes follow the genres a user watches: learnable well above chance.
    assert roc_auc(test.labels["female"], predictions["female"], test.label_masks["female"]) > 0.7
    check_model(model, sample, tmp_path)

    path = export_supermoe(model, ItemTables.of(data), tmp_path / "savedmodels", "supermoe")
    assert path.name == "1"
    loaded = tf.saved_model.load(str(path))
    # Raw sequences in (item ids, the history's ratings, timestamps): the export looks up
    # genres and titles, computes the intervals and masks the target's rating as the data does.
    rows = test.take(np.arange(4))
    raw = {
        "item": rows.features["item"],
        "rating": rows.features["rating"].copy(),
        "timestamp": rows.features["step_timestamp"],
    }
    raw["rating"][:, -1] = 0  # unknown to the client
    served = loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in raw.items()})
    for task, probability in model(sample).items():
        np.testing.assert_allclose(served[task].numpy(), probability.numpy(), atol=1e-5)
    inputs = {k: np.asarray(v) for k, v in sample.items()}
    by_channels = loaded.signatures["serving_channels"](**{k: tf.constant(v) for k, v in inputs.items()})
    np.testing.assert_allclose(by_channels["female"].numpy(), model(sample)["female"].numpy(), atol=1e-5)
    unknown_item = {**raw, "item": np.where(raw["item"] > 0, sizes.num_items + 1, 0)}
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"`item` ids must be <= {sizes.num_items}"):
        loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in unknown_item.items()})
    # The warm-up requests hold real histories (not all padding), so warm-up runs the encoder.
    warmup = {
        log.predict_log.request.model_spec.signature_name: log.predict_log.request for log in read_warmup_requests(path)
    }
    assert set(warmup) == {"serving_default", "user_embedding", "serving_channels", "user_embedding_channels"}
    warm_items = tf.make_ndarray(warmup["user_embedding"].inputs["item"])
    assert (warm_items[0] > 0).all() and (warm_items > 0).sum(axis=1).tolist() == [3, 2]
    embedded = call_in_fresh_process(path, raw, signature="user_embedding")
    np.testing.assert_allclose(embedded["user_embedding"], model.user_embedding(sample).numpy(), atol=1e-5)


def test_absent_labels_contribute_nothing(sequences):
    data, sizes = sequences
    rows = data.take(np.arange(64))
    model = SuperMoE(encoder=encoder_options(sizes), tasks=BEHAVIOUR_TASKS)
    features = channel_columns(rows)
    flipped = {t: np.where(rows.label_masks[t] > 0, rows.labels[t], 1 - rows.labels[t]) for t in BEHAVIOUR_TASKS}
    a = model.task_losses((features, rows.labels, rows.label_masks))
    b = model.task_losses((features, flipped, rows.label_masks))
    assert rows.label_masks["female"].min() == 0.0
    for task in BEHAVIOUR_TASKS:
        assert float(a[task]) == pytest.approx(float(b[task]), rel=1e-6)


def test_frozen_encoder_trains_the_towers_only_and_round_trips(sequences):
    data, sizes = sequences
    train = data.take(np.arange(0, 128))
    tf.keras.utils.set_random_seed(0)
    model = SuperMoE(encoder=encoder_options(sizes, experts=2), tasks=BEHAVIOUR_TASKS, freeze_encoder=True)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    model(channel_columns(train.take(np.arange(2))))
    encoder = [v.numpy().copy() for v in model.encoder.weights]
    towers = [v.numpy().copy() for tower in model.towers.values() for v in tower.weights]
    model.fit(batches(train), epochs=1, verbose=0)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(encoder, model.encoder.weights))
    assert any(
        np.abs(a - v.numpy()).max() > 1e-4
        for a, v in zip(towers, [v for t in model.towers.values() for v in t.weights])
    )
    clone = SuperMoE.from_config(model.get_config())
    assert clone.freeze_encoder and not clone.encoder.trainable
    with pytest.raises(ValueError, match="task_weight_rate"):
        SuperMoE(encoder=encoder_options(sizes), tasks=BEHAVIOUR_TASKS, task_weight_rate=-1.0)


def test_auc_driven_weights_turn_down_a_pure_noise_task(sequences):
    # Eq. 10: a task whose labels are coin flips cannot raise any validation AUC; its
    # training gradient does not align with the validation surrogate's, so its lambda
    # falls below every real task's (bench/supermoe_task_weights.py prints the trajectories).
    data, sizes = sequences
    data = with_noise_task(data, seed=0)
    tasks = (*BEHAVIOUR_TASKS, "noise")
    order = np.random.default_rng(0).permutation(len(data))
    train, validation = data.take(order[:900]), data.take(order[900:])
    tf.keras.utils.set_random_seed(0)
    model = SuperMoE(encoder=encoder_options(sizes, experts=2), tasks=tasks, task_weight_rate=0.1)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    model(channel_columns(train.take(np.arange(2))))
    tower = model.towers["female"].kernel.numpy().copy()
    history = model.fit(tf.data.Dataset.zip((batches(train), batches(validation).repeat())), epochs=2, verbose=0)
    assert np.abs(model.towers["female"].kernel.numpy() - tower).max() > 1e-3  # the model trains too
    weights = model.current_task_weights()
    assert weights["noise"] < min(weights[t] for t in BEHAVIOUR_TASKS), weights
    # The weights move and keep their sum (the number of tasks).
    assert weights["noise"] < 0.9 and sum(weights.values()) == pytest.approx(4.0, rel=1e-5)
    assert history.history["lambda_noise"][-1] == pytest.approx(weights["noise"])
    assert np.isfinite(history.history["loss"]).all() and "validation_hinge_auc_loss" in history.history


def test_dense_counterparts_match_compute_or_parameters(sequences):
    data, sizes = sequences
    features = channel_columns(data.take(np.arange(4)))
    moe = encoder_options(sizes, experts=4)
    compute = dense_counterpart(moe, features, match="compute")
    assert compute == {**moe, "num_experts": 1}
    parameters = dense_counterpart(moe, features, match="parameters")
    assert parameters["num_experts"] == 1 and parameters["ffn_units"] > moe["ffn_units"]
    target = encoder_parameters(moe, features)
    # One unit of FFN width is 2 * units + 1 parameters per block: the nearest width is within half of it.
    assert abs(encoder_parameters(parameters, features) - target) <= (2 * moe["units"] + 1) / 2
    assert encoder_parameters(compute, features) < 0.6 * target
    with pytest.raises(ValueError, match="match='flops'"):
        dense_counterpart(moe, features, match="flops")


def test_kernel_options_reach_every_dense_kernel_and_round_trip(sequences):
    data, sizes = sequences
    sample = channel_columns(data.take(np.arange(4)))
    model = SuperMoE(encoder=encoder_options(sizes), tasks=BEHAVIOUR_TASKS, **KERNEL_KNOBS)
    model(sample)
    # The projection's W (1); one block: the query, key and value expert banks, the
    # attention output, the feed-forward experts' two layers (6); a tower per task (3).
    # The channel tables and the four routers are not dense kernels.
    total = check_kernel_knobs(model, 1 + 6 + len(BEHAVIOUR_TASKS))
    config = model.get_config()
    assert {k: config[k] for k in KERNEL_KNOBS} == KERNEL_KNOBS
    assert not set(KERNEL_KNOBS) & set(config["encoder"])  # model options, not encoder ones
    rebuilt = SuperMoE.from_config(config)
    rebuilt(sample)
    assert float(tf.add_n(rebuilt.losses)) == pytest.approx(total, rel=1e-5)

    pretrainer = MaskedChannelPretrainer(
        encoder=encoder_options(sizes), masked_channels=["item", "rating"], **KERNEL_KNOBS
    )
    pretrainer(sample)
    pretrainer.loss_terms(sample)  # builds the heads
    # The encoder's 7 and the rating head; the item's output embedding is a table.
    check_kernel_knobs(pretrainer, 1 + 6 + 1)
    assert (
        MaskedChannelPretrainer.from_config(pretrainer.get_config()).kernel_regularizer
        == KERNEL_KNOBS["kernel_regularizer"]
    )

    with pytest.raises(ValueError, match="Received: kernel_regularizer='l3'"):
        SuperMoE(encoder=encoder_options(sizes), tasks=BEHAVIOUR_TASKS, kernel_regularizer="l3")
    with pytest.raises(ValueError, match="`kernel_regularizer` is a model option, not an encoder option"):
        SuperMoE(encoder={**encoder_options(sizes), "kernel_regularizer": "l2"}, tasks=BEHAVIOUR_TASKS)
    with pytest.raises(ValueError, match="`kernel_initializer` is a model option"):
        MaskedChannelPretrainer(
            encoder={**encoder_options(sizes), "kernel_initializer": "ones"}, masked_channels=["rating"]
        )


def test_without_kernel_options_every_layer_keeps_its_default(sequences):
    data, sizes = sequences
    sample = channel_columns(data.take(np.arange(4)))
    model = SuperMoE(encoder=encoder_options(sizes), tasks=BEHAVIOUR_TASKS)
    model(sample)
    check_default_kernels(model)
    pretrainer = MaskedChannelPretrainer(encoder=encoder_options(sizes), masked_channels=["item", "rating"])
    pretrainer(sample)
    pretrainer.loss_terms(sample)
    check_default_kernels(pretrainer)
