"""A reopened run is the model that was trained: its test metrics are the ones training wrote.

`load_run` rebuilds a model from `config.json` (written with sorted keys) and restores its
checkpoint; a model whose computation depends on the order of a mapping among its
options (channels, tokens) would restore every weight and still compute something else.
The options here are given in non-alphabetical order on purpose.
"""

import pytest

from tests.serving.helpers import TINY_OPTIONS
from tfzoo.training import RunConfig, evaluate, train

RUNS = {
    # Tokens "user" before "item"; channels are the data's ("title" before "interval").
    "grec": (
        "synthetic",
        {**TINY_OPTIONS["grec"], "token_features": {"user": ["cat_0", "num_0"], "item": ["item_vector"]}},
    ),
    "supermoe": ("generated_sequences", {"encoder": {"units": 8, "num_heads": 2, "key_dim": 4, "ffn_units": 8}}),
}


@pytest.mark.parametrize("model_name", sorted(RUNS))
def test_reopened_run_reports_what_training_reported(model_name, tmp_path):
    dataset, options = RUNS[model_name]
    config = RunConfig(model=model_name, dataset=dataset, epochs=1, batch_size=512, patience=0, model_options=options)
    trained = train(config, tmp_path / "run", verbose=0)["test"]
    reopened = evaluate(tmp_path / "run")["tasks"]
    assert sorted(reopened) == sorted(trained)
    for task, metrics in trained.items():
        assert reopened[task]["auc"] == pytest.approx(metrics["auc"], abs=1e-6), task
