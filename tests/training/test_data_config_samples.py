"""The public samples of AliExpress, Ali-CCP and Taobao UserBehavior train through the data
configs tfzoo ships for them (`tfzoo/data/configs/`, plain YAML as a user would write),
files read where they lie: `tfzoo train mmoe --data-config NAME --data DIR`."""

from __future__ import annotations

import json

import pytest

from tfzoo import cli

pytestmark = [pytest.mark.shared_data, pytest.mark.timeout(600)]

TINY = ["--option", "num_experts=2", "--option", "expert_units=[8]", "--option", "tower_units=[4]"]


@pytest.mark.parametrize(
    "config, folder, rows",
    [
        ("aliexpress", "aliexpress_sample", {"train": 91, "validation": 9, "test": 20}),
        ("ali_ccp", "ali_ccp_sample", {"train": 100, "validation": 50, "test": 50}),
        ("taobao_userbehavior", "taobao_userbehavior_head", {"train": 3211, "validation": 549, "test": 561}),
    ],
)
def test_sample_trains_through_its_shipped_data_config(shared_data, tmp_path, capsys, config, folder, rows):
    run = tmp_path / "run"
    args = ["train", "mmoe", "--data-config", config, "--data", str(shared_data / folder)]
    args += ["--epochs", "1", "--batch-size", "32", "--out", str(run)]
    assert cli.main([*args, *TINY]) == 0
    stored = json.loads((run / "config.json").read_text())
    assert stored["inputs"]["rows"] == rows  # every row of the files, each in one split
    assert stored["run"]["data_config"]["source"] == config
    assert "logistic_regression (test)" in capsys.readouterr().out
