import numpy as np
import pytest
import tensorflow as tf

from tests.harness import (
    KERNEL_KNOBS,
    assert_allclose,
    check_default_kernels,
    check_kernel_knobs,
    check_layer,
    check_model,
)
from tfzoo.data import (
    CategoricalFeature,
    DatasetSpec,
    IdFeature,
    NumericFeature,
    SequenceFeature,
    TabularData,
    make_dataset,
)
from tfzoo.evaluation import float_ops_per_example, roc_auc
from tfzoo.models import GRec
from tfzoo.models.grec import DEFAULT_CAPACITY_FACTOR

TOKENS = {
    "user": ["cat_0", "cat_1", "num_0", "num_1"],
    "context": ["cat_2", "cat_3", "num_2", "num_3"],
    "item": ["item_vector"],
}


def tiny(spec, **options):
    defaults = dict(
        feature_spec=spec,
        token_features=TOKENS,
        model_dim=8,
        embedding_dim=4,
        num_heads=2,
        num_experts=4,
        top_k=2,
        expert_units=(8,),
        tower_units=(8,),
    )
    return GRec(**{**defaults, **options})


@pytest.fixture(scope="module")
def batch(synthetic_small):
    data, spec = synthetic_small
    features, labels, masks = next(iter(make_dataset(data, spec, batch_size=64)))
    return features, labels, masks


def test_trains_on_flow_use_case_tasks_and_survives_saving(synthetic_small, batch, tmp_path):
    data, spec = synthetic_small
    tf.keras.utils.set_random_seed(0)
    model = tiny(spec, routing="task_sentence")
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    check_model(model, batch[0], tmp_path)
    history = model.fit(make_dataset(data, spec, batch_size=150, shuffle=True, seed=0), epochs=8, verbose=0)
    assert history.history["loss"][-1] < 0.9 * history.history["loss"][0]
    assert history.history["moe_expert_usage"][-1] > 0  # routing statistics are logged
    scores = model.predict(make_dataset(data, spec, batch_size=512, with_labels=False), verbose=0)
    assert roc_auc(data.labels["ctr"], scores["ctr"], data.label_masks["ctr"]) > 0.72


def test_every_routing_trains_its_router_and_experts(synthetic_small, batch):
    _, spec = synthetic_small
    for routing in ("token", "sentence", "task", "dense"):
        model = tiny(spec, routing=routing)
        with tf.GradientTape() as tape:
            loss = model.compute_loss(batch, training=True) + tf.add_n(model.losses)
        router = model.moe._router_layer.trainable_weights
        gradients = tape.gradient(loss, router + model.moe.experts.trainable_weights)
        assert np.isfinite(loss.numpy()), routing
        assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in gradients), routing
        assert len(model.losses) == (1 if routing == "dense" else 2), routing  # z-loss (+ load balance)
        names = {m.name for m in model.moe.metrics}
        assert ("moe_dropped_fraction" in names) == (routing in ("token", "sentence")), routing


@pytest.mark.parametrize("routing", ["task", "task_sentence"])
def test_extracted_model_equals_the_full_model(synthetic_small, batch, routing):
    _, spec = synthetic_small
    model = tiny(spec, routing=routing, num_experts=16, top_k=3)
    features = batch[0]
    full = model(features)
    extracted = model.extract()
    assert extracted.experts.num_experts <= 16
    assert_allclose(extracted(features), full)
    flows = features["flow"].numpy()
    signatures = extracted.task_signatures()
    assert set(signatures) == {f"{f}_{u}" for f in ("aal", "eup", "nse") for u in ("ctr", "atc", "cvr")}
    for name in ("aal_ctr", "nse_cvr"):
        flow, use_case = signatures[name]
        rows = flows == flow
        one_task = extracted.task_probability(features, flow, use_case)[use_case].numpy()
        np.testing.assert_allclose(one_task[rows], full[use_case].numpy()[rows], atol=1e-5)


def test_pairs_are_routed_by_their_own_flow_and_use_case(synthetic_small):
    _, spec = synthetic_small
    model = tiny(spec, routing="task_sentence")
    flows, use_cases = model.num_flows, len(model.tasks)
    assert (flows, use_cases) == (4, 3)  # 3 flows + the OOV bucket; ctr, atc, cvr
    ids = model.task_routing_ids()
    # Task id f * U + u holds the task sentence [flow f, use-case token F + u].
    np.testing.assert_array_equal(ids[2 * use_cases + 1], [2, flows + 1])
    assert model.task_id(2, 1) == 2 * use_cases + 1


def test_extracted_cost_does_not_grow_with_the_number_of_experts(synthetic_small, batch):
    _, spec = synthetic_small
    features = {k: v[:16] for k, v in batch[0].items()}
    costs, full_costs = {}, {}
    for experts in (4, 32):
        model = tiny(spec, num_experts=experts, top_k=2, expert_units=(64,))
        model(features)
        extracted = model.extract()
        costs[experts] = float_ops_per_example(
            lambda f, extracted=extracted: extracted.task_probability(f, 1, "ctr"), features
        )
        full_costs[experts] = float_ops_per_example(lambda f, model=model: model(f), features)
    assert costs[32] == costs[4]
    # The full model is sparse too: only its router grows with E, and its grouped
    # dispatch pads each expert's group by at most ~25% (less as groups shrink).
    assert costs[4] < full_costs[4] and full_costs[32] < 1.25 * full_costs[4]


def behaviour_data():
    """Six rows of a user token (gender, age) and a behaviour sequence (items and ratings)."""
    spec = DatasetSpec(
        features=(
            CategoricalFeature("gender", vocabulary=("F", "M")),
            NumericFeature("age", mean=30.0, std=10.0),
            SequenceFeature("history", IdFeature("item", num_ids=10), max_length=4),
            SequenceFeature("history_rating", NumericFeature("rating", mean=3.0, std=1.0), max_length=4),
            CategoricalFeature("flow", vocabulary=("young", "old")),
        ),
        labels=("like", "love"),
    )
    rng = np.random.default_rng(0)
    history = np.full((6, 4), -1, np.int64)
    rating = np.full((6, 4), np.nan, np.float32)
    for row, length in enumerate([4, 3, 2, 1, 0, 4]):
        history[row, :length] = rng.integers(0, 10, length)
        rating[row, :length] = rng.integers(1, 6, length)
    data = TabularData(
        features={
            "gender": np.array(list("FMFMFM"), object),
            "age": rng.uniform(18, 60, 6).astype(np.float32),
            "history": history,
            "history_rating": rating,
            "flow": np.array(["young", "old"] * 3, object),
        },
        labels={"like": np.array([1, 0, 1, 0, 1, 1], np.float32), "love": np.array([0, 0, 1, 0, 0, 1], np.float32)},
        spec=spec,
    )
    return data, spec


def behaviour_model(spec, **options):
    return GRec(
        feature_spec=spec,
        token_features={"user": ["gender", "age"]},
        behaviour_sequences={"history": ["history", "history_rating"]},
        model_dim=8,
        num_heads=2,
        num_experts=4,
        top_k=2,
        expert_units=(8,),
        tower_units=(4,),
        **options,
    )


def test_behaviour_sequences_become_tokens_and_padding_is_ignored(tmp_path):
    data, spec = behaviour_data()
    model = behaviour_model(spec)
    features = next(iter(make_dataset(data, spec, batch_size=6, with_labels=False)))
    assert set(model(features)) == {"like", "love"}
    sequence = model.row_encoder.sequences["history"]
    token = check_layer(sequence, features, tmp_path).numpy()
    np.testing.assert_allclose(token[4], 0.0)  # an empty history is a zero token
    changed = dict(features, history_rating=tf.tensor_scatter_nd_update(features["history_rating"], [[1, 3]], [9.0]))
    np.testing.assert_allclose(sequence(changed).numpy(), token, atol=1e-6)  # position 3 of row 1 is padding


def test_bad_options_are_named(synthetic_small):
    _, spec = synthetic_small
    with pytest.raises(ValueError, match="routing"):
        tiny(spec, routing="expert_choice")
    with pytest.raises(ValueError, match="flow_feature"):
        tiny(spec, flow_feature="segment")
    with pytest.raises(ValueError, match="unknown feature"):
        tiny(spec, token_features={"user": ["cat_9"]})
    with pytest.raises(ValueError, match="task token"):
        tiny(spec, token_features={"user": ["flow"]})
    with pytest.raises(ValueError, match="task or task-sentence"):
        model = tiny(spec, routing="token")
        model.extract()


def test_default_capacity_can_drop_where_factor_two_cannot(synthetic_small, batch):
    # 8 experts, top-4: factor 2 gives each expert ceil(2 * units * 4 / 8) = units slots,
    # room for every unit (a unit picks an expert at most once): nothing is ever dropped.
    # The default (1.25) gives ceil(0.625 * units): when the router sends every unit to
    # the same 4 experts, 1 - 0.625 of the assignments overflow.
    _, spec = synthetic_small
    model = tiny(spec, routing="sentence", num_experts=8, top_k=4)
    assert model.capacity_factor == DEFAULT_CAPACITY_FACTOR == 1.25 and model.moe.capacity_factor == 1.25
    assert tiny(spec, routing="task", num_experts=8, top_k=4).moe.capacity_factor is None  # task level: dropless
    dropped = {}
    for factor in (2.0, DEFAULT_CAPACITY_FACTOR):
        model = tiny(spec, routing="sentence", num_experts=8, top_k=4, capacity_factor=factor)
        model(batch[0])
        router = model.moe.router_layer
        router.kernel.assign(tf.zeros_like(router.kernel))
        router.bias.assign(tf.constant([4.0, 3.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0]))
        model.moe.dropped_fraction.reset_state()
        model(batch[0], training=True)
        dropped[factor] = float(model.moe.dropped_fraction.result())
        units = 64 * len(model.tasks)  # one routing unit per (row, use case) pair
        assert model.moe.capacity(units) == int(np.ceil(factor * units * 4 / 8))
    assert dropped[2.0] == 0.0
    assert dropped[DEFAULT_CAPACITY_FACTOR] == pytest.approx(1 - 0.625, abs=0.01)


@pytest.mark.parametrize("routing", ["task_sentence", "token"])
def test_kernel_options_reach_every_dense_kernel_and_round_trip(routing):
    data, spec = behaviour_data()
    features = next(iter(make_dataset(data, spec, batch_size=6, with_labels=False)))
    model = behaviour_model(spec, routing=routing, **KERNEL_KNOBS)
    model(features)
    # user token: deep tower, wide feed-forward, token projection (3); history: the rating
    # projection (1) and one block (query, key, value, output, 2 feed-forward: 6); one token
    # block (6); the expert bank (1); two towers of one hidden layer and a logit (4). The
    # embeddings, the task tokens and the router are not dense kernels.
    total = check_kernel_knobs(model, 3 + 1 + 6 + 6 + 1 + 4)
    config = model.get_config()
    assert {k: config[k] for k in KERNEL_KNOBS} == KERNEL_KNOBS
    rebuilt = GRec.from_config(config)
    rebuilt(features)
    assert float(tf.add_n(rebuilt.losses)) == pytest.approx(total, rel=1e-5)
    with pytest.raises(ValueError, match="Received: kernel_regularizer='l3'"):
        behaviour_model(spec, kernel_regularizer="l3")
    with pytest.raises(ValueError, match="Received: kernel_initializer='nope'"):
        behaviour_model(spec, kernel_initializer="nope")


def test_without_kernel_options_every_layer_keeps_its_default():
    data, spec = behaviour_data()
    model = behaviour_model(spec)
    model(next(iter(make_dataset(data, spec, batch_size=6, with_labels=False))))
    check_default_kernels(model)
    assert model.get_config()["kernel_regularizer"] is None
