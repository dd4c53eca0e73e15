"""How each zoo model is exported by `tfzoo export`.

An exporter takes `(model, inputs, export_base, name, version)` (with `inputs` the run's
stored model-inputs description, e.g. the fitted feature spec config) and returns the
version directory it wrote. Models whose serving graph differs from "preprocessing, then
the model" (extracted experts, retrieval indexes, embedding signatures) register theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import tensorflow as tf

from tfzoo.export.grec import export_grec
from tfzoo.export.retrieval import export_retrieval_run
from tfzoo.export.saved_model import export_saved_model
from tfzoo.export.supermoe import export_supermoe
from tfzoo.models.registry import MODELS

Exporter = Callable[[tf.keras.Model, Any, "str | Path", str, "int | None"], Path]


def _default(model, inputs, export_base, name, version):
    return export_saved_model(model, inputs, export_base, name, version=version)


EXPORTERS: dict[str, Exporter] = {name: _default for name in MODELS}
EXPORTERS["grec"] = export_grec  # extracted experts for task-level routing
EXPORTERS["supermoe"] = export_supermoe  # channel tensors in; task probabilities and user_embedding
EXPORTERS["ssmtl"] = export_retrieval_run  # ScaNN and brute-force friend retrieval


# Options an exporter takes beyond the common ones (`tfzoo export --target-recall ...`).
EXPORT_OPTIONS: dict[str, tuple[str, ...]] = {"ssmtl": ("target_recall", "fusion")}


def export_model(
    model_name: str,
    model: tf.keras.Model,
    inputs: Any,
    export_base: str | Path,
    name: str,
    *,
    version: int | None = None,
    **options,
) -> Path:
    """Exports a trained zoo model the way its kind is served (with its exporter's
    `EXPORT_OPTIONS`, e.g. `target_recall` for an ANN index)."""
    if model_name not in EXPORTERS:
        raise ValueError(f"No exporter for model {model_name!r}; known: {sorted(EXPORTERS)}.")
    options = {key: value for key, value in options.items() if value is not None}
    unknown = sorted(set(options) - set(EXPORT_OPTIONS.get(model_name, ())))
    if unknown:
        raise ValueError(
            f"The {model_name} exporter takes no option(s) {unknown}; it takes "
            f"{list(EXPORT_OPTIONS.get(model_name, ())) or 'none'}."
        )
    return EXPORTERS[model_name](model, inputs, export_base, name, version, **options)
