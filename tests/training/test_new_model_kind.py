"""Adding a model kind is its module and one registry line (docs/architecture.md walks
through it): a ranker defined here, registered with one `TASKS` entry, trains with
`tfzoo train`, evaluates, and exports with `tfzoo export` like the zoo's own."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from tfzoo import cli
from tfzoo.data import FeaturePreprocessor
from tfzoo.export.warmup import example_rows
from tfzoo.layers import FeatureEncoder
from tfzoo.models import MultiTaskModel
from tfzoo.training import load_run, registry


class WideLogistic(MultiTaskModel):
    """Logistic regression on the embedded features, one per task: the whole module of a
    new ranker (a real one would add `get_config` and a sibling test)."""

    def __init__(self, *, feature_spec, tasks=None, task_weights=None, embedding_dim: int = 4, **kwargs):
        super().__init__(feature_spec=feature_spec, tasks=tasks, task_weights=task_weights, **kwargs)
        self.embedding_dim = embedding_dim
        self.encoder = FeatureEncoder(self.feature_spec, embedding_dim=embedding_dim)
        self.trunk = tf.keras.layers.Identity()
        self.towers = {t: tf.keras.layers.Dense(1, name=f"{t}_logit") for t in self.tasks}


@pytest.fixture
def registered(monkeypatch):
    # The one line a contributor adds to `tfzoo.training.registry.TASKS`.
    monkeypatch.setitem(
        registry.TASKS, "wide_logistic", ("tfzoo.tasks.ranking:RankingTask", f"{__name__}:WideLogistic")
    )
    registry.task_for.cache_clear()
    yield
    registry.task_for.cache_clear()


def test_a_ranker_registered_with_one_line_trains_evaluates_and_exports(registered, tmp_path, capsys):
    run_dir, export_base = tmp_path / "run", tmp_path / "savedmodels"
    train = ["train", "wide_logistic", "--dataset", "synthetic", "--epochs", "1", "--batch-size", "1024"]
    assert cli.main([*train, "--option", "embedding_dim=2", "--out", str(run_dir)]) == 0
    assert "wide_logistic (test)" in capsys.readouterr().out
    assert json.loads((run_dir / "config.json").read_text())["run"]["model_options"] == {"embedding_dim": 2}
    # Its options are its constructor's, checked like any model's.
    assert cli.main([*train, "--option", "depth=3", "--out", str(tmp_path / "other")]) == 1
    assert "Received: option='depth'. Accepted: embedding_dim, task_weights" in capsys.readouterr().err

    assert cli.main(["export", "--run", str(run_dir), "--to", str(export_base)]) == 0
    run = load_run(run_dir, with_data=False)
    assert isinstance(run.model, WideLogistic) and run.model.encoder.embedding_dim == 2
    spec = run.inputs.feature_spec
    rows = example_rows(spec, num_rows=3)
    served = tf.saved_model.load(str(export_base / "wide_logistic_synthetic" / "1")).signatures["serving_default"](
        **{name: tf.constant(values) for name, values in rows.items()}
    )
    in_process = run.model(FeaturePreprocessor(spec)({name: tf.constant(values) for name, values in rows.items()}))
    assert set(served) == set(in_process) == set(spec.labels)
    for task, probability in in_process.items():
        np.testing.assert_allclose(served[task].numpy(), probability.numpy(), rtol=1e-5, atol=1e-6)
