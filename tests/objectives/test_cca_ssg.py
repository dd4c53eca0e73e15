import numpy as np
import pytest
import tensorflow as tf

from tfzoo.objectives import cca_ssg_loss, standardize_features


def _numpy_cca(z_a, z_b, lam):
    """Eq. 3 written directly from the paper: per-feature zero mean, 1/sqrt(n) std."""
    n = z_a.shape[0]

    def standardize(z):
        return (z - z.mean(0)) / z.std(0) / np.sqrt(n)

    a, b = standardize(z_a), standardize(z_b)
    eye = np.eye(z_a.shape[1])
    return np.sum((a - b) ** 2) + lam * (np.sum((a.T @ a - eye) ** 2) + np.sum((b.T @ b - eye) ** 2))


def test_standardized_columns_have_zero_mean_and_unit_norm():
    z = np.random.default_rng(0).normal(3.0, 2.0, (7, 4)).astype(np.float32)
    out = standardize_features(tf.constant(z)).numpy()
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-6)
    np.testing.assert_allclose(out.std(0), 1 / np.sqrt(7), rtol=1e-5)
    np.testing.assert_allclose(np.diag(out.T @ out), 1.0, rtol=1e-5)


@pytest.mark.parametrize("lam", [0.0, 5e-3, 1.0])
def test_cca_loss_matches_numpy_reference(lam):
    rng = np.random.default_rng(1)
    z_a = rng.normal(size=(9, 5))
    z_b = z_a + 0.3 * rng.normal(size=(9, 5))
    loss = cca_ssg_loss(tf.constant(z_a, tf.float64), tf.constant(z_b, tf.float64), decorrelation_weight=lam)
    np.testing.assert_allclose(loss.numpy(), _numpy_cca(z_a, z_b, lam), rtol=1e-6)


def test_cca_loss_by_hand_on_whitened_identical_views():
    # Two identical views whose standardised columns are orthonormal: every term is 0.
    z = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert cca_ssg_loss(tf.constant(z), tf.constant(z), decorrelation_weight=1.0).numpy() == pytest.approx(
        0.0, abs=1e-6
    )
    # Standardised columns are +-0.5. Swapping the columns of one view: A - B has rows
    # 0, (1, -1), (-1, 1), 0, so the invariance term is 4 and the views stay whitened.
    swapped = z[:, ::-1]
    assert cca_ssg_loss(tf.constant(z), tf.constant(swapped), decorrelation_weight=1.0).numpy() == pytest.approx(4.0)
