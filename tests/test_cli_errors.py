"""Every model / dataset / option mismatch at the command line: one line on stderr naming
what was received and what is accepted, before any data is read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tfzoo import cli
from tfzoo.training import task_for

REPO = Path(__file__).resolve().parents[1]

RANKERS = "grec, mmoe, ple, shared_bottom, single_task, ssmtl, supermoe"
TABULAR = (
    "aliexpress, ali_ccp, taobao_userbehavior, census, census_flows, movielens, movielens_sequences, "
    "generated_sequences, synthetic"
)


@pytest.mark.timeout(300)
def test_model_dataset_mismatch_is_one_line_without_traceback(tmp_path):
    # The example: it used to end in an AttributeError traceback.
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-m", "tfzoo", "train", "mmoe", "--dataset", "twitch", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"tfzoo train: error: Model 'mmoe' does not train on dataset 'twitch'. Received: dataset='twitch'. "
        f"Accepted: {TABULAR}"
    ]
    assert not out.exists()


# (arguments, exit code, the one line after "tfzoo COMMAND: error: "). The datasets that
# need files (aliexpress, twitch) are named without --data: the mismatch is found before
# anything is read, or the error would be the missing path.
MISMATCHES = [
    (
        ["train", "ssmtl", "--dataset", "aliexpress"],
        1,
        "Model 'ssmtl' does not train on dataset 'aliexpress'. Received: dataset='aliexpress'. "
        "Accepted: twitch, friend_graph",
    ),
    (
        ["train", "supermoe", "--dataset", "census"],
        1,
        "Model 'supermoe' does not train on dataset 'census'. Received: dataset='census'. "
        "Accepted: movielens_sequences, generated_sequences",
    ),
    (
        ["pretrain", "supermoe", "--dataset", "synthetic"],
        1,
        "Model 'supermoe_mcp' does not train on dataset 'synthetic'. Received: dataset='synthetic'. "
        "Accepted: movielens_sequences, generated_sequences",
    ),
    (
        ["train", "mmoe", "--dataset", "aliexpress", "--option", "nonsense=1"],
        1,
        "Unknown option for model 'mmoe'. Received: option='nonsense'. "
        "Accepted: dropout, embedding_dim, expert_units, kernel_initializer, kernel_regularizer, num_experts, "
        "task_weights, tower_units",
    ),
    (
        ["train", "ssmtl", "--dataset", "twitch", "--option", "fanouts=[2]", "--option", "units=8"],
        1,
        "Unknown option for model 'ssmtl'. Received: option='units'. Accepted: candidate_bias, cca_decorrelation, "
        "cca_edge_drop, cca_feature_drop, cca_scale, cca_weight, dropout, embedding_dim, fanouts, fusion, hidden_dim, id_buckets, "
        "kernel_initializer, kernel_regularizer, logq_correction, mae_decoder_dim, mae_edge_drop, mae_gamma, mae_scale, mae_weight, message_passing, num_heads, "
        "num_layers, readout, retrieval_weight, ssl_batch_size, temperature, uniform_negatives",
    ),
    (
        ["pretrain", "supermoe", "--dataset", "generated_sequences", "--option", "units=8"],
        1,
        "Unknown option for model 'supermoe_mcp'. Received: option='units'. "
        "Accepted: channel_weights, encoder, kernel_initializer, kernel_regularizer, mask_rate, masked_channels, "
        "num_sampled, seed",
    ),
    (
        ["train", "grec", "--dataset", "synthetic", "--option", "kernel_regularizer=l2", "--option", "units=8"],
        1,
        "Unknown option for model 'grec'. Received: option='units'. Accepted: behaviour_sequences, capacity_factor, "
        "dropout, embedding_dim, expert_units, flow_feature, kernel_initializer, kernel_regularizer, "
        "load_balance_weight, model_dim, num_experts, num_heads, num_layers, routing, sequence_layers, task_weights, "
        "token_features, top_k, tower_units, z_loss_weight",
    ),
    (
        ["train", "supermoe", "--dataset", "generated_sequences", "--option", "kernel_initializer=he_normal"]
        + ["--option", "units=8"],
        1,
        "Unknown option for model 'supermoe'. Received: option='units'. Accepted: encoder, freeze_encoder, "
        "kernel_initializer, kernel_regularizer, pretrained_encoder, task_weight_rate, task_weights",
    ),
    (
        ["train", "ssmtl", "--dataset", "twitch", "--data-option", "fold=1"],
        1,
        "Unknown data option for dataset 'twitch'. Received: data_option='fold'. Accepted: cold_start_share",
    ),
    (
        ["train", "mmoe", "--dataset", "synthetic", "--data-option", "fold=1", "--data-option", "a=2"],
        1,
        "Unknown data option for dataset 'synthetic'. Received: data_option='a', data_option='fold'. "
        "Accepted: train_rows, upsample_tasks, upsample_max_factor",
    ),
    (
        ["train", "mmoe", "--dataset", "synthetic", "--init-from", "elsewhere"],
        1,
        "mmoe has no pre-training to start from. Received: init_from='elsewhere'. Accepted: init_from with model supermoe",
    ),
    (
        ["train", "nonsense", "--dataset", "synthetic"],
        2,
        f"unknown model. Received: model='nonsense'. Accepted: {RANKERS} (see tfzoo train --help)",
    ),
    (
        ["train", "mmoe", "--dataset", "nowhere"],
        2,
        "unknown dataset. Received: dataset='nowhere'. Accepted: ali_ccp, aliexpress, census, census_flows, "
        "friend_graph, generated_sequences, movielens, movielens_sequences, synthetic, taobao_userbehavior, twitch "
        "(see tfzoo train --help)",
    ),
    (
        ["train", "mmoe", "--dataset", "synthetic", "--option", "nonsense"],
        2,
        "argument --option: expected KEY=VALUE, got 'nonsense' (see tfzoo train --help)",
    ),
    (
        ["pretrain", "mmoe", "--dataset", "synthetic"],
        2,
        "unknown model. Received: model='mmoe'. Accepted: supermoe (see tfzoo pretrain --help)",
    ),
    (
        ["train", "mmoe", "--dataset", "synthetic", "--strategy", "tpu"],
        2,
        "unknown strategy. Received: strategy='tpu'. Accepted: default, mirrored, multi_worker, parameter_server "
        "(see tfzoo train --help)",
    ),
]


@pytest.mark.parametrize("arguments, code, message", MISMATCHES, ids=[" ".join(m[0][:4]) for m in MISMATCHES])
def test_mismatch_is_one_line_naming_what_was_received_and_what_is_accepted(arguments, code, message, tmp_path, capsys):
    out = tmp_path / "run"
    try:
        returned = cli.main([*arguments, "--out", str(out)])
    except SystemExit as stop:  # argparse's errors
        returned = stop.code
    assert returned == code
    assert capsys.readouterr().err.splitlines() == [f"tfzoo {arguments[0]}: error: {message}"]
    assert not out.exists()


def _data_config(tmp_path, file_name="data.json", **changes) -> str:
    raw = {
        "format": "csv",
        "files": {"train": "a.csv", "validation": "b.csv", "test": "c.csv"},
        "features": [{"name": "age", "kind": "numeric"}],
        "labels": ["click"],
        **changes,
    }
    path = tmp_path / file_name
    path.write_text(json.dumps(raw))
    return str(path)


def test_data_config_mismatches_are_one_line(tmp_path, capsys):
    def error(arguments):
        try:
            returned = cli.main([*arguments, "--out", str(tmp_path / "run")])
        except SystemExit as stop:  # argparse's errors
            returned = stop.code
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 1 and not (tmp_path / "run").exists(), lines
        return returned, lines[0]

    path = _data_config(tmp_path)
    assert error(["train", "supermoe", "--data-config", path]) == (
        1,
        f"tfzoo train: error: Model 'supermoe' trains from data configs of kind events. Received: kind='rows' "
        f"in {path}",
    )
    # A model kind that reads no data config (e.g. one a user registers without any) says
    # which models do.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(task_for("supermoe")), "data_config_kinds", ())
        assert error(["train", "supermoe", "--data-config", path]) == (
            1,
            f"tfzoo train: error: Model 'supermoe' does not train from a data config yet. Received: data_config="
            f"'{path}'. Accepted: models grec, mmoe, ple, shared_bottom, single_task, ssmtl, supermoe_mcp; or a "
            "named dataset: "
            "movielens_sequences, generated_sequences",
        )
    assert error(["train", "ssmtl", "--data-config", path]) == (
        1,
        f"tfzoo train: error: Model 'ssmtl' trains from data configs of kind friend_graph. Received: kind='rows' "
        f"in {path}",
    )
    bad = _data_config(tmp_path, "bad.json", format="xlsx")
    assert error(["train", "mmoe", "--data-config", bad]) == (
        1,
        f"tfzoo train: error: {bad}: `format`: Received: 'xlsx'. Accepted: csv, tsv, parquet, tfrecord",
    )
    assert error(["train", "mmoe", "--data-config", path, "--strategy", "parameter_server"]) == (
        1,
        "tfzoo train: error: The files of a data config are read by Python readers, which parameter-server workers "
        "(TensorFlow ops only) cannot run; rows converted by `tfzoo data convert --preprocess` are read by "
        "TensorFlow ops and train under it. Received: strategy='parameter_server'. Accepted: default, mirrored, "
        "multi_worker",
    )
    code, line = error(["train", "mmoe", "--data-config", path, "--dataset", "census"])
    assert code == 2 and "not allowed with argument" in line
    assert error(["data", "analyze", "--data-config", path, "--preprocess"]) == (
        1,
        "tfzoo data: error: --preprocess writes converted rows: it goes with `tfzoo data convert`, not analyze",
    )
