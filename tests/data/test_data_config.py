"""Data configs: YAML and JSON read alike; every mistake names the file, the key and what
is accepted."""

from __future__ import annotations

import json

import pytest
import yaml

from tfzoo.data.data_config import DataConfig, DataConfigError, read_data_config

RAW = {
    "name": "clicks",
    "format": "csv",
    "files": "shards/*.csv",
    "split": {"by": "hash", "key": "user", "shares": [0.8, 0.1, 0.1]},
    "features": [
        {"name": "age", "kind": "numeric", "num_buckets": 4},
        {"name": "city", "kind": "categorical", "max_tokens": 100, "min_count": 2},
        {"name": "tags", "kind": "sequence", "max_length": 5, "element": {"kind": "categorical", "name": "tags"}},
    ],
    "labels": ["click", {"name": "buy", "column": "action", "positive": ["buy", "order"]}],
}


def test_yaml_and_json_read_alike_with_patterns_from_the_config_folder(tmp_path):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(RAW))
    (tmp_path / "b.json").write_text(json.dumps(RAW))
    from_yaml, from_json = read_data_config(tmp_path / "a.yaml"), read_data_config(tmp_path / "b.json")
    assert from_yaml.spec == from_json.spec
    assert from_yaml.files == from_json.files == {"all": (str(tmp_path / "shards/*.csv"),)}
    assert from_yaml.spec.labels == ("click", "buy")
    assert from_yaml.label_columns[1].positive == ("buy", "order")
    assert from_yaml.spec.feature("city").max_tokens == 100
    assert from_yaml.needed_columns == ("age", "city", "tags", "click", "action", "user")
    # What a run stores reads back to the same config, from anywhere.
    assert DataConfig.from_dict(from_yaml.to_dict(), source="stored").spec == from_yaml.spec


PREPROCESSED = {
    "spec": "spec.json",
    "rows": {"train": 8, "validation": 1, "test": 1},
    "train_file_rows": {},
    "split": "",
}
PER_SPLIT_TFRECORD = {
    "format": "tfrecord",
    "split": None,
    "files": {s: f"{s}-*" for s in ("train", "validation", "test")},
}


@pytest.mark.parametrize(
    "change, key, accepted",
    [
        ({"format": "xlsx"}, "`format`", "Accepted: csv, tsv, parquet, tfrecord"),
        ({"colour": 1}, "`colour`", "Accepted: name, format"),
        ({"labels": []}, "`labels`", "at least one label"),
        ({"split": {"by": "random"}}, "`split.by`", "Accepted: hash, column, time"),
        ({"split": {"by": "hash", "key": "user", "shares": [0.5, 0.1, 0.1]}}, "`split.shares`", "summing to 1"),
        ({"split": {"by": "time", "column": "ts", "validation_from": 5}}, "`split.test_from`", "required"),
        ({"split": None}, "`split`", "needs a split rule"),
        ({"files": {"train": "a.csv"}}, "`files`", "exactly train, validation, test"),
        ({"files": {"train": "a.csv", "test": "b.csv"}, "split": None}, "`split`", "carves validation"),
        (
            {
                "files": {"train": "a.csv", "test": "b.csv"},
                "split": {"by": "hash", "key": "u", "shares": [0.8, 0.1, 0.1]},
            },
            "`split`",
            "with a test share of 0",
        ),
        (
            {
                "files": {"train": "a.csv", "test": "b.csv"},
                "split": {"by": "time", "column": "t", "validation_from": 1, "test_from": 2},
            },
            "`split`",
            "need a hash split",
        ),
        (
            {"labels": [{"name": "cvr", "column": "buy", "observed_where": 1}]},
            "`labels[0].observed_where`",
            "a column name",
        ),
        ({"features": [{"name": "age", "kind": "numeric", "num_buckets": 1}]}, "`features[0]`", "num_buckets=1"),
        ({"features": [{"name": "age", "kind": "vector"}]}, "`features[0]`", "expected one of"),
        ({"features": [{"name": "age"}]}, "`features[0]`", "needs `name` and `kind`"),
        (
            {"labels": [{"name": "buy", "colum": "action"}]},
            "`labels[0].colum`",
            "Accepted: name, column, positive, times",
        ),
        ({"columns": ["age"]}, "`columns`", "lacks"),
        ({"preprocessed": "spec.json"}, "`preprocessed`", "must be a mapping of spec, rows"),
        ({"preprocessed": {"spec": "spec.json"}}, "`preprocessed`", "lacks 'rows'"),
        ({"preprocessed": PREPROCESSED}, "`preprocessed`", "TFRecord files per split"),
        ({**PER_SPLIT_TFRECORD, "preprocessed": PREPROCESSED}, "`preprocessed`", "['buy'] are not"),
        (
            {**PER_SPLIT_TFRECORD, "labels": ["click"], "preprocessed": {**PREPROCESSED, "rows": {"train": 5}}},
            "`preprocessed.rows`",
            "the rows of train, validation, test",
        ),
    ],
)
def test_each_mistake_names_the_file_the_key_and_what_is_accepted(tmp_path, change, key, accepted):
    path = tmp_path / "data.yaml"
    path.write_text(yaml.safe_dump({**RAW, **change}))
    with pytest.raises(DataConfigError) as error:
        read_data_config(path)
    message = str(error.value)
    assert message.startswith(f"{path}: {key}:"), message
    assert accepted in message


def test_unreadable_or_malformed_files_name_the_file(tmp_path):
    with pytest.raises(DataConfigError, match="missing.yaml.*cannot be read"):
        read_data_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataConfigError, match="bad.json.*not valid JSON"):
        read_data_config(tmp_path / "bad.json")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(DataConfigError, match="list.yaml.*mapping"):
        read_data_config(tmp_path / "list.yaml")


def test_training_and_test_files_carve_validation_and_labels_read_several_columns(tmp_path):
    raw = {
        **RAW,
        "files": {"train": "train-*.csv", "test": "test-*.csv"},
        "split": {"by": "hash", "key": "user", "shares": [0.9, 0.1, 0]},
        "labels": [
            "click",
            {"name": "cvr", "column": "buy", "observed_where": "click"},
            {"name": "ctcvr", "column": "buy", "times": "click"},
        ],
    }
    path = tmp_path / "data.yaml"
    path.write_text(yaml.safe_dump(raw))
    config = read_data_config(path)
    assert config.files == {"train": (str(tmp_path / "train-*.csv"),), "test": (str(tmp_path / "test-*.csv"),)}
    assert [config.file_group(s) for s in ("train", "validation", "test")] == ["train", "train", "test"]
    assert config.dealt("train") and not config.dealt("test")
    assert config.label_columns[2].columns == ("buy", "click")
    assert config.needed_columns == ("age", "city", "tags", "click", "buy", "user")
    assert "0.1 to validation" in config.split.describe()
    # From another folder (`--data DIR`): the patterns start there.
    other = tmp_path / "elsewhere"
    other.mkdir()
    assert read_data_config(path, data_root=other).files["test"] == (str(other / "test-*.csv"),)
