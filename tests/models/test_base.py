import numpy as np
import pytest
import tensorflow as tf

from tfzoo.models import LossTerm, ZooModel
from tfzoo.models.base import replica_rows, with_other_replicas


class _Quadratic(ZooModel):
    """loss = a mean-over-rows term and a sum-over-rows term of one weight."""

    def __init__(self):
        super().__init__()
        self.w = tf.Variable(1.0)
        self.track_loss_terms(["mean", "sum"])

    def loss_terms(self, inputs, training=False):
        return {
            "mean": LossTerm(tf.reduce_mean((self.w * inputs) ** 2), replica_mean=True),
            "sum": LossTerm(tf.reduce_sum(self.w * inputs), weight=0.5),
            "logged_only": LossTerm(tf.reduce_max(inputs), weight=0.0),
        }


def test_a_model_without_loss_terms_says_what_to_implement():
    class Forgetful(ZooModel):
        pass

    with pytest.raises(NotImplementedError, match="Forgetful must implement `loss_terms`"):
        Forgetful().compute_loss(tf.ones([2]))


def test_the_step_sums_weighted_terms_and_logs_each_term():
    model = _Quadratic()
    model.loss_trackers["logged_only"] = tf.keras.metrics.Mean(name="logged_only_loss")
    model.compile(optimizer=tf.keras.optimizers.SGD(0.1))
    x = tf.constant([1.0, 2.0, 3.0])
    # d/dw [mean((w x)^2) + 0.5 sum(w x)] at w = 1: 2 mean(x^2) + 0.5 sum(x) = 28/3 + 3.
    logs = model.train_step(x)
    assert float(model.w) == pytest.approx(1.0 - 0.1 * (28 / 3 + 3.0), rel=1e-6)
    assert float(logs["mean_loss"]) == pytest.approx(14 / 3, rel=1e-6)
    assert float(logs["sum_loss"]) == pytest.approx(6.0, rel=1e-6)
    assert float(logs["logged_only_loss"]) == pytest.approx(3.0)
    assert float(logs["loss"]) == pytest.approx(14 / 3 + 0.5 * 6.0, rel=1e-6)  # weight 0 stays out


def test_replica_helpers_are_the_identity_on_one_device():
    first, rows = replica_rows(tf.constant(5))
    assert (int(first), int(rows)) == (0, 5)
    a, b = with_other_replicas(tf.ones([3, 2]), tf.range(3))
    np.testing.assert_array_equal(b.numpy(), [0, 1, 2])
    assert a.shape == (3, 2)
