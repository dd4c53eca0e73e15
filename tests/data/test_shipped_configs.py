"""The data configs shipped with tfzoo (`tfzoo/data/configs/`): the public datasets read as
any user's files are, into memory by `--dataset NAME` and streamed by `--data-config NAME`."""

import gzip
import re

import numpy as np
import pytest
import yaml

from tfzoo.data import DataFormatError, load_dataset, make_dataset, preprocess_columns
from tfzoo.data.data_config import DataConfigError, read_data_config, shipped_data_configs
from tfzoo.data.registry import DATASETS
from tfzoo.data.streaming import StreamedSplits

CATEGORICAL = [f"categorical_{i}" for i in range(1, 17)]
NUMERICAL = [f"numerical_{i}" for i in range(1, 64)]
COLUMNS = ["search_id", *CATEGORICAL, *NUMERICAL, "click", "conversion"]


def row(search_id="7", code="3", number="0.5", click="0", conversion="0", **fields) -> str:
    """One AliExpress CSV line; `fields` override single columns by name."""
    values = {"search_id": search_id, "click": click, "conversion": conversion}
    values.update(dict.fromkeys(CATEGORICAL, code))
    values.update(dict.fromkeys(NUMERICAL, number))
    values.update(fields)
    return ",".join(values[c] for c in COLUMNS)


# Training rows of 100 searches: a hash of the search id deals some of them to validation.
SEARCHES = [row(search_id=str(i)) for i in range(100)]


def write_release(directory, test_rows, train_rows=SEARCHES, header=COLUMNS):
    """An AliExpress-shaped folder: train.csv and test.csv."""
    directory.mkdir(exist_ok=True)
    for name, rows in (("train.csv", train_rows), ("test.csv", test_rows)):
        (directory / name).write_text("\n".join([",".join(header), *rows]) + "\n")
    return directory


def test_every_shipped_config_parses_and_rows_configs_are_named_datasets(tmp_path):
    shipped = shipped_data_configs()
    assert {"aliexpress", "ali_ccp", "taobao_userbehavior", "taobao_sequences"} <= set(shipped)
    for name, path in shipped.items():
        raw = yaml.safe_load(path.read_text())
        assert raw["name"] == name and raw["description"], name
        config = read_data_config(name, data_root=tmp_path)
        assert config.source == name
        if config.kind == "rows":
            assert name in DATASETS, name  # `--dataset NAME` reads the same config into memory
            patterns = [p for group in config.files.values() for p in group]
            assert all(p.startswith(str(tmp_path)) for p in patterns), patterns  # taken from --data


def test_a_shipped_config_needs_its_data_folder(tmp_path):
    with pytest.raises(DataConfigError, match=r"^aliexpress: `files`: .* pass --data DIR"):
        read_data_config("aliexpress")
    with pytest.raises(DataConfigError, match="is not a directory"):
        read_data_config("aliexpress", data_root=tmp_path / "absent")
    with pytest.raises(DataConfigError, match=r"nowhere\.yaml: .*cannot be read.*shipped config: .*aliexpress"):
        read_data_config(tmp_path / "nowhere.yaml")
    with pytest.raises(DataConfigError, match="pass --data DIR"):
        load_dataset("aliexpress")


def test_aliexpress_sample_counts_match_its_provenance(shared_data):
    splits = load_dataset("aliexpress", path=str(shared_data / "aliexpress_sample"))
    # PROVENANCE.md: train 100 rows (60 clicks, 2 conversions), test 20 rows (10 / 2).
    train_file = [splits.train, splits.validation]
    assert sum(map(len, train_file)) == 100 and len(splits.test) == 20
    assert sum(p.labels["ctr"].sum() for p in train_file) == 60
    assert sum(p.labels["ctcvr"].sum() for p in train_file) == 2
    assert (splits.test.labels["ctr"].sum(), splits.test.labels["ctcvr"].sum()) == (10, 2)
    # cvr is observed on the clicked rows only; both conversions are among them.
    assert sum(p.label_masks["cvr"].sum() for p in train_file) == 60
    assert sum(p.labels["cvr"].sum() for p in train_file) == 2
    assert splits.train.spec.labels == ("ctr", "cvr", "ctcvr")
    assert splits.train.spec.feature_names == (*CATEGORICAL, *NUMERICAL)
    assert "a hash of 'search_id': 0.1 to validation" in splits.split and "test 20" in splits.split
    # The split is the rule's, whatever the seed: the same rows in validation.
    again = load_dataset("aliexpress", path=str(shared_data / "aliexpress_sample"), split_seed=5)
    np.testing.assert_array_equal(again.validation.features["numerical_1"], splits.validation.features["numerical_1"])
    spec = splits.train.spec.fit(splits.train.features)
    features, labels, masks = next(iter(make_dataset(splits.test, spec, batch_size=20)))
    np.testing.assert_array_equal(masks["cvr"], labels["ctr"])
    assert features["categorical_1"].dtype.name == "int64"

    chosen = load_dataset("aliexpress", path=str(shared_data / "aliexpress_sample"), tasks=("ctr", "ctcvr"))
    assert chosen.train.spec.labels == chosen.test.spec.labels == ("ctr", "ctcvr")
    with pytest.raises(ValueError, match=r"Unknown task\(s\) \['ctvr'\]"):
        load_dataset("aliexpress", path=str(shared_data / "aliexpress_sample"), tasks=("ctvr",))


def test_ali_ccp_and_taobao_samples_read_through_their_configs(shared_data):
    ccp = load_dataset("ali_ccp", path=str(shared_data / "ali_ccp_sample"))
    # PROVENANCE.md: train 100 (7 clicks, 1 purchase), val 50 (3, 1), test 50 (2, 1).
    counts = [(len(p), p.labels["ctr"].sum(), p.labels["ctcvr"].sum()) for p in (ccp.train, ccp.validation, ccp.test)]
    assert counts == [(100, 7, 1), (50, 3, 1), (50, 2, 1)]
    assert len(ccp.train.spec.features) == 23 + 8
    taobao = load_dataset("taobao_userbehavior", path=str(shared_data / "taobao_userbehavior_head"))
    # 4,321 behaviours; 2017-12-02 (UTC) validates, 2017-12-03 tests.
    assert [len(taobao.train), len(taobao.validation), len(taobao.test)] == [3211, 549, 561]
    assert "train before 1512172800, validation before 1512259200" in taobao.split


def test_cvr_is_observed_on_clicks_and_ctcvr_is_click_times_conversion(tmp_path):
    rows = [row(click="0"), row(click="1"), row(click="1", conversion="1"), row(click="0.0", conversion="1")]
    data = load_dataset("aliexpress", path=str(write_release(tmp_path / "ae", rows))).test
    np.testing.assert_array_equal(data.labels["ctr"], [0, 1, 1, 0])
    np.testing.assert_array_equal(data.labels["ctcvr"], [0, 0, 1, 0])  # a conversion without a click is none
    np.testing.assert_array_equal(data.label_masks["cvr"], [0, 1, 1, 0])  # post-click only
    np.testing.assert_array_equal(data.labels["cvr"], [0, 0, 1, 0])
    np.testing.assert_array_equal(data.label_masks["ctr"], [1, 1, 1, 1])


def test_missing_numbers_and_any_column_order_and_gzip(tmp_path):
    rows = [row(numerical_5=""), row(number="0.25"), row(numerical_5="nan", number="0.75")]
    data = load_dataset("aliexpress", path=str(write_release(tmp_path / "ae", rows))).test
    values = data.features["numerical_5"]
    assert np.isnan(values[0]) and np.isnan(values[2]) and values[1] == 0.25
    inputs = preprocess_columns(data, data.spec.fit(data.features))
    assert np.isfinite(inputs["numerical_5"].numpy()).all()

    moved = [COLUMNS[-1], *COLUMNS[:-1]]  # conversion first
    line = row(click="1", conversion="1", categorical_3="9").split(",")
    moved_rows = [",".join([line[-1], *line[:-1]]) for line in (r.split(",") for r in SEARCHES)]
    test_line = [line[-1], *line[:-1]]
    folder = write_release(tmp_path / "moved", [",".join(test_line)], moved_rows, header=moved)
    data = load_dataset("aliexpress", path=str(folder)).test
    assert data.labels["ctcvr"].tolist() == [1.0] and data.features["categorical_3"].tolist() == [9]

    zipped = tmp_path / "zipped"
    zipped.mkdir()
    for name in ("train.csv", "test.csv"):
        (zipped / f"{name}.gz").write_bytes(gzip.compress((folder / name).read_bytes()))
    again = load_dataset("aliexpress", path=str(zipped)).test
    for name in data.features:
        np.testing.assert_array_equal(data.features[name], again.features[name])


@pytest.mark.parametrize(
    "bad, match",
    [
        (row(categorical_4="abc"), r":3: field 'categorical_4': not a valid categorical value: 'abc'"),
        (row(numerical_12="high"), r":3: field 'numerical_12': not a valid numeric value: 'high'"),
        (row(click="2"), r":3: field 'click': label 'ctr' is not 0, 1 or empty: '2'"),
        (row(conversion="yes"), r":3: field 'conversion': label 'cvr' is not 0, 1 or empty: 'yes'"),
        (row(conversion="1", click="5"), r":3: field 'click': label 'ctr' is not 0, 1 or empty: '5'"),
    ],
)
def test_a_bad_row_names_file_line_and_field(tmp_path, bad, match):
    folder = write_release(tmp_path / "ae", [row()], [row(), bad, row()])
    with pytest.raises(DataFormatError, match=re.escape(str(folder / "train.csv")) + match):
        load_dataset("aliexpress", path=str(folder))


def test_bad_rows_skipped_are_counted_per_file(tmp_path):
    rows = [row(search_id="1"), row(numerical_3="x", categorical_1="y"), row(click="1", conversion="1"), "4,5"]
    folder = write_release(tmp_path / "ae", rows)
    splits = StreamedSplits(read_data_config("aliexpress", data_root=folder), on_bad_row="skip")
    test = splits.in_memory("test")
    assert len(test) == 2 and test.skipped_rows == 2
    np.testing.assert_array_equal(test.labels["ctcvr"], [0, 1])
