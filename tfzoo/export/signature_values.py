"""Neutral input values for any signature.

Kept apart from `warmup` (which needs the data package's feature specs) so that the
serving client can fill a request from a signature's metadata without importing the
exporters, the data package or the models.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf


def synthesize_inputs(signature: Mapping[str, tf.TensorSpec], num_rows: int = 2) -> dict[str, np.ndarray]:
    """Neutral inputs for any signature: zeros, empty strings, False; unknown dims -> `num_rows` / 1.

    For signatures whose inputs carry no feature spec (ids, embeddings, query vectors);
    the leading unknown dimension is the batch.
    """
    inputs = {}
    for name, spec in signature.items():
        if spec.shape.rank is None:
            raise ValueError(f"Input {name!r} has unknown rank; pass its warm-up values explicitly.")
        shape = [
            num_rows if (d is None and i == 0) else (1 if d is None else d) for i, d in enumerate(spec.shape.as_list())
        ]
        dtype = tf.as_dtype(spec.dtype)
        if dtype == tf.string:
            inputs[name] = np.full(shape, b"", dtype=object)
        else:
            inputs[name] = np.zeros(shape, dtype=dtype.as_numpy_dtype)
    return inputs
