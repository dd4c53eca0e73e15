"""The Keras that the zoo's portable layers subclass: one source for both Keras versions.

Inside tfzoo (and wherever TensorFlow Recommenders or TF-GNN are used) the legacy switch
`TF_USE_LEGACY_KERAS=1` is on, which `import tfzoo` sets by default: the layers are
`tf_keras` (Keras 2) layers, as TFRS and TF-GNN require. A program that turns the switch
off before importing tfzoo (`TF_USE_LEGACY_KERAS=0`) gets the same layers as Keras 3
layers on Keras 3's TensorFlow backend, usable in any Keras 3 model (keras-rs, keras-hub);
the zoo's models, built on TFRS and TF-GNN, are then unavailable.

The layers use only what both Keras versions share (`keras.layers.Layer`, `add_weight`,
`add_loss`, layer metrics, initializers, regularizers, serialization), with TensorFlow
ops inside `call`.
"""

from __future__ import annotations

import os

LEGACY_KERAS = os.environ.get("TF_USE_LEGACY_KERAS", "1").strip().lower() in ("1", "true")

if LEGACY_KERAS:
    import tf_keras as keras
else:
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ImportError(
            "tfzoo's layers run TensorFlow ops: Keras 3 needs the TensorFlow backend. "
            f"Received: KERAS_BACKEND={keras.backend.backend()!r}. Accepted: 'tensorflow'"
        )

__all__ = ["LEGACY_KERAS", "keras"]
