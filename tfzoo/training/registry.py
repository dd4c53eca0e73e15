"""Model kinds by name: the one list of them.

Each entry names where the object that knows the model kind lives, as
`"module:attribute"`; the module is imported the first time the model is used, so that
listing the names (`tfzoo --help`, `tfzoo query`) imports no model code.
"""

from __future__ import annotations

import importlib
from typing import Any

TASKS: dict[str, str] = {
    "single_task": "tfzoo.training.families:RANKING",
    "shared_bottom": "tfzoo.training.families:RANKING",
    "mmoe": "tfzoo.training.families:RANKING",
    "ple": "tfzoo.training.families:RANKING",
    "grec": "tfzoo.training.families:RANKING",
    "supermoe": "tfzoo.training.families:BEHAVIOUR_SEQUENCES",
    "supermoe_mcp": "tfzoo.training.families:BEHAVIOUR_PRETRAINING",
    "ssmtl": "tfzoo.training.families:FRIEND_RETRIEVAL",
}

# Models with a pre-training stage (`tfzoo pretrain MODEL`): the model name of their pre-training runs.
PRETRAINING: dict[str, str] = {"supermoe": "supermoe_mcp"}


def trained_models() -> list[str]:
    """The models `tfzoo train` takes (pre-trainings run with `tfzoo pretrain`)."""
    return sorted(set(TASKS) - set(PRETRAINING.values()))


def task_for(model: str) -> Any:
    """The object that knows model kind `model` (imported on first use)."""
    if model not in TASKS:
        raise ValueError(f"Unknown model. Received: model={model!r}. Accepted: {', '.join(sorted(TASKS))}")
    module, attribute = TASKS[model].split(":")
    return getattr(importlib.import_module(module), attribute)
