"""The public samples of AliExpress, Ali-CCP and Taobao UserBehavior train through data
configs written as a user would write them, files read where they lie."""

from __future__ import annotations

import json

import pytest

from tfzoo import cli

pytestmark = [pytest.mark.shared_data, pytest.mark.timeout(600)]

TINY = ["--option", "num_experts=2", "--option", "expert_units=[8]", "--option", "tower_units=[4]"]

ALIEXPRESS = """\
name: aliexpress_sample
format: csv
files: [{root}/aliexpress_sample/aliexpress_train_sample.csv, {root}/aliexpress_sample/aliexpress_test_sample.csv]
split: {{by: hash, key: search_id, shares: [0.6, 0.2, 0.2]}}
features:
{features}
labels: [click, conversion]
"""

ALI_CCP = """\
name: ali_ccp_sample
format: csv
files:
  train: {root}/ali_ccp_sample/ali_ccp_train_sample.csv
  validation: {root}/ali_ccp_sample/ali_ccp_val_sample.csv
  test: {root}/ali_ccp_sample/ali_ccp_test_sample.csv
features:
{features}
labels: [click, purchase]
"""

TAOBAO = """\
name: taobao_userbehavior
format: csv
files: {root}/taobao_userbehavior_head/UserBehavior.csv
columns: [user_id, item_id, category_id, behavior, timestamp]   # the file has no header
split: {{by: time, column: timestamp, validation_from: 1511900000, test_from: 1512000000}}
features:
  - {{name: user_id, kind: categorical, dtype: int64, hash_buckets: 1000}}
  - {{name: item_id, kind: categorical, dtype: int64, hash_buckets: 10000}}
  - {{name: category_id, kind: categorical, dtype: int64, max_tokens: 500, min_count: 2}}
labels:
  - {{name: engaged, column: behavior, positive: [cart, fav, buy]}}
  - {{name: buy, column: behavior, positive: [buy]}}
"""


def _aliexpress_features() -> str:
    lines = [f"  - {{name: categorical_{i}, kind: categorical, dtype: int64}}" for i in range(1, 17)]
    lines += [f"  - {{name: numerical_{i}, kind: numeric}}" for i in range(1, 64)]
    return "\n".join(lines)


def _ali_ccp_features() -> str:
    sparse = "101 121 122 124 125 126 127 128 129 205 206 207 210 216 508 509 702 853 301".split()
    sparse += ["109_14", "110_14", "127_14", "150_14"]
    dense = ["D109_14", "D110_14", "D127_14", "D150_14", "D508", "D509", "D702", "D853"]
    lines = [f"  - {{name: '{name}', kind: categorical, dtype: int64}}" for name in sparse]
    lines += [f"  - {{name: {name}, kind: numeric}}" for name in dense]
    return "\n".join(lines)


@pytest.mark.parametrize(
    "template, features, rows",
    [
        (ALIEXPRESS, _aliexpress_features, 120),
        (ALI_CCP, _ali_ccp_features, 200),
        (TAOBAO, lambda: "", 4321),
    ],
    ids=["aliexpress", "ali_ccp", "taobao"],
)
def test_sample_trains_through_a_data_config(shared_data, tmp_path, capsys, template, features, rows):
    config = tmp_path / "data.yaml"
    config.write_text(template.format(root=shared_data, features=features()))
    run = tmp_path / "run"
    args = ["train", "mmoe", "--data-config", str(config), "--epochs", "1", "--batch-size", "32", "--out", str(run)]
    assert cli.main([*args, *TINY]) == 0
    stored = json.loads((run / "config.json").read_text())
    assert sum(stored["inputs"]["rows"].values()) == rows  # every row of the files, each in one split
    assert "logistic_regression (test)" in capsys.readouterr().out
