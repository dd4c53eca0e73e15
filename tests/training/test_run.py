import dataclasses
import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tfzoo import cli
from tfzoo.models import MultiTaskModel
from tfzoo.training import RunConfig, TrainingDivergedError, evaluate, load_run, train

TINY_MMOE = {"embedding_dim": 2, "num_experts": 2, "expert_units": [8], "tower_units": [4]}


def config(**overrides):
    settings = dict(model="mmoe", dataset="synthetic", epochs=2, batch_size=1024, seed=3, model_options=TINY_MMOE)
    settings.update(overrides)
    return RunConfig(**settings)


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory):
    """A finished one-epoch run, trained once; tests that continue it work on a copy."""
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    return run_dir, train(config(epochs=1), run_dir, verbose=0)


def copy_of(run_dir, tmp_path):
    shutil.copytree(run_dir, tmp_path / "copy")
    return tmp_path / "copy"


def test_run_directory_holds_config_checkpoints_logs_and_metrics(one_epoch_run):
    run_dir, metrics = one_epoch_run
    stored = json.loads((run_dir / "config.json").read_text())
    assert stored["run"]["model"] == "mmoe" and stored["run"]["seed"] == 3
    assert stored["inputs"]["spec"]["labels"] == ["ctr", "atc", "cvr"]
    assert "seed 0" in stored["split"]
    assert tf.train.latest_checkpoint(str(run_dir / "checkpoints")).endswith("ckpt-1")
    assert list((run_dir / "logs").rglob("events.out.tfevents.*"))
    written = json.loads((run_dir / "metrics.json").read_text())
    assert written["test"] == metrics["test"]
    assert set(written["test"]) == {"ctr", "atc", "cvr"}
    assert written["test"]["ctr"]["rows"] == 2000
    assert len(written["history"]["loss"]) == 1
    # Evaluating the stored run reproduces the test metrics from the checkpoint.
    evaluated = evaluate(run_dir)
    assert evaluated["tasks"]["ctr"]["auc"] == pytest.approx(written["test"]["ctr"]["auc"], abs=1e-6)
    # The strong simple baselines sit beside the model, on the same test rows.
    baselines = written["baselines"]["test"]
    assert set(baselines) == {"logistic_regression", "gradient_boosted_trees"}
    for name, report in baselines.items():
        assert report["ctr"]["rows"] == 2000 and 0.6 < report["ctr"]["auc"] <= 1.0, name
        assert evaluated["baselines"][name]["ctr"]["auc"] == pytest.approx(report["ctr"]["auc"]), name


def test_resume_continues_exactly_where_an_uninterrupted_run_would_be(one_epoch_run, tmp_path):
    train(config(epochs=2), tmp_path / "straight", verbose=0)
    resumed_dir = copy_of(one_epoch_run[0], tmp_path)
    metrics = train(config(epochs=2), resumed_dir, resume=True, verbose=0)
    straight, resumed = load_run(tmp_path / "straight"), load_run(resumed_dir)
    for run in (straight, resumed):  # the last epoch's state, not the best epoch that load_run gives
        run.checkpoint.restore(run.model)
    # Same seed, same epoch-keyed batches: resuming loses and repeats nothing.
    assert int(resumed.model.optimizer.iterations) == int(straight.model.optimizer.iterations) == 2 * 16
    for a, b in zip(straight.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert len(metrics["history"]["loss"]) == 2


def test_existing_run_needs_resume(one_epoch_run):
    with pytest.raises(FileExistsError, match="pass --resume"):
        train(config(epochs=1), one_epoch_run[0], verbose=0)


def test_nan_loss_stops_training_with_a_clear_message_and_keeps_the_good_checkpoint(
    one_epoch_run, tmp_path, monkeypatch
):
    run_dir = copy_of(one_epoch_run[0], tmp_path)
    original = MultiTaskModel.loss_terms

    def diverging(self, inputs, training=False):
        # Fault injection: from the 4th step of the second epoch on, every loss term is NaN.
        nan = tf.where(self.optimizer.iterations >= 16 + 3, tf.constant(np.nan), 0.0)
        terms = original(self, inputs, training=training)
        return {name: dataclasses.replace(term, value=term.value + nan) for name, term in terms.items()}

    monkeypatch.setattr(MultiTaskModel, "loss_terms", diverging)
    with pytest.raises(TrainingDivergedError, match=r"the loss became nan at epoch 2, batch 4 \(.*ctr_loss="):
        train(config(epochs=3), run_dir, resume=True, verbose=0)
    assert tf.train.latest_checkpoint(str(run_dir / "checkpoints")).endswith("ckpt-1")


def test_cli_train_evaluate_export(one_epoch_run, tmp_path, capsys):
    options = [f"--option={k}={json.dumps(v)}" for k, v in TINY_MMOE.items()]
    # Training through the CLI: an argument error is reported before anything runs.
    assert (
        cli.main(["train", "mmoe", "--dataset", "synthetic", "--epochs", "0", "--out", str(tmp_path / "x"), *options])
        == 1
    )
    assert "epochs=0" in capsys.readouterr().err
    run_dir = str(copy_of(one_epoch_run[0], tmp_path))
    assert cli.main(["train", "mmoe", "--dataset", "synthetic", "--epochs", "2", "--out", run_dir, "--resume"]) == 0
    out = capsys.readouterr().out
    assert "mmoe (test)" in out and "gradient_boosted_trees (test)" in out and "logistic_regression (test)" in out
    assert cli.main(["evaluate", "--run", run_dir]) == 0
    assert "ctr AUC" in capsys.readouterr().out
    assert cli.main(["export", "--run", run_dir, "--to", str(tmp_path / "savedmodels")]) == 0
    assert (tmp_path / "savedmodels" / "mmoe_synthetic" / "1" / "saved_model.pb").exists()
    # A second export is a new version, never an overwrite.
    assert cli.main(["export", "--run", run_dir, "--to", str(tmp_path / "savedmodels")]) == 0
    assert (tmp_path / "savedmodels" / "mmoe_synthetic" / "2" / "saved_model.pb").exists()
    # Errors are reported, not raised.
    assert cli.main(["train", "mmoe", "--dataset", "synthetic", "--out", run_dir]) == 1
    assert "pass --resume" in capsys.readouterr().err
    assert cli.main(["evaluate", "--run", str(tmp_path / "nowhere")]) == 1


def test_baselines_are_fitted_once_for_the_same_rows(one_epoch_run, monkeypatch):
    from tfzoo.tasks import ranking

    fits = []
    original = ranking.TabularBaselines

    def counting(*args, **kwargs):
        fits.append(args[-1])
        return original(*args, **kwargs)

    monkeypatch.setattr(ranking, "TabularBaselines", counting)
    monkeypatch.setattr(ranking, "_FITTED_BASELINES", {})
    first, second = evaluate(one_epoch_run[0]), evaluate(one_epoch_run[0])
    assert len(fits) == 1 and first["baselines"] == second["baselines"]
    # Other rows are other baselines: the cache is keyed by content, not by run.
    train(config(epochs=1, data_options={"train_rows": 4000}), one_epoch_run[0].parent / "fewer_rows", verbose=0)
    assert len(fits) == 2
