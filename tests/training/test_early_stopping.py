import json

import numpy as np
import pytest
import tensorflow as tf

from tfzoo.tasks.ranking import RankingTask
from tfzoo.training import RunConfig, evaluate, load_run, train
from tfzoo.training.callbacks import BestEpoch

TINY_MMOE = {"embedding_dim": 2, "num_experts": 2, "expert_units": [8], "tower_units": [4]}


def test_training_stops_after_patience_and_the_best_epoch_is_what_the_run_keeps(tmp_path, monkeypatch):
    # Scripted validation scores: epoch 2 is the best; epoch 3 does not beat it and, with
    # patience 1, ends training before epochs 4 and 5.
    scores = iter([0.50, 0.70, 0.60, 0.90, 0.95])
    monkeypatch.setattr(RankingTask, "validation_score", lambda self, prepared: next(scores))
    config = RunConfig(
        model="mmoe", dataset="synthetic", epochs=5, batch_size=1024, seed=3, model_options=TINY_MMOE, patience=1
    )
    metrics = train(config, tmp_path / "run", verbose=0)
    assert metrics["epochs_trained"] == 3 and metrics["best_epoch"] == 2
    assert metrics["validation_metric"] == "val_mean_auc"
    assert metrics["history"]["val_mean_auc"] == pytest.approx([0.50, 0.70, 0.60])
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history["val_mean_auc"] == pytest.approx([0.50, 0.70, 0.60])

    # The run's model is epoch 2's: the per-epoch checkpoint 2 holds the same weights.
    run = load_run(tmp_path / "run")
    epoch_two = load_run(tmp_path / "run")
    tf.train.Checkpoint(
        model=epoch_two.model, optimizer=epoch_two.model.optimizer, epochs_done=epoch_two.checkpoint.epochs_done
    ).restore(str(tmp_path / "run" / "checkpoints" / "ckpt-2")).expect_partial()
    for best, two in zip(run.model.get_weights(), epoch_two.model.get_weights()):
        np.testing.assert_array_equal(best, two)
    # ... and not epoch 3's.
    assert any(not np.array_equal(a, b) for a, b in zip(run.model.get_weights(), _weights_of_checkpoint(tmp_path, 3)))
    # Evaluation reports the best epoch: the test metrics written by the run.
    assert evaluate(tmp_path / "run")["tasks"]["ctr"]["auc"] == pytest.approx(metrics["test"]["ctr"]["auc"], abs=1e-6)


def _weights_of_checkpoint(tmp_path, number):
    run = load_run(tmp_path / "run")
    tf.train.Checkpoint(model=run.model, optimizer=run.model.optimizer, epochs_done=run.checkpoint.epochs_done).restore(
        str(tmp_path / "run" / "checkpoints" / f"ckpt-{number}")
    ).expect_partial()
    return run.model.get_weights()


def test_patience_zero_trains_every_epoch_and_keeps_the_last(tmp_path):
    config = RunConfig(
        model="mmoe", dataset="synthetic", epochs=2, batch_size=1024, seed=3, model_options=TINY_MMOE, patience=0
    )
    metrics = train(config, tmp_path / "run", verbose=0)
    assert metrics["epochs_trained"] == 2 and metrics["best_epoch"] is None
    assert "val_mean_auc" not in metrics["history"]
    assert not (tmp_path / "run" / "best").exists()


def test_resumed_scores_carry_the_best_and_the_patience_count():
    callback = BestEpoch(lambda: 0.0, name="score", patience=2, directory="unused", previous_scores=[0.3, 0.5, 0.4])
    assert callback.best == 0.5 and callback.best_epoch == 1 and callback.wait == 1
    with pytest.raises(ValueError, match="patience=-1"):
        BestEpoch(lambda: 0.0, name="score", patience=-1, directory="unused")


def test_bad_schedule_and_patience_are_rejected():
    with pytest.raises(ValueError, match="learning_rate_schedule='linear'"):
        RunConfig(model="mmoe", dataset="synthetic", learning_rate_schedule="linear")
    with pytest.raises(ValueError, match="patience=-2"):
        RunConfig(model="mmoe", dataset="synthetic", patience=-2)


def test_cosine_schedule_decays_to_zero_over_the_run():
    from tfzoo.training.config import make_optimizer

    config = RunConfig(model="mmoe", dataset="synthetic", epochs=4, learning_rate=0.01, learning_rate_schedule="cosine")
    rate = tf.keras.optimizers.schedules.deserialize(
        make_optimizer(config, steps_per_epoch=10).get_config()["learning_rate"]
    )
    assert float(rate(0)) == pytest.approx(0.01)
    assert float(rate(20)) == pytest.approx(0.005)  # halfway: cos(pi / 2)
    assert float(rate(40)) == pytest.approx(0.0, abs=1e-9)
    constant = make_optimizer(RunConfig(model="mmoe", dataset="synthetic", learning_rate=0.01), steps_per_epoch=10)
    assert float(constant.learning_rate) == pytest.approx(0.01)
