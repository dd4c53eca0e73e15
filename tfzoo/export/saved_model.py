"""SavedModel export in the TF Serving layout: `<export_base>/<name>/<version>/`.

The exported graph holds the `FeaturePreprocessor` in front of the model, so clients send
raw features by their data names (strings, floats, ints; batched along axis 0) and the
SavedModel loads with `tf.saved_model.load` alone: no tfzoo, no Keras classes. Every
version holds warm-up requests (`assets.extra/tf_serving_warmup_requests`) and the model is
listed in `<export_base>/models.config`, so TF Serving and `tfzoo serve` pick it up as is.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import tensorflow as tf

from tfzoo import progress
from tfzoo.data.features import DatasetSpec, as_spec
from tfzoo.data.preprocessing import FeaturePreprocessor
from tfzoo.export.models_config import add_to_models_config
from tfzoo.export.warmup import WARMUP_DIRECTORY, warmup_logs, write_warmup_requests


def hold_untracked(module: tf.Module, name: str, model: tf.keras.Model) -> None:
    """`module.<name> = model` without tracking the Keras object: `save_version` keeps
    the model's variables (as `module.<name>_variables`, once the signatures have built
    them), and a SavedModel of `module` holds those and the signatures only. Tracked,
    every layer of the model would be serialized with its call functions traced, about
    half of an export's time (measured on SUPER-MoE: 14-17 s -> 7-10 s); nothing loads
    those, a servable is its signatures."""
    held = getattr(module, "_held_models", None)
    if held is None:
        held = {}
        _set_untracked(module, "_held_models", held)
    held[name] = model
    _set_untracked(module, name, model)


@tf.__internal__.tracking.no_automatic_dependency_tracking
def _set_untracked(module: tf.Module, name: str, value) -> None:
    setattr(module, name, value)


def _track_held_variables(module: tf.Module) -> None:
    for name, model in getattr(module, "_held_models", {}).items():
        setattr(module, f"{name}_variables", list(model.variables))


class ServingModule(tf.Module):
    """What a SavedModel holds: the preprocessing and the model's variables."""

    def __init__(self, model: tf.keras.Model, feature_spec: DatasetSpec):
        super().__init__(name="tfzoo_serving")
        hold_untracked(self, "model", model)
        self.feature_spec = feature_spec
        self.preprocessor = FeaturePreprocessor(feature_spec)

    def predict_raw(self, features: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return self.model(self.preprocessor(features), training=False)


def next_version(model_dir: str | Path) -> int:
    """One more than the highest numeric version under `model_dir` (1 if none)."""
    model_dir = Path(model_dir)
    versions = (
        [int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()] if model_dir.exists() else []
    )
    return max(versions, default=0) + 1


def write_atomically(target: Path, write: Callable[[Path], None]) -> Path:
    """Runs `write(tmp_dir)` and renames the result to `target` in one step.

    Readers (TF Serving polls the model directory) see either no version or a complete
    one. The temporary name starts with a dot and is not numeric, so servers ignore it.
    """
    if target.exists():
        raise FileExistsError(f"{target} already exists; versions are immutable, export a new version instead.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
    try:
        write(tmp)
        os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def export_saved_model(
    model: tf.keras.Model,
    feature_spec: DatasetSpec | Mapping[str, Any],
    export_base: str | Path,
    name: str,
    *,
    version: int | None = None,
    extra_signatures: Mapping[str, Callable[[ServingModule], tf.types.experimental.ConcreteFunction]] | None = None,
    options: tf.saved_model.SaveOptions | None = None,
    warmup_inputs: Mapping[str, Mapping[str, Any]] | None = None,
    register: bool = True,
) -> Path:
    """Exports `model` behind its preprocessing as `<export_base>/<name>/<version>/`.

    Args:
      model: a zoo model whose call maps preprocessed features to a dict of outputs.
      feature_spec: the fitted spec the model was trained with.
      export_base: the model base path (e.g. `savedmodels`).
      name: the model name under the base path.
      version: the version number; default one more than the highest existing.
      extra_signatures: more signatures, each built from the `ServingModule`.
      options: `tf.saved_model.SaveOptions` (e.g. a namespace whitelist for custom ops).
      warmup_inputs: warm-up inputs per signature name; signatures not listed get rows
        synthesised from `feature_spec` (inputs named after features) or neutral values.
        Every warm-up request is run once here, so a bad one fails the export, not the
        server's load.
      register: add the model to `<export_base>/models.config`.

    Returns:
      The version directory. `serving_default` takes the raw features of
      `feature_spec.serving_signature()` and returns the model's output dict (for the
      multi-task rankers: the probability of each task, [batch] each).
    """
    spec = as_spec(feature_spec)
    module = ServingModule(model, spec)
    serve = tf.function(module.predict_raw, input_signature=[spec.serving_signature()])
    signatures = {"serving_default": serve.get_concrete_function()}
    for signature_name, build in (extra_signatures or {}).items():
        signatures[signature_name] = build(module)
    return save_version(
        module,
        signatures,
        export_base,
        name,
        version=version,
        options=options,
        feature_spec=spec,
        warmup_inputs=warmup_inputs,
        register=register,
    )


def save_version(
    module: tf.Module,
    signatures: Mapping[str, tf.types.experimental.ConcreteFunction],
    export_base: str | Path,
    name: str,
    *,
    version: int | None = None,
    options: tf.saved_model.SaveOptions | None = None,
    feature_spec: DatasetSpec | None = None,
    warmup_inputs: Mapping[str, Mapping[str, Any]] | None = None,
    register: bool = True,
    extra_files: Mapping[str, str] | None = None,
) -> Path:
    """Saves `module` with `signatures` as the servable `<export_base>/<name>/<version>/`.

    What every zoo exporter shares: the version (default: the next free one) is written
    atomically with its warm-up requests (checked against the signatures first, see
    `warmup_logs`) and any `extra_files` ({file name: text}, in `assets.extra/` beside
    them: metadata that servers leave alone), and the model is added to
    `<export_base>/models.config` unless `register` is False. Returns the version directory.
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"`name` must be a plain directory name. Received: name={name!r}")
    model_dir = Path(export_base) / name
    version = next_version(model_dir) if version is None else int(version)
    if version < 1:
        raise ValueError(f"`version` must be >= 1. Received: version={version}")
    logs = warmup_logs(name, signatures, feature_spec=feature_spec, inputs=warmup_inputs)

    _track_held_variables(module)  # the signatures are traced: every variable exists

    def write(tmp: Path) -> None:
        tf.saved_model.save(module, str(tmp), signatures=signatures, options=options)
        write_warmup_requests(tmp, logs)
        for file_name, text in (extra_files or {}).items():
            (tmp / WARMUP_DIRECTORY).mkdir(exist_ok=True)
            (tmp / WARMUP_DIRECTORY / file_name).write_text(text)

    with progress.step(
        f"saving {model_dir / str(version)} ({len(signatures)} signatures, {len(logs)} warm-up requests)"
    ):
        path = write_atomically(model_dir / str(version), write)
    if register:
        add_to_models_config(export_base, name)
    return path
