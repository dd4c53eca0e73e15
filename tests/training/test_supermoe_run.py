import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfzoo import cli
from tfzoo.data.behaviour_sequences import channel_columns
from tfzoo.evaluation.logistic import DEFAULT_CS
from tfzoo.training import RunConfig, load_run, task_for, train

TINY_ENCODER = {"units": 8, "num_experts": 2, "num_heads": 1, "key_dim": 8, "ffn_units": 8}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A `tfzoo pretrain supermoe` run (its folder) and what the command printed."""
    pre_dir = str(tmp_path_factory.mktemp("supermoe") / "pretrain")
    encoder = f"--option=encoder={json.dumps(TINY_ENCODER)}"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = cli.main(
            [
                "pretrain",
                "supermoe",
                "--dataset",
                "generated_sequences",
                "--epochs",
                "2",
                "--batch-size",
                "512",
                "--learning-rate",
                "0.01",
                "--option=num_sampled=16",
                encoder,
                "--out",
                pre_dir,
            ]
        )
    assert code == 0
    return Path(pre_dir), printed.getvalue()


def test_pretrain_run_then_fine_tune_from_it(pretrained, tmp_path, capsys):
    # `tfzoo pretrain supermoe` writes a run (MCP on the training split, held-out MCP
    # accuracy beside the frequency baseline); `tfzoo train supermoe --init-from RUN`
    # starts from its encoder and reports logistic regression beside the model.
    pre_path, out = pretrained
    pre_dir, run_dir = str(pre_path), str(tmp_path / "finetune")
    assert "supermoe_mcp (validation)" in out and "frequency (test)" in out and "item ACCURACY" in out
    metrics = json.loads((pre_path / "metrics.json").read_text())
    assert set(metrics["validation"]) == {"item", "rating"}
    assert "val_item_accuracy" in metrics["history"] and "val_minus_mcp_loss" in metrics["history"]
    # Held-out rating prediction beats the training frequencies after two epochs.
    assert metrics["validation"]["rating"]["loss"] < metrics["baselines"]["test"]["frequency"]["rating"]["loss"] + 0.05

    assert (
        cli.main(
            [
                "train",
                "supermoe",
                "--dataset",
                "generated_sequences",
                "--epochs",
                "1",
                "--batch-size",
                "512",
                "--init-from",
                pre_dir,
                "--out",
                run_dir,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "supermoe (test)" in out and "logistic_regression (test)" in out
    stored = json.loads((tmp_path / "finetune" / "config.json").read_text())
    assert stored["run"]["init_from"] == pre_dir
    assert stored["inputs"]["encoder"]["units"] == 8  # the pre-trained encoder's sizes, no --option needed
    finetuned = json.loads((tmp_path / "finetune" / "metrics.json").read_text())
    # The attributes follow the genres a user watches: the bag of the window's genres shows them.
    assert finetuned["baselines"]["test"]["logistic_regression"]["female"]["auc"] > 0.7
    assert finetuned["baselines"]["test"]["logistic_regression"]["like"]["c"] in DEFAULT_CS

    assert cli.main(["export", "--run", run_dir, "--to", str(tmp_path / "savedmodels")]) == 0
    loaded = tf.saved_model.load(str(tmp_path / "savedmodels" / "supermoe_generated_sequences" / "1"))
    assert set(loaded.signatures) == {
        "serving_default",
        "user_embedding",
        "serving_channels",
        "user_embedding_channels",
    }
    # Raw sequences in, with the item tables saved with the run: the same answer as the
    # reopened run's model on the channels the data builds.
    run = load_run(run_dir)
    rows = run.prepared.data.test.take(np.arange(3))
    raw = {
        "item": rows.features["item"],
        "rating": rows.features["rating"],
        "timestamp": rows.features["step_timestamp"],
    }
    embedded = loaded.signatures["user_embedding"](**{k: tf.constant(v) for k, v in raw.items()})["user_embedding"]
    expected = run.model.user_embedding(channel_columns(rows))
    assert embedded.shape == (3, 8)
    np.testing.assert_allclose(embedded.numpy(), expected.numpy(), atol=1e-5)

    # The fine-tuning starts from the pre-trained encoder's weights (the best epoch's).
    pretrained_encoder = load_run(pre_dir).model.encoder
    config = RunConfig(model="supermoe", dataset="generated_sequences", init_from=pre_dir)
    prepared = task_for("supermoe").prepare(config, None)
    for a, b in zip(prepared.model.encoder.weights, pretrained_encoder.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # The Python API's alternative: a checkpoint of the encoder alone (`pretrained_encoder`).
    checkpoint = tf.train.Checkpoint(encoder=pretrained_encoder).write(str(tmp_path / "encoder" / "encoder"))
    config = RunConfig(
        model="supermoe",
        dataset="generated_sequences",
        model_options={"encoder": TINY_ENCODER, "pretrained_encoder": checkpoint},
    )
    prepared = task_for("supermoe").prepare(config, None)
    for a, b in zip(prepared.model.encoder.weights, pretrained_encoder.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert cli.main(["evaluate", "--run", pre_dir, "--split", "validation"]) == 0
    assert "frequency (validation)" in capsys.readouterr().out


def test_init_from_is_checked(pretrained, tmp_path):
    pre_dir = pretrained[0]
    task = task_for("supermoe")
    with pytest.raises(ValueError, match="contradict"):
        task.prepare(
            RunConfig(
                model="supermoe",
                dataset="generated_sequences",
                init_from=str(pre_dir),
                model_options={"encoder": {"units": 16}},
            ),
            None,
        )
    with pytest.raises(ValueError, match="ffn_gate"):  # pre-trained with the default gate, "switch"
        task.prepare(
            RunConfig(
                model="supermoe",
                dataset="generated_sequences",
                init_from=str(pre_dir),
                model_options={"encoder": {"ffn_gate": "paper"}},
            ),
            None,
        )
    # The kernel initializer / regularizer are model options, not encoder hyper-parameters: a
    # fine-tuning sets them whatever the pre-training used, and they stay out of the stored
    # pre-trained encoder options.
    prepared = task.prepare(
        RunConfig(
            model="supermoe",
            dataset="generated_sequences",
            init_from=str(pre_dir),
            model_options={"kernel_regularizer": "l2"},
        ),
        None,
    )
    assert not set(prepared.inputs.encoder) & {"kernel_initializer", "kernel_regularizer"}
    assert prepared.model.kernel_regularizer == "l2" and prepared.model.encoder.kernel_regularizer == "l2"
    assert len(prepared.model.losses) == len(prepared.model.towers) + 1 + 6  # towers, projection, one block
    with pytest.raises(ValueError, match="split generated_sequences differently"):
        task.prepare(
            RunConfig(model="supermoe", dataset="generated_sequences", init_from=str(pre_dir), split_seed=1), None
        )
    with pytest.raises(ValueError, match="no pre-training"):
        RunConfig(model="mmoe", dataset="synthetic", init_from=str(pre_dir))
    with pytest.raises(FileNotFoundError, match="config.json"):
        task.prepare(RunConfig(model="supermoe", dataset="generated_sequences", init_from=str(tmp_path)), None)


def test_tabular_baselines_train_on_the_flat_view(tmp_path):
    # MMoE reads every flat feature of the behaviour sequences (bags of items, liked items
    # and genres, pooled title vectors and intervals) and learns the attribute tasks.
    metrics = train(
        RunConfig(model="mmoe", dataset="generated_sequences", epochs=2, batch_size=256, patience=0),
        tmp_path / "mmoe",
        verbose=0,
    )
    assert metrics["test"]["female"]["auc"] > 0.7
    stored = json.loads((tmp_path / "mmoe" / "config.json").read_text())
    names = {feature["name"] for feature in stored["inputs"]["spec"]["features"]}
    assert {"liked_history", "history_genres", "history_title", "item_genres", "target_interval"} <= names
