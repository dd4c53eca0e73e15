"""Calls an exported signature in a fresh Python process that imports TensorFlow only.

This is how TF Serving sees an export: no tfzoo, no Keras classes. The child process
fails if anything pulls tfzoo in, so a passing call proves the SavedModel is
self-contained.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

_CHILD = r"""
import sys
import numpy as np
import tensorflow as tf
path, signature, inputs_file, outputs_file = sys.argv[1:5]
for library in sys.argv[5:]:
    tf.load_op_library(library)
with np.load(inputs_file) as stored:
    inputs = {name: tf.constant(stored[name]) for name in stored.files}
loaded = tf.saved_model.load(path)
outputs = loaded.signatures[signature](**inputs)
if "tfzoo" in sys.modules:
    raise SystemExit("the SavedModel imported tfzoo: it is not self-contained")
np.savez(outputs_file, **{name: value.numpy() for name, value in outputs.items()})
"""


def call_in_fresh_process(
    path: str | Path,
    inputs: Mapping[str, np.ndarray],
    *,
    signature: str = "serving_default",
    op_libraries: Sequence[str] = (),
    timeout: float = 180.0,
) -> dict[str, np.ndarray]:
    """Outputs of `signature` of the SavedModel at `path` on `inputs`, computed in a new
    interpreter that never imports tfzoo (after loading `op_libraries`, e.g. ScaNN's)."""
    # The child runs in a scratch directory (so that the working tree's tfzoo cannot be
    # imported by accident): relative paths are resolved here.
    path = Path(path).resolve()
    op_libraries = [str(Path(library).resolve()) for library in op_libraries]
    with tempfile.TemporaryDirectory() as tmp:
        inputs_file, outputs_file = Path(tmp) / "inputs.npz", Path(tmp) / "outputs.npz"
        # Strings travel as fixed-width unicode so that no pickling is involved.
        np.savez(inputs_file, **{k: (np.asarray(v).astype(str) if np.asarray(v).dtype == object else np.asarray(v))
                                 for k, v in inputs.items()})
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        result = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), signature, str(inputs_file), str(outputs_file), *op_libraries],
            capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp,
        )
        if result.returncode != 0:
            raise RuntimeError(f"loading {path} in a fresh process failed:\n{result.stderr[-3000:]}")
        with np.load(outputs_file) as stored:
            return {name: stored[name] for name in stored.files}
