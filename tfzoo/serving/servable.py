"""One loaded version of a model: its SavedModel, its signatures, and how to run them.

Any SavedModel works (TF2 `tf.saved_model.save`, TF1 `SavedModelBuilder`): the
SignatureDefs of the `serve` meta graph say what the version offers, and
`tf.saved_model.load` gives the functions that run them. Ops that TensorFlow does not
know (ScaNN's `Scann>...` ops of a retrieval index) are found in the graph before
loading and their op library is registered first.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow.python.framework import op_def_registry

from tfzoo.serving.batching import BatchingOptions, SignatureBatcher
from tfzoo.serving.errors import from_tf_error_code, invalid_argument, not_found
from tfzoo.serving.tensors import INTERNAL_SIGNATURE_PREFIX, Signature

logger = logging.getLogger("tfzoo.serving")

SERVE_TAG = "serve"
# Signatures that TF2 adds for itself (`INTERNAL_SIGNATURE_PREFIX`) are listed in metadata
# (as TF Serving does) but are not served.


def _scann_op_library() -> Path | None:
    # Located without importing scann (importing it pulls its builder and registers the ops).
    spec = importlib.util.find_spec("scann")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "scann_ops" / "cc" / "_scann_ops.so"
    return path if path.exists() else None


# Op-name prefix -> finder of the library that registers those ops.
CUSTOM_OP_LIBRARIES = {"Scann>": _scann_op_library}

_op_library_lock = threading.Lock()
_loaded_op_libraries: set[str] = set()


def read_saved_model(path: str | Path) -> saved_model_pb2.SavedModel:
    """The SavedModel proto of a version directory (`saved_model.pb` or `.pbtxt`)."""
    path = Path(path)
    proto = saved_model_pb2.SavedModel()
    binary, text = path / "saved_model.pb", path / "saved_model.pbtxt"
    if binary.exists():
        proto.ParseFromString(binary.read_bytes())
    elif text.exists():
        text_format.Parse(text.read_text(), proto)
    else:
        raise FileNotFoundError(f"{path} holds no saved_model.pb or saved_model.pbtxt.")
    return proto


def serving_meta_graph(proto: saved_model_pb2.SavedModel, path: Path) -> meta_graph_pb2.MetaGraphDef:
    tagged = [m for m in proto.meta_graphs if SERVE_TAG in m.meta_info_def.tags]
    if not tagged:
        tags = [list(m.meta_info_def.tags) for m in proto.meta_graphs]
        raise ValueError(f"{path}: no meta graph is tagged {SERVE_TAG!r} (tags: {tags}).")
    exact = [m for m in tagged if set(m.meta_info_def.tags) == {SERVE_TAG}]
    return (exact or tagged)[0]


def graph_op_names(meta_graph: meta_graph_pb2.MetaGraphDef) -> set[str]:
    """Every op type in the graph and its function library."""
    ops = {node.op for node in meta_graph.graph_def.node}
    for function in meta_graph.graph_def.library.function:
        ops.update(node.op for node in function.node_def)
    return ops


def unregistered_ops(op_names: Iterable[str]) -> list[str]:
    return sorted(op for op in op_names if op_def_registry.get(op) is None)


def register_custom_ops(op_names: Iterable[str], extra_libraries: Sequence[str | Path] = ()) -> list[str]:
    """Registers the op libraries that `op_names` need; returns the libraries loaded now.

    Known libraries (ScaNN) are found by op-name prefix; `extra_libraries` (.so files) are
    loaded when ops are still missing after that.

    Raises:
      ValueError: ops remain unknown; the message names them and how to provide them.
    """
    missing = unregistered_ops(op_names)
    if not missing:
        return []
    loaded = []
    with _op_library_lock:
        candidates = []
        for prefix, find in CUSTOM_OP_LIBRARIES.items():
            if any(op.startswith(prefix) for op in missing):
                library = find()
                if library is None:
                    raise ValueError(
                        f"The graph uses ops {[o for o in missing if o.startswith(prefix)]}, whose library "
                        f"is not installed (for 'Scann>' ops: pip install scann)."
                    )
                candidates.append(str(library))
        candidates.extend(str(p) for p in extra_libraries)
        for library in candidates:
            if library in _loaded_op_libraries or not unregistered_ops(missing):
                continue
            tf.load_op_library(library)
            _loaded_op_libraries.add(library)
            loaded.append(library)
    still_missing = unregistered_ops(missing)
    if still_missing:
        raise ValueError(
            f"The graph uses ops that no loaded library registers: {still_missing}. "
            "Pass the .so that defines them with --custom-op-library."
        )
    return loaded


class ServableVersion:
    """A loaded version: `signature(name)`, `run(signature, inputs)`, `close()`.

    Args:
      model: the model name.
      version: the version number.
      path: the version directory.
      batching: merge concurrent calls of batchable signatures (None: no batching).
      custom_op_libraries: extra op libraries to register if the graph needs them.
    """

    def __init__(
        self,
        model: str,
        version: int,
        path: str | Path,
        *,
        batching: BatchingOptions | None = None,
        custom_op_libraries: Sequence[str | Path] = (),
    ):
        self.model = model
        self.version = version
        self.path = Path(path)
        self.batching = batching
        self.custom_op_libraries = tuple(custom_op_libraries)
        self.meta_graph: meta_graph_pb2.MetaGraphDef | None = None
        self.signatures: dict[str, Signature] = {}
        self._loaded = None
        self._batchers: dict[str, SignatureBatcher] = {}
        self._batchers_lock = threading.Lock()
        self._closed = False

    def load(self) -> None:
        """Reads the graph, registers custom ops it needs, loads variables and signatures."""
        self.meta_graph = serving_meta_graph(read_saved_model(self.path), self.path)
        libraries = register_custom_ops(graph_op_names(self.meta_graph), self.custom_op_libraries)
        if libraries:
            logger.info("%s/%d: registered op libraries %s", self.model, self.version, libraries)
        self._loaded = tf.saved_model.load(str(self.path), tags=[SERVE_TAG])
        functions = self._loaded.signatures
        for name, signature_def in sorted(self.meta_graph.signature_def.items()):
            if name.startswith(INTERNAL_SIGNATURE_PREFIX):
                continue
            if name not in functions:
                logger.warning(
                    "%s/%d: signature %r has no function after loading; not served", self.model, self.version, name
                )
                continue
            self.signatures[name] = Signature.from_signature_def(name, signature_def, functions[name])

    @property
    def signature_defs(self) -> Mapping[str, meta_graph_pb2.SignatureDef]:
        """All SignatureDefs of the meta graph (what GetModelMetadata reports)."""
        return self.meta_graph.signature_def

    def signature(self, name: str) -> Signature:
        if name not in self.signatures:
            raise not_found(
                f"Serving signature key {name!r} not found in model {self.model!r} version {self.version}; "
                f"it has {sorted(self.signatures)}."
            )
        return self.signatures[name]

    def run(self, signature: Signature, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs `signature` on checked inputs (batched with concurrent calls if enabled)."""
        if self.batching is not None and signature.batchable and not self._closed:
            return self._batcher(signature).run(inputs)
        return self._call(signature, inputs)

    def _batcher(self, signature: Signature) -> SignatureBatcher:
        with self._batchers_lock:
            if signature.name not in self._batchers:
                self._batchers[signature.name] = SignatureBatcher(
                    lambda inputs: self._call(signature, inputs),
                    self.batching,
                    name=f"{self.model}/{self.version}/{signature.name}",
                )
            return self._batchers[signature.name]

    @property
    def batches_run(self) -> int:
        return sum(b.batches_run for b in self._batchers.values())

    def _call(self, signature: Signature, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            tensors = {k: tf.constant(v, dtype=signature.inputs[k].dtype) for k, v in inputs.items()}
            outputs = signature.function(**tensors)
            return {k: np.asarray(v) for k, v in outputs.items()}
        except tf.errors.OpError as error:
            raise from_tf_error_code(
                error.error_code, f"{self.model}/{self.version}/{signature.name}: {error.message}"
            ) from None
        except (TypeError, ValueError) as error:
            raise invalid_argument(f"{self.model}/{self.version}/{signature.name}: {error}") from None

    def close(self) -> None:
        """Stops batch threads; requests still holding this version run unbatched."""
        self._closed = True
        with self._batchers_lock:
            batchers, self._batchers = list(self._batchers.values()), {}
        for batcher in batchers:
            batcher.close()

    def __repr__(self) -> str:
        return f"ServableVersion({self.model!r}, {self.version}, signatures={sorted(self.signatures)})"
