import numpy as np
import pytest
import tensorflow as tf

from tests.harness import check_model
from tests.serving.helpers import TINY_OPTIONS
from tfzoo.data import make_dataset
from tfzoo.evaluation import roc_auc
from tfzoo.layers import Experts
from tfzoo.models import PLE, MMoE, SharedBottom, SingleTaskTowers

# The rankers' tiny options: the one table the serving tests build them from too.
TINY = {
    model_class: TINY_OPTIONS[name]
    for name, model_class in (
        ("single_task", SingleTaskTowers),
        ("shared_bottom", SharedBottom),
        ("mmoe", MMoE),
        ("ple", PLE),
    )
}


def batch(data, spec, size=64):
    return next(iter(make_dataset(data, spec, batch_size=size)))


@pytest.mark.parametrize("model_class", list(TINY), ids=lambda c: c.__name__)
def test_config_round_trip_and_saved_model_reload(model_class, census_small, tmp_path):
    data, spec = census_small
    model = model_class(feature_spec=spec, **TINY[model_class])
    features, _, _ = batch(data, spec)
    outputs = check_model(model, features, tmp_path)
    assert set(outputs) == {"income", "never_married"}
    for probability in outputs.values():
        assert probability.shape == (64,)
        assert np.all((probability.numpy() > 0) & (probability.numpy() < 1))


def bce(labels, logits):
    return np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))


def test_loss_is_the_mean_over_present_labels_weighted_by_task(synthetic_small):
    data, spec = synthetic_small
    model = MMoE(feature_spec=spec, task_weights={"cvr": 3.0}, **TINY[MMoE])
    model.compile()
    features, labels, masks = batch(data, spec, size=256)
    loss = float(model.compute_loss((features, labels, masks)))
    logits = {t: v.numpy() for t, v in model.task_logits(features).items()}
    expected = 0.0
    for task, weight in {"ctr": 1.0, "atc": 1.0, "cvr": 3.0}.items():
        mask = masks[task].numpy()
        expected += weight * (bce(labels[task].numpy(), logits[task]) * mask).sum() / mask.sum()
    assert loss == pytest.approx(expected, rel=1e-5)


def test_masked_labels_change_neither_loss_nor_gradients(synthetic_small):
    data, spec = synthetic_small
    model = SharedBottom(feature_spec=spec, **TINY[SharedBottom])
    model.compile()
    features, labels, masks = batch(data, spec, size=256)
    flipped = dict(labels)
    # Flip every cvr label where cvr is not observed: nothing may change.
    flipped["cvr"] = tf.where(masks["cvr"] > 0, labels["cvr"], 1.0 - labels["cvr"])
    assert float(tf.reduce_sum(tf.abs(flipped["cvr"] - labels["cvr"]))) > 10

    def loss_and_gradients(label_dict):
        with tf.GradientTape() as tape:
            loss = model.compute_loss((features, label_dict, masks))
        return loss, tape.gradient(loss, model.trainable_variables)

    loss_a, grads_a = loss_and_gradients(labels)
    loss_b, grads_b = loss_and_gradients(flipped)
    assert float(loss_a) == pytest.approx(float(loss_b), rel=1e-6)
    for a, b in zip(grads_a, grads_b):
        np.testing.assert_allclose(tf.convert_to_tensor(a), tf.convert_to_tensor(b), atol=1e-7)


def test_a_batch_without_any_label_of_a_task_adds_zero_for_it(synthetic_small):
    data, spec = synthetic_small
    model = MMoE(feature_spec=spec, **TINY[MMoE])
    model.compile()
    features, labels, masks = batch(data, spec, size=32)
    empty = dict(masks, cvr=tf.zeros_like(masks["cvr"]))
    with tf.GradientTape() as tape:
        loss = model.compute_loss((features, labels, empty))
    grads = tape.gradient(loss, model.towers["cvr"].trainable_variables)
    assert all(float(tf.reduce_sum(tf.abs(g))) == 0.0 for g in grads)
    assert np.isfinite(float(loss))


def test_fit_learns_and_reports_per_task_metrics(census_small):
    data, spec = census_small
    tf.keras.utils.set_random_seed(0)
    model = MMoE(feature_spec=spec, **TINY[MMoE])
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    history = model.fit(make_dataset(data, spec, batch_size=128, shuffle=True, seed=0), epochs=3, verbose=0).history
    for key in (
        "loss",
        "income_loss",
        "never_married_loss",
        "income_auc",
        "income_ap",
        "never_married_auc",
        "never_married_ap",
    ):
        assert key in history
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    predictions = model.predict(make_dataset(data, spec, batch_size=512, with_labels=False), verbose=0)
    # Never-married is nearly determined by age and household status: far above chance.
    assert roc_auc(data.labels["never_married"], predictions["never_married"]) > 0.95
    evaluated = model.evaluate(make_dataset(data, spec, batch_size=512), return_dict=True, verbose=0)
    assert evaluated["never_married_auc"] > 0.95


def test_unknown_task_weight_and_empty_tasks_are_refused(synthetic_small):
    _, spec = synthetic_small
    with pytest.raises(ValueError, match=r"unknown tasks \['ctcvr'\]"):
        MMoE(feature_spec=spec, task_weights={"ctcvr": 1.0})
    with pytest.raises(ValueError, match=r"Received: tasks=\(\)"):
        MMoE(feature_spec=spec, tasks=())
    with pytest.raises(ValueError, match="num_levels=0"):
        PLE(feature_spec=spec, num_levels=0)


@pytest.mark.parametrize("model_class", list(TINY), ids=lambda c: c.__name__)
def test_kernel_options_reach_every_dense_kernel_and_round_trip(model_class, census_small):
    data, spec = census_small
    features, _, _ = batch(data, spec, size=16)
    options = {
        "kernel_regularizer": {"class_name": "L2", "config": {"l2": 0.5}},
        "kernel_initializer": {"class_name": "Constant", "config": {"value": 0.01}},
    }
    model = model_class(feature_spec=spec, **TINY[model_class], **options)
    model(features)
    # The kernels of the MLPs, expert banks and logit layers (gates and embeddings excluded).
    layers = list(model._flatten_layers(include_self=False))
    dense_kernels = [k for layer in layers if isinstance(layer, Experts) for k in layer.kernels] + [
        layer.kernel for layer in layers if isinstance(layer, tf.keras.layers.Dense) and "gate" not in layer.name
    ]
    assert dense_kernels
    # Each dense kernel starts at 0.01 and adds 0.5 x sum(w^2) to the model's losses.
    for kernel in dense_kernels:
        np.testing.assert_allclose(kernel.numpy(), 0.01)
    expected = sum(0.5 * float(tf.reduce_sum(tf.square(k))) for k in dense_kernels)
    assert float(tf.add_n(model.losses)) == pytest.approx(expected, rel=1e-5)
    assert len(model.losses) == len(dense_kernels)
    config = model.get_config()
    assert config["kernel_regularizer"] == options["kernel_regularizer"]
    rebuilt = model_class.from_config(config)
    rebuilt(features)
    assert float(tf.add_n(rebuilt.losses)) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="Received: kernel_regularizer='l3'"):
        model_class(feature_spec=spec, **TINY[model_class], kernel_regularizer="l3")
