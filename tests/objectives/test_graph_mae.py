import numpy as np
import pytest
import tensorflow as tf

from tfzoo.objectives import scaled_cosine_error


def _numpy_sce(x, z, gamma):
    """Eq. 4: mean over nodes of (1 - cos(x_i, z_i)) ** gamma."""
    cosine = np.sum(x * z, 1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(z, axis=1))
    return np.mean((1 - cosine) ** gamma)


@pytest.mark.parametrize("gamma", [1.0, 2.0, 3.0])
def test_scaled_cosine_error_matches_numpy_reference(gamma):
    rng = np.random.default_rng(0)
    x = (rng.random((6, 10)) < 0.3).astype(np.float32) + np.eye(6, 10, dtype=np.float32)
    z = rng.normal(size=(6, 10)).astype(np.float32)
    np.testing.assert_allclose(scaled_cosine_error(x, z, gamma=gamma).numpy(), _numpy_sce(x, z, gamma), rtol=1e-5)


def test_scaled_cosine_error_by_hand():
    # Rows: identical (cos 1, error 0), orthogonal (cos 0, error 1), opposite (cos -1, error 2^2 = 4).
    x = tf.constant([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    z = tf.constant([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]])
    assert scaled_cosine_error(x, z, gamma=2.0).numpy() == pytest.approx((0 + 1 + 4) / 3)


def test_gamma_below_one_is_rejected():
    with pytest.raises(ValueError, match="gamma=0.5"):
        scaled_cosine_error(tf.ones([1, 2]), tf.ones([1, 2]), gamma=0.5)
