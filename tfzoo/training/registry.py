"""Model kinds by name: the one list of them.

Each entry names, as `"module:attribute"`, the model's task (a
`tfzoo.training.task.ModelTask` subclass: its data, building, report and export) and its
model class. Both modules are imported the first time the model is used, so that listing
the names (`tfzoo --help`, `tfzoo query`) imports no model code. A new ranker over
tabular data is its model module and one line here (`RankingTask` does the rest); a
model whose data or export differ brings its task module too.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

TASKS: dict[str, tuple[str, str]] = {
    "single_task": ("tfzoo.tasks.ranking:RankingTask", "tfzoo.models.baselines:SingleTaskTowers"),
    "shared_bottom": ("tfzoo.tasks.ranking:RankingTask", "tfzoo.models.baselines:SharedBottom"),
    "mmoe": ("tfzoo.tasks.ranking:RankingTask", "tfzoo.models.baselines:MMoE"),
    "ple": ("tfzoo.tasks.ranking:RankingTask", "tfzoo.models.baselines:PLE"),
    "grec": ("tfzoo.tasks.grec:GRecTask", "tfzoo.models.grec:GRec"),
    "supermoe": ("tfzoo.tasks.supermoe:SuperMoETask", "tfzoo.models.supermoe:SuperMoE"),
    "supermoe_mcp": (
        "tfzoo.tasks.supermoe:MaskedChannelPretrainingTask",
        "tfzoo.models.supermoe:MaskedChannelPretrainer",
    ),
    "ssmtl": ("tfzoo.tasks.ssmtl:FriendRetrievalTask", "tfzoo.models.ssmtl:SSMTLRetrieval"),
}

# Models with a pre-training stage (`tfzoo pretrain MODEL`): the model name of their pre-training runs.
PRETRAINING: dict[str, str] = {"supermoe": "supermoe_mcp"}


def trained_models() -> list[str]:
    """The models `tfzoo train` takes (pre-trainings run with `tfzoo pretrain`)."""
    return sorted(set(TASKS) - set(PRETRAINING.values()))


def _attribute(path: str) -> Any:
    module, attribute = path.split(":")
    return getattr(importlib.import_module(module), attribute)


@functools.cache
def task_for(model: str) -> Any:
    """The `ModelTask` of model kind `model` (imported on first use; one per name)."""
    if model not in TASKS:
        raise ValueError(f"Unknown model. Received: model={model!r}. Accepted: {', '.join(sorted(TASKS))}")
    task_class, model_class = TASKS[model]
    return _attribute(task_class)(model, _attribute(model_class))
