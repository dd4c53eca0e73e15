"""tfzoo: multi-task and retrieval recommenders on TensorFlow, Keras 2 and TFRS.

TensorFlow Recommenders and TF-GNN are built on Keras 2 (`tf_keras`), so the legacy
Keras switch must be set before `tf.keras` is first touched; importing tfzoo first
does that for the whole process.

The subpackages load on first use (`tfzoo.models`, `from tfzoo.serving import Client`),
so that a light command (`tfzoo query`) pays for neither TFRS, TF-GNN nor ScaNN.
"""

import importlib
import os
import sys

# Keras 2 unless the program has asked for Keras 3 (`TF_USE_LEGACY_KERAS=0` before importing
# tfzoo): then only the portable layers of `tfzoo.layers` work (`tfzoo.layers.backend`).
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def _check_keras() -> None:
    """Fails if TensorFlow was imported before tfzoo and `tf.keras` already resolved to Keras 3.

    Without an earlier TensorFlow import there is nothing to check: TensorFlow reads the
    switch set above when `tf.keras` is first touched.
    """
    if "tensorflow" not in sys.modules or os.environ["TF_USE_LEGACY_KERAS"].strip().lower() not in ("1", "true"):
        return
    import tensorflow as tf

    if not tf.keras.__name__.startswith("tf_keras"):
        raise ImportError(
            "tfzoo needs Keras 2 (tf_keras) behind tf.keras, but tf.keras was already "
            f"resolved to {tf.keras.__name__!r}. Import tfzoo before anything touches "
            "tf.keras, or set TF_USE_LEGACY_KERAS=1 in the environment."
        )


_check_keras()

__version__ = "0.1.0"

_SUBPACKAGES = (
    "data",
    "evaluation",
    "export",
    "graph",
    "layers",
    "models",
    "objectives",
    "serving",
    "tasks",
    "training",
)

__all__ = [*_SUBPACKAGES, "__version__"]


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUBPACKAGES})
