"""CCA-SSG (Zhang et al. 2021), the SSMTL paper's eq. 3.

Two augmented views of the same nodes give embeddings `Z_A`, `Z_B` [n, k]. Each feature
(column) is standardised over the n nodes to zero mean and standard deviation 1/sqrt(n),
so that `Z~^T Z~` is the feature correlation matrix; then

    L_CCA = ||Z~_A - Z~_B||_F^2 + lambda * (||Z~_A^T Z~_A - I||_F^2 + ||Z~_B^T Z~_B - I||_F^2)

The first (invariance) term pulls the two views of each node together, the second
(decorrelation) term pushes each view's features towards uncorrelated, unit-variance
ones, which prevents the collapse the first term alone would reach.
"""

from __future__ import annotations

import tensorflow as tf


def standardize_features(z: tf.Tensor, *, epsilon: float = 1e-8) -> tf.Tensor:
    """[n, k] -> [n, k] with every column of zero mean and standard deviation 1/sqrt(n).

    The standard deviation is the population one (divides by n), so every column of the
    result has unit norm and `Z~^T Z~` has ones on its diagonal. (CCA-SSG's code divides
    by the n - 1 sample deviation; the difference is a factor (n - 1) / n.)
    """
    n = tf.cast(tf.shape(z)[0], z.dtype)
    mean, variance = tf.nn.moments(z, axes=[0])  # [k], [k]
    return (z - mean) / tf.sqrt(variance + epsilon) / tf.sqrt(n)


def cca_ssg_loss(z_a: tf.Tensor, z_b: tf.Tensor, *, decorrelation_weight: float) -> tf.Tensor:
    """Eq. 3 for two views `z_a`, `z_b` [n, k] of the same n nodes (rows aligned); a scalar."""
    a = standardize_features(z_a)  # [n, k]
    b = standardize_features(z_b)  # [n, k]
    identity = tf.eye(tf.shape(a)[1], dtype=a.dtype)  # [k, k]
    invariance = tf.reduce_sum(tf.square(a - b))
    decorrelation = tf.reduce_sum(tf.square(tf.matmul(a, a, transpose_a=True) - identity)) + tf.reduce_sum(
        tf.square(tf.matmul(b, b, transpose_a=True) - identity)
    )
    return invariance + decorrelation_weight * decorrelation
