import gzip
import re

import numpy as np
import pytest

from tfzoo.data import DataFormatError, load_dataset, make_dataset, preprocess_columns, read_aliexpress
from tfzoo.data.readers import aliexpress as aliexpress_module
from tfzoo.data.readers.aliexpress import ALIEXPRESS_COLUMNS, aliexpress_files

HEADER = ",".join(ALIEXPRESS_COLUMNS)


def row(search_id="7", code="3", number="0.5", click="0", conversion="0", **fields) -> str:
    """One CSV line; `fields` override single columns by name."""
    values = {"search_id": search_id, "click": click, "conversion": conversion}
    values.update({c: code for c in ALIEXPRESS_COLUMNS if c.startswith("categorical_")})
    values.update({c: number for c in ALIEXPRESS_COLUMNS if c.startswith("numerical_")})
    values.update(fields)
    return ",".join(values[c] for c in ALIEXPRESS_COLUMNS)


def write_csv(tmp_path, rows, name="train.csv", header=HEADER):
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="latin-1")
    return path


@pytest.fixture(scope="module")
def fixture_dir(shared_data):
    return shared_data / "aliexpress_sample"


def test_fixture_counts_match_provenance(fixture_dir):
    train = read_aliexpress(fixture_dir / "aliexpress_train_sample.csv")
    test = read_aliexpress(fixture_dir / "aliexpress_test_sample.csv")
    # PROVENANCE.md: train 100 rows (60 clicks, 2 conversions), test 20 rows (10 / 2).
    assert (len(train), train.labels["ctr"].sum(), train.labels["ctcvr"].sum()) == (100, 60, 2)
    assert (len(test), test.labels["ctr"].sum(), test.labels["ctcvr"].sum()) == (20, 10, 2)
    assert train.skipped_rows == 0
    # cvr is observed on the 60 clicked rows only; both conversions are among them.
    assert train.label_masks["cvr"].sum() == 60
    assert train.labels["cvr"].sum() == 2
    assert train.spec.labels == ("ctr", "cvr", "ctcvr")
    assert len(train.spec.features) == 16 + 63
    assert "search_id" not in train.spec.feature_names
    assert train.features["search_id"].dtype == np.int64
    assert train.features["search_id"][:3].tolist() == [81, 85, 97]  # the sample rows of PROVENANCE.md
    assert train.features["categorical_7"][:3].tolist() == [25, 36, 46]
    assert train.features["numerical_1"][1] == pytest.approx(0.032258)


def test_registry_splits_train_file_for_validation_and_keeps_test_file(fixture_dir):
    splits = load_dataset("aliexpress", path=str(fixture_dir), split_seed=3)
    assert [len(splits.train), len(splits.validation), len(splits.test)] == [90, 10, 20]
    assert "random 90% of aliexpress_train_sample.csv" in splits.split and "seed 3" in splits.split
    assert "test: aliexpress_test_sample.csv (20 rows)" in splits.split
    again = load_dataset("aliexpress", path=str(fixture_dir), split_seed=3)
    other = load_dataset("aliexpress", path=str(fixture_dir), split_seed=4)
    ids = lambda s: s.validation.features["search_id"].tolist()  # noqa: E731
    assert ids(splits) == ids(again) and ids(splits) != ids(other)
    # Vocabularies come from the training split; the pipeline yields masked cvr labels.
    spec = splits.train.spec.fit(splits.train.features)
    assert set(spec.feature("categorical_2").vocabulary) <= {0, 1, 2, 3}
    features, labels, masks = next(iter(make_dataset(splits.test, spec, batch_size=20)))
    np.testing.assert_array_equal(masks["cvr"], labels["ctr"])
    assert features["categorical_1"].dtype.name == "int64"

    chosen = load_dataset("aliexpress", path=str(fixture_dir), tasks=("ctr", "ctcvr"))
    assert chosen.train.spec.labels == chosen.test.spec.labels == ("ctr", "ctcvr")
    with pytest.raises(ValueError, match=r"Unknown task\(s\) \['ctvr'\]"):
        load_dataset("aliexpress", path=str(fixture_dir), tasks=("ctvr",))
    with pytest.raises(ValueError, match="may not be redistributed"):
        load_dataset("aliexpress")


def test_labels_and_cvr_mask_from_click_and_conversion(tmp_path):
    rows = [row(click="0"), row(click="1"), row(click="1", conversion="1"), row(click="0.0", conversion="0.0")]
    path = write_csv(tmp_path, rows)
    data = read_aliexpress(path)
    np.testing.assert_array_equal(data.labels["ctr"], [0, 1, 1, 0])
    np.testing.assert_array_equal(data.labels["ctcvr"], [0, 0, 1, 0])
    np.testing.assert_array_equal(data.label_masks["cvr"], [0, 1, 1, 0])  # post-click only
    np.testing.assert_array_equal(data.labels["cvr"], [0, 0, 1, 0])
    np.testing.assert_array_equal(data.label_masks["ctr"], [1, 1, 1, 1])
    assert data.positive_rate()["cvr"] == pytest.approx(0.5)


def test_missing_numeric_is_nan_in_memory_and_zero_after_preprocessing(tmp_path):
    path = write_csv(tmp_path, [row(numerical_5=""), row(number="0.25"), row(numerical_5="nan", number="0.75")])
    data = read_aliexpress(path)
    values = data.features["numerical_5"]
    assert np.isnan(values[0]) and np.isnan(values[2]) and values[1] == 0.25
    inputs = preprocess_columns(data, data.spec.fit(data.features))
    assert inputs["numerical_5"].numpy()[0] == 0.0
    assert np.isfinite(inputs["numerical_5"].numpy()).all()


def test_columns_may_come_in_any_order(tmp_path):
    names = list(ALIEXPRESS_COLUMNS)
    moved = [names[-1], *names[:-1]]  # conversion first
    line = row(click="1", conversion="1", categorical_3="9").split(",")
    path = write_csv(tmp_path, [",".join([line[-1], *line[:-1]])], header=",".join(moved))
    data = read_aliexpress(path)
    assert data.labels["ctcvr"].tolist() == [1.0]
    assert data.features["categorical_3"].tolist() == [9]


@pytest.mark.parametrize(
    "header, problems",
    [
        (HEADER.replace(",numerical_63", ""), r"missing columns \['numerical_63'\]"),
        (HEADER.replace("click", "clicked"), r"missing columns \['click'\]; unexpected columns \['clicked'\]"),
        (HEADER + ",search_id", r"duplicated columns \['search_id'\]"),
    ],
)
def test_header_must_match_the_schema(tmp_path, header, problems):
    path = write_csv(tmp_path, [], header=header)
    with pytest.raises(DataFormatError, match=re.escape(str(path)) + r":1: header does not match .*: " + problems):
        read_aliexpress(path)


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("")
    with pytest.raises(DataFormatError, match=r"train\.csv:1: empty file"):
        read_aliexpress(path)


@pytest.mark.parametrize(
    "bad, match",
    [
        (row() + ",0", r":3: expected 82 comma-separated fields, found 83"),
        (row(search_id="s1"), r":3: field 'search_id': expected an integer, found 's1'"),
        (row(categorical_4="abc"), r":3: field 'categorical_4': expected an integer, found 'abc'"),
        (row(categorical_4="1.5"), r":3: field 'categorical_4': expected an integer, found '1.5'"),
        (row(categorical_9="-2"), r":3: field 'categorical_9': expected an integer >= 0, found '-2'"),
        (row(categorical_9="99999999999999999999"), r":3: field 'categorical_9': expected an integer, found"),
        (row(numerical_12="high"), r":3: field 'numerical_12': expected a number, found 'high'"),
        (row(numerical_12="inf"), r":3: field 'numerical_12': expected a finite float32 number, found 'inf'"),
        (row(numerical_63="1e40"), r":3: field 'numerical_63': expected a finite float32 number, found '1e40'"),
        (row(click="2"), r":3: field 'click': expected 0 or 1, found '2'"),
        (row(conversion=""), r":3: field 'conversion': expected 0 or 1, found ''"),
    ],
)
def test_malformed_row_names_file_line_and_field(tmp_path, bad, match):
    path = write_csv(tmp_path, [row(), bad, row()])
    with pytest.raises(DataFormatError, match=re.escape(str(path)) + match):
        read_aliexpress(path)


def test_first_bad_line_is_reported_across_blocks(tmp_path, monkeypatch):
    # Blocks of 2 lines: line 5 (third block) is the first bad one, line 6 the second.
    monkeypatch.setattr(aliexpress_module, "_BLOCK_LINES", 2)
    rows = [row(search_id=str(i)) for i in range(7)]
    rows[3], rows[4] = row(click="7"), "1,2"
    path = write_csv(tmp_path, rows)
    with pytest.raises(DataFormatError, match=r"train\.csv:5: field 'click'"):
        read_aliexpress(path)
    data = read_aliexpress(path, on_bad_row="skip")
    assert data.skipped_rows == 2
    assert data.features["search_id"].tolist() == [0, 1, 2, 5, 6]


def test_skip_policy_drops_and_counts_bad_rows(tmp_path):
    rows = [
        row(search_id="1"),
        row(search_id="2", numerical_3="x", categorical_1="y"),  # two bad fields, one bad row
        "",  # blank lines are not rows
        row(search_id="3", click="1", conversion="1"),
        row(search_id="4", conversion="5"),
        "4,5",
    ]
    data = read_aliexpress(write_csv(tmp_path, rows), on_bad_row="skip")
    assert data.skipped_rows == 3
    assert data.features["search_id"].tolist() == [1, 3]
    np.testing.assert_array_equal(data.labels["ctcvr"], [0, 1])
    with pytest.raises(ValueError, match="on_bad_row='ignore'"):
        read_aliexpress(write_csv(tmp_path, rows), on_bad_row="ignore")


def test_gzip_and_plain_files_read_the_same(tmp_path):
    plain = write_csv(tmp_path, [row(search_id="5", click="1"), row(numerical_2="0.125")])
    zipped = tmp_path / "train.csv.gz"
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    a, b = read_aliexpress(plain), read_aliexpress(zipped)
    for name in a.features:
        np.testing.assert_array_equal(a.features[name], b.features[name])


def test_train_and_test_files_of_a_directory(tmp_path):
    for name in ("train.csv", "test.csv", "aliexpress_train_sample.csv"):
        write_csv(tmp_path, [row()], name=name)
    # The release's own names win over other matches.
    assert [p.name for p in aliexpress_files(tmp_path)] == ["train.csv", "test.csv"]
    (tmp_path / "train.csv").unlink()
    assert aliexpress_files(tmp_path)[0].name == "aliexpress_train_sample.csv"
    write_csv(tmp_path, [row()], name="other_train.csv")
    both = r"found \['aliexpress_train_sample\.csv', 'other_train\.csv'\]"
    with pytest.raises(FileNotFoundError, match=r"Expected one train file .*" + both):
        aliexpress_files(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        aliexpress_files(tmp_path / "absent")
