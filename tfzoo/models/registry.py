"""Zoo models by name, as the CLI and run configs refer to them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf

from tfzoo.data.features import DatasetSpec
from tfzoo.models.baselines import PLE, MMoE, SharedBottom, SingleTaskTowers
from tfzoo.models.grec import GRec
from tfzoo.models.supermoe import SuperMoE

MODELS: dict[str, type[tf.keras.Model]] = {
    "single_task": SingleTaskTowers,
    "shared_bottom": SharedBottom,
    "mmoe": MMoE,
    "ple": PLE,
    "grec": GRec,
    "supermoe": SuperMoE,
}


def build_model(
    name: str,
    feature_spec: DatasetSpec,
    *,
    tasks: Sequence[str] | None = None,
    options: Mapping[str, Any] | None = None,
) -> tf.keras.Model:
    """Model `name` for `feature_spec`, with constructor `options` (hyper-parameters)."""
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; choose one of {sorted(MODELS)}.")
    return MODELS[name](feature_spec=feature_spec, tasks=tasks, **dict(options or {}))
