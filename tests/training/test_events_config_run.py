"""SUPER-MoE from an event log's files: the Taobao UserBehavior head sample (headerless,
actions pv / fav / cart / buy, a category per item) through a `kind: events` data
config written as a user would, pre-trained, fine-tuned and served in the files' own
item ids and action names."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from tfzoo import cli
from tfzoo.data.behaviour_sequences import channel_columns
from tfzoo.training import load_run

pytestmark = [pytest.mark.shared_data, pytest.mark.timeout(600)]

TAOBAO = """\
kind: events
name: taobao_head
events:
  files: {root}/taobao_userbehavior_head/UserBehavior.csv
  columns: [user_id, item_id, category_id, behavior, timestamp]   # the file has no header
  user: user_id
  item: item_id
  time: timestamp
  action: behavior
  action_values: [pv, fav, cart, buy]
  item_category: category_id
tasks:
  - {{name: engaged, target_action: [fav, cart, buy]}}
sequence: {{length: 8, stride: 2}}
split: {{by: user, folds: 4, fold: 0}}
"""
TINY_ENCODER = {"units": 8, "num_experts": 2, "num_heads": 1, "key_dim": 8, "ffn_units": 8}


def test_taobao_events_pretrain_fine_tune_and_serve_in_their_own_ids(shared_data, tmp_path, capsys):
    config = tmp_path / "taobao.yaml"
    config.write_text(TAOBAO.format(root=shared_data))
    pre_dir, run_dir = str(tmp_path / "pretrain"), str(tmp_path / "finetune")
    common = ["--data-config", str(config), "--epochs", "1", "--batch-size", "256"]
    encoder = f"--option=encoder={json.dumps(TINY_ENCODER)}"
    assert cli.main(["pretrain", "supermoe", *common, "--option=num_sampled=16", encoder, "--out", pre_dir]) == 0
    pretrained = json.loads((tmp_path / "pretrain" / "metrics.json").read_text())
    # The item and the action channel are masked and predicted, beside their frequencies.
    assert set(pretrained["validation"]) == {"item", "action"}
    assert set(pretrained["baselines"]["test"]["frequency"]) == {"item", "action"}
    assert cli.main(["train", "supermoe", *common, "--init-from", pre_dir, "--out", run_dir]) == 0
    out = capsys.readouterr().out
    assert "logistic_regression (test)" in out
    metrics = json.loads((tmp_path / "finetune" / "metrics.json").read_text())
    assert metrics["split"].startswith("taobao_head: user-level 4-fold cross-validation, fold 0")
    assert set(metrics["test"]) == {"engaged"} and 0.0 <= metrics["test"]["engaged"]["auc"] <= 1.0

    assert cli.main(["export", "--run", run_dir, "--to", str(tmp_path / "savedmodels")]) == 0
    loaded = tf.saved_model.load(str(tmp_path / "savedmodels" / "supermoe_taobao_head" / "1"))
    serve = loaded.signatures["user_embedding"]
    assert serve.structured_input_signature[1]["item"].dtype == tf.int64  # Taobao's item ids are numbers
    assert serve.structured_input_signature[1]["action"].dtype == tf.string  # Taobao's action names
    run = load_run(run_dir)
    rows = run.prepared.data.test.take(np.arange(3))
    keys = run.prepared.data.vocabularies
    items = np.where(rows.features["item"] > 0, keys["item"][np.maximum(rows.features["item"] - 1, 0)], "0")
    history_actions = np.clip(rows.features["action"] - 1, 0, len(keys["action"]) - 1)
    actions = np.where(rows.features["item"] > 0, keys["action"][history_actions], "")
    raw = {
        "item": tf.constant(items.astype(np.int64)),  # e.g. 2268318, as UserBehavior.csv writes it
        "action": tf.constant(actions.astype(object)),  # "pv", "buy", ...; the target's is ignored
        "timestamp": tf.constant(rows.features["step_timestamp"]),
    }
    assert set(actions[:, :-1][rows.features["item"][:, :-1] > 0]) <= {"pv", "fav", "cart", "buy"}
    served = serve(**raw)["user_embedding"]
    expected = run.model.user_embedding(channel_columns(rows))
    np.testing.assert_allclose(served.numpy(), expected.numpy(), atol=1e-5)
    unknown = dict(raw, item=tf.constant(np.where(items.astype(np.int64) > 0, 1, 0)))  # no item 1 in the log
    with pytest.raises(tf.errors.InvalidArgumentError, match="`item` must be an item the run was trained on"):
        serve(**unknown)
    refund = dict(raw, action=tf.constant(np.where(actions == "pv", "refund", actions).astype(object)))
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="`action` must be one of the actions the run was trained on"
    ):
        serve(**refund)
