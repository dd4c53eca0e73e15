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
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2

from tfzoo.export.warmup import read_warmup_requests

_CHILD = r"""
import sys
from pathlib import Path
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
path, signature, inputs_dir, outputs_dir = sys.argv[1:5]
for library in sys.argv[5:]:
    tf.load_op_library(library)
inputs = {file.stem: tf.constant(tf.make_ndarray(tensor_pb2.TensorProto.FromString(file.read_bytes())))
          for file in Path(inputs_dir).glob("*.pb")}
loaded = tf.saved_model.load(path)
outputs = loaded.signatures[signature](**inputs)
if "tfzoo" in sys.modules:
    raise SystemExit("the SavedModel imported tfzoo: it is not self-contained")
for name, value in outputs.items():
    (Path(outputs_dir) / f"{name}.pb").write_bytes(tf.make_tensor_proto(value.numpy()).SerializeToString())
"""


# Tensors travel between the processes as serialized TensorProtos, one file per tensor:
# exact for every dtype. (NumPy's fixed-width string arrays drop trailing NUL bytes, which
# corrupted serialized protos that happened to end in one; pickling is not an option.)
def _write_tensors(directory: Path, tensors: Mapping[str, np.ndarray]) -> None:
    directory.mkdir()
    for name, value in tensors.items():
        (directory / f"{name}.pb").write_bytes(tf.make_tensor_proto(np.asarray(value)).SerializeToString())


def _read_tensors(directory: Path) -> dict[str, np.ndarray]:
    return {
        file.stem: tf.make_ndarray(tensor_pb2.TensorProto.FromString(file.read_bytes()))
        for file in sorted(directory.glob("*.pb"))
    }


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
        inputs_dir, outputs_dir = Path(tmp) / "inputs", Path(tmp) / "outputs"
        _write_tensors(inputs_dir, inputs)
        outputs_dir.mkdir()
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        result = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), signature, str(inputs_dir), str(outputs_dir), *op_libraries],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=tmp,
        )
        if result.returncode != 0:
            raise RuntimeError(f"loading {path} in a fresh process failed:\n{result.stderr[-3000:]}")
        return _read_tensors(outputs_dir)


def check_in_fresh_process(
    path: str | Path, *, op_libraries: Sequence[str] = (), atol: float = 1e-5, timeout: float = 180.0
) -> float:
    """Answers the first warm-up request of each signature of the export at `path` (a
    version directory) in a fresh TensorFlow-only process and in this one, and returns the
    largest absolute difference between the two over the numeric outputs.

    What TF Serving would do with the export (load it alone, answer its warm-up requests)
    without tfzoo; this process's answers come from the same SavedModel, loaded with
    `tf.saved_model.load` (so its ops, e.g. ScaNN's, must be registered here).

    Raises:
      RuntimeError: the export has no warm-up requests, the fresh process failed, or the
        answers differ (a non-numeric output, or by more than `atol`).
    """
    requests = {}
    for log in read_warmup_requests(path):
        request = log.predict_log.request
        requests.setdefault(request.model_spec.signature_name or "serving_default", request)
    if not requests:
        raise RuntimeError(f"{path} has no warm-up requests to answer")
    loaded = tf.saved_model.load(str(path))
    largest = 0.0
    for signature, request in requests.items():
        inputs = {key: tf.make_ndarray(value) for key, value in request.inputs.items()}
        fresh = call_in_fresh_process(path, inputs, signature=signature, op_libraries=op_libraries, timeout=timeout)
        here = {key: value.numpy() for key, value in loaded.signatures[signature](**inputs).items()}
        for key, want in here.items():
            got = fresh[key]
            if want.dtype.kind in "fc":
                finite = np.isfinite(want)
                same = np.array_equal(finite, np.isfinite(got)) and np.array_equal(want[~finite], got[~finite])
                difference = float(np.abs(got[finite] - want[finite]).max(initial=0.0)) if same else np.inf
                largest = max(largest, difference)
                if difference > atol:
                    raise RuntimeError(f"{path}: {signature}/{key} differs in a fresh process by {difference:.1e}")
            elif not np.array_equal(got, want):
                raise RuntimeError(f"{path}: {signature}/{key} differs in a fresh process")
    return largest
