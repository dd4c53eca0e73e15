"""GraphMAE's scaled cosine error (Hou et al. 2022), the SSMTL paper's eq. 4.

For the masked nodes V with original features x_i and reconstructions z_i:

    L_MAE = 1/|V| * sum_i (1 - x_i^T z_i / (||x_i|| ||z_i||)) ^ gamma,   gamma >= 1

A gamma above 1 down-weights nodes that are already reconstructed well (cosine near 1),
like a focal loss.
"""

from __future__ import annotations

import tensorflow as tf


def scaled_cosine_error(
    targets: tf.Tensor, reconstructions: tf.Tensor, *, gamma: float = 2.0, epsilon: float = 1e-12
) -> tf.Tensor:
    """Eq. 4 over the rows of `targets` and `reconstructions` ([m, d] each); a scalar.

    A zero row (no features, or a reconstruction of zeros) has cosine 0 with anything,
    i.e. error 1, as with `F.normalize` in GraphMAE's code.
    """
    if gamma < 1:
        raise ValueError(f"`gamma` must be >= 1. Received: gamma={gamma}")
    x = tf.math.l2_normalize(targets, axis=-1, epsilon=epsilon)  # [m, d]
    z = tf.math.l2_normalize(reconstructions, axis=-1, epsilon=epsilon)  # [m, d]
    cosine = tf.reduce_sum(x * z, axis=-1)  # [m]
    return tf.reduce_mean(tf.pow(1.0 - cosine, gamma))
