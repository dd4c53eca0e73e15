"""tfzoo: multi-task and retrieval recommenders on TensorFlow, Keras 2 and TFRS.

TensorFlow Recommenders and TF-GNN are built on Keras 2 (`tf_keras`), so the legacy
Keras switch must be set before `tf.keras` is first touched; importing tfzoo first
does that for the whole process.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import tensorflow as tf  # noqa: E402  (must follow the Keras switch)

if not tf.keras.__name__.startswith("tf_keras"):
    raise ImportError(
        "tfzoo needs Keras 2 (tf_keras) behind tf.keras, but tf.keras was already "
        f"resolved to {tf.keras.__name__!r}. Import tfzoo before anything touches "
        "tf.keras, or set TF_USE_LEGACY_KERAS=1 in the environment."
    )

from tfzoo import data  # noqa: E402
from tfzoo import evaluation  # noqa: E402
from tfzoo import layers  # noqa: E402
from tfzoo import graph  # noqa: E402
from tfzoo import objectives  # noqa: E402
from tfzoo import models  # noqa: E402
from tfzoo import training  # noqa: E402
from tfzoo import export  # noqa: E402

__version__ = "0.1.0"

__all__ = ["data", "evaluation", "export", "layers", "models", "training", "__version__"]
