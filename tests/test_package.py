"""`import tfzoo`: the Keras switch before anything touches tf.keras, subpackages on first use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tfzoo.training.registry import PRETRAINING, TASKS, task_for, trained_models

REPO = Path(__file__).resolve().parents[1]


def _fresh_python(code: str) -> subprocess.CompletedProcess:
    # Without the switch that conftest sets: tfzoo must set it itself.
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env.update(PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=REPO)


@pytest.mark.timeout(300)
def test_import_tfzoo_sets_the_keras_switch_and_imports_subpackages_on_first_use():
    result = _fresh_python(
        "import json, os, sys\n"
        "import tfzoo\n"
        "light = sorted(m for m in sys.modules if m.startswith(('tfzoo.', 'tensorflow')))\n"
        "switch = os.environ.get('TF_USE_LEGACY_KERAS')\n"
        "import tensorflow as tf\n"
        "keras = tf.keras.__name__.split('.')[0]\n"
        "models = tfzoo.models.MMoE\n"
        "print(json.dumps([light, switch, keras, 'tfzoo.models' in sys.modules, 'models' in dir(tfzoo)]))\n"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [[], "1", "tf_keras", True, True]


@pytest.mark.timeout(300)
def test_import_tfzoo_after_tf_keras_resolved_to_keras_3_fails_clearly():
    result = _fresh_python("import tensorflow as tf\ntf.keras.__name__\nimport tfzoo\n")
    assert result.returncode == 1
    assert "ImportError: tfzoo needs Keras 2 (tf_keras) behind tf.keras" in result.stderr


def test_every_model_kind_is_one_registry_line_naming_its_task_and_model_class():
    from tfzoo.models import (
        PLE,
        GRec,
        MaskedChannelPretrainer,
        MMoE,
        SharedBottom,
        SingleTaskTowers,
        SSMTLRetrieval,
        SuperMoE,
    )
    from tfzoo.tasks import FriendRetrievalTask, GRecTask, MaskedChannelPretrainingTask, RankingTask, SuperMoETask

    kinds = {model: (type(task_for(model)), task_for(model).model_class) for model in TASKS}
    assert kinds == {
        "single_task": (RankingTask, SingleTaskTowers),
        "shared_bottom": (RankingTask, SharedBottom),
        "mmoe": (RankingTask, MMoE),
        "ple": (RankingTask, PLE),
        "grec": (GRecTask, GRec),
        "supermoe": (SuperMoETask, SuperMoE),
        "supermoe_mcp": (MaskedChannelPretrainingTask, MaskedChannelPretrainer),
        "ssmtl": (FriendRetrievalTask, SSMTLRetrieval),
    }
    assert all(task_for(model) is task_for(model) and task_for(model).name == model for model in TASKS)
    assert trained_models() == sorted(set(TASKS) - set(PRETRAINING.values()))
    with pytest.raises(ValueError, match="Unknown model. Received: model='nope'"):
        task_for("nope")
