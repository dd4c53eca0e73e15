"""Export of GRec: with task-level routing, its extracted experts (one signature per task).

A GRec routed by task or task sentence is exported as its `ExtractedGRec`: the
SavedModel holds the encoders, transformer and towers, and per task only the k experts
its router chose, with fixed gates; the router and the other experts are not in it.

Signatures:
- `serving_default`: the raw features (the flow included) -> probability of every use
  case, each row through its own (flow, use case) tasks' experts;
- `<flow>_<use_case>` for every known flow and use case (`<use_case>` without flows):
  the raw features without the flow -> {use_case: probability}, every row treated as
  being in that flow; its graph runs that task's k experts only, so its cost does not
  depend on the model's number of experts.

Other routings export the full model (`export_saved_model`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tensorflow as tf

from tfzoo.data.features import as_spec
from tfzoo.data.preprocessing import FeaturePreprocessor
from tfzoo.export.saved_model import ServingModule, export_saved_model


def _task_signature(features_spec, flow: int, use_case: str):
    def build(module: ServingModule):
        if not hasattr(module, "task_preprocessor"):
            # Tracked by the module, so its lookup tables are saved with it.
            module.task_preprocessor = FeaturePreprocessor(features_spec)

        def serve(features):
            return module.model.task_probability(module.task_preprocessor(features), flow, use_case)

        return tf.function(serve, input_signature=[features_spec.serving_signature()]).get_concrete_function()

    return build


def export_grec(
    model, inputs: Any, export_base: str | Path, name: str, version: int | None = None, *, extract: bool = True
) -> Path:
    """Exports a trained GRec; see the module docstring. `extract=False` exports the full model."""
    if not extract or not getattr(model, "extractable", False):
        return export_saved_model(model, inputs, export_base, name, version=version)
    spec = as_spec(inputs)
    extracted = model.extract()
    without_flow = spec.select([n for n in spec.feature_names if n != extracted.flow_feature])
    signatures = {
        signature: _task_signature(without_flow, flow, use_case)
        for signature, (flow, use_case) in extracted.task_signatures().items()
    }
    return export_saved_model(extracted, spec, export_base, name, version=version, extra_signatures=signatures)
