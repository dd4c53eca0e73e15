import gzip

import numpy as np
import pytest

import tfzoo
from tfzoo.data import DataFormatError, read_census_income
from tfzoo.data.readers.census import bundled_census_path, read_census_names

GOOD_ROW = (
    "38, Private, 6, 36, 1st 2nd 3rd or 4th grade, 0, Not in universe, Married-civilian spouse present, "
    "Manufacturing-durable goods, Machine operators assmblrs & inspctrs, White, Mexican (Mexicano), Female, "
    "Not in universe, Not in universe, Full-time schedules, 0, 0, 0, Joint one under 65 & one 65+, "
    "Not in universe, Not in universe, Spouse of householder, Spouse of householder, 1032.38, ?, ?, ?, "
    "Not in universe under 1 year old, ?, 4, Not in universe, Mexico, Mexico, Mexico, "
    "Foreign born- Not a citizen of U S , 0, Not in universe, 2, 12, 95, - 50000."
)


def write_rows(tmp_path, rows, name="census-income.test"):
    path = tmp_path / name
    path.write_text("\n".join(rows) + "\n", encoding="latin-1")
    return path


def test_bundled_file_counts_match_the_uci_description(census):
    assert len(census) == 99_762
    assert census.skipped_rows == 0
    # 6,186 rows above 50K and 43,143 never married (census-income.names / PROVENANCE).
    assert census.labels["income"].sum() == 6_186
    assert census.labels["never_married"].sum() == 43_143
    names = census.spec.feature_names
    assert "marital_stat" not in names  # source of a label: never a feature
    assert "instance_weight" not in names
    assert len(names) == 41 - 2  # 41 attribute columns minus marital status and instance weight
    assert census.spec.labels == ("income", "never_married")


def test_names_file_gives_kinds_and_domains():
    columns = dict(read_census_names(bundled_census_path().parent / "census-income.names"))
    assert columns["age"] is None
    assert columns["sex"] == ("Female", "Male")
    assert len(columns) == 41


def test_task_choice_changes_labels_and_dropped_columns(tmp_path):
    data = read_census_income(write_rows(tmp_path, [GOOD_ROW]), tasks=("college", "income"))
    assert data.spec.labels == ("college", "income")
    assert "education" not in data.spec.feature_names
    assert "marital_stat" in data.spec.feature_names
    with pytest.raises(ValueError, match="subset of"):
        read_census_income(tasks=("income", "age"))


def test_missing_numeric_is_nan_in_memory_and_zero_after_preprocessing(tmp_path):
    row = GOOD_ROW.replace("1032.38, ?, ?, ?", "1032.38, ?, ?, ?").split(", ")
    row[0] = "?"  # age missing
    data = read_census_income(write_rows(tmp_path, [", ".join(row), GOOD_ROW]))
    assert np.isnan(data.features["age"][0])
    spec = data.spec.fit(data.features)
    inputs = tfzoo.data.preprocess_columns(data, spec)
    assert inputs["age"].numpy()[0] == 0.0
    # "?" in a nominal column is no domain value: it lands in the OOV bucket.
    assert inputs["migration_code_change_in_msa"].numpy()[0] == 0


@pytest.mark.parametrize(
    "row, match",
    [
        (GOOD_ROW.replace("38, Private", "38 Private"), r":2: expected 42 comma-separated fields, found 41"),
        (GOOD_ROW.replace("- 50000.", "maybe."), r":2: field 'income': class must be"),
        (
            GOOD_ROW.replace("38, Private", "thirty, Private"),
            r":2: field 'age': expected a number or '\?', found 'thirty'",
        ),
    ],
)
def test_malformed_row_names_file_line_and_field(tmp_path, row, match):
    path = write_rows(tmp_path, [GOOD_ROW, row, GOOD_ROW])
    with pytest.raises(DataFormatError, match=str(path).replace(".", r"\.") + match):
        read_census_income(path)


def test_skip_policy_drops_and_counts_bad_rows(tmp_path):
    bad = GOOD_ROW.replace("38, Private", "thirty, Private")
    path = write_rows(tmp_path, [GOOD_ROW, bad, GOOD_ROW.replace("- 50000.", "50000+."), "too, short"])
    data = read_census_income(path, on_bad_row="skip")
    assert len(data) == 2
    assert data.skipped_rows == 2
    np.testing.assert_array_equal(data.labels["income"], [0.0, 1.0])


def test_gzip_and_plain_files_read_the_same(tmp_path):
    plain = write_rows(tmp_path, [GOOD_ROW])
    zipped = tmp_path / "census-income.test.gz"
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    a, b = read_census_income(plain), read_census_income(zipped)
    assert a.features["education"].tolist() == b.features["education"].tolist()


def test_flow_groups_the_class_of_worker(tmp_path):
    government = GOOD_ROW.replace("38, Private,", "38, State government,")
    unpaid = GOOD_ROW.replace("38, Private,", "38, Without pay,")
    data = read_census_income(write_rows(tmp_path, [GOOD_ROW, government, unpaid]), with_flow=True)
    assert list(data.features["flow"]) == ["private", "government", "no_employer"]
    assert data.spec.feature("flow").vocabulary == ("private", "government", "self_employed", "no_employer")
    assert "class_of_worker" in data.spec.feature_names
    assert "flow" not in read_census_income(write_rows(tmp_path, [GOOD_ROW])).spec.feature_names
