"""Census-Income (KDD) in the UCI format: `census-income.{data,test}[.gz]` + `.names`.

The MMoE paper's Census benchmark. Tasks (binary labels) derived from the rows:

| task            | label                                            | removed from the features |
| --------------- | ------------------------------------------------ | ------------------------- |
| `income`        | income > 50K (the file's class column)           | (the class column)        |
| `never_married` | marital status is "Never married"                | `marital_stat`            |
| `college`       | education is an associate, bachelor's, master's, | `education`               |
|                 | professional or doctoral degree                  |                           |

With `with_flow=True` the rows also get a `flow` feature for GRec-style (flow, use case)
tasks: the class of worker grouped into four flows (`WORKER_FLOWS`): `private` (Private),
`government` (Federal / State / Local government), `self_employed` (incorporated or
not) and `no_employer` (Not in universe, i.e. children and people out of the labour
force; Never worked; Without pay). `class_of_worker` stays a feature.

The instance weight is a survey-sampling weight, not a feature, and is dropped. A copy of
the test split (99,762 rows, CC BY 4.0) ships inside tfzoo; see `bundled/ATTRIBUTION.md`.
"""

from __future__ import annotations

import gzip
import importlib.resources
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tfzoo.data.errors import BadRowPolicy, BadRows, DataFormatError
from tfzoo.data.features import CategoricalFeature, DatasetSpec, NumericFeature
from tfzoo.data.tabular import TabularData

CENSUS_TASKS = ("income", "never_married", "college")

# Quantile buckets per continuous attribute (fewer where values repeat): +0.002 test AUC on
# income for MMoE over the plain standardised value (docs/benchmarks.md).
NUMERIC_BUCKETS = 16
# Money amounts are heavy-tailed (mostly 0, up to 99,999): standardise their log.
_LOG_SCALED = {"wage_per_hour", "capital_gains", "capital_losses", "dividends_from_stocks"}
_COLLEGE_DEGREES = {
    "Associates degree-occup /vocational",
    "Associates degree-academic program",
    "Bachelors degree(BA AB BS)",
    "Masters degree(MA MS MEng MEd MSW MBA)",
    "Prof school degree (MD DDS DVM LLB JD)",
    "Doctorate degree(PhD EdD)",
}
_INCOME_CLASSES = {"- 50000": 0.0, "50000+": 1.0}
_TASK_SOURCE_COLUMN = {"never_married": "marital_stat", "college": "education"}
_INSTANCE_WEIGHT = "instance_weight"

# Class of worker -> flow (documented in the module docstring and docs/grec.md).
WORKER_FLOWS = {
    "Private": "private",
    "Federal government": "government",
    "State government": "government",
    "Local government": "government",
    "Self-employed-incorporated": "self_employed",
    "Self-employed-not incorporated": "self_employed",
    "Not in universe": "no_employer",
    "Never worked": "no_employer",
    "Without pay": "no_employer",
}
FLOW_NAMES = ("private", "government", "self_employed", "no_employer")

# Census features grouped by theme: one GRec token each (see recipes/grec_census.py).
CENSUS_TOKEN_GROUPS = {
    "person": (
        "age",
        "sex",
        "race",
        "hispanic_origin",
        "citizenship",
        "country_of_birth_self",
        "country_of_birth_father",
        "country_of_birth_mother",
        "education",
        "enroll_in_edu_inst_last_wk",
        "veterans_benefits",
        "fill_inc_questionnaire_for_veteran_s_admin",
    ),
    "work": (
        "class_of_worker",
        "detailed_industry_recode",
        "detailed_occupation_recode",
        "major_industry_code",
        "major_occupation_code",
        "member_of_a_labor_union",
        "reason_for_unemployment",
        "full_or_part_time_employment_stat",
        "own_business_or_self_employed",
        "wage_per_hour",
        "num_persons_worked_for_employer",
        "weeks_worked_in_year",
    ),
    "household": (
        "marital_stat",
        "tax_filer_stat",
        "detailed_household_and_family_stat",
        "detailed_household_summary_in_household",
        "family_members_under_18",
        "capital_gains",
        "capital_losses",
        "dividends_from_stocks",
    ),
    "residence": (
        "region_of_previous_residence",
        "state_of_previous_residence",
        "migration_code_change_in_msa",
        "migration_code_change_in_reg",
        "migration_code_move_within_reg",
        "live_in_this_house_1_year_ago",
        "migration_prev_res_in_sunbelt",
        "year",
    ),
}


def worker_flow(class_of_worker: np.ndarray) -> np.ndarray:
    """The flow (`WORKER_FLOWS`) of each class-of-worker value; unknown values -> "no_employer"."""
    return np.array([WORKER_FLOWS.get(str(v), "no_employer") for v in class_of_worker], dtype=object)


def census_token_groups(feature_names) -> dict[str, list[str]]:
    """`CENSUS_TOKEN_GROUPS` restricted to `feature_names` (label sources are not features)."""
    present = set(feature_names)
    groups = {name: [f for f in names if f in present] for name, names in CENSUS_TOKEN_GROUPS.items()}
    return {name: names for name, names in groups.items() if names}


def bundled_census_path() -> Path:
    """The Census-Income test split shipped with tfzoo."""
    return Path(str(importlib.resources.files("tfzoo.data") / "bundled" / "census-income.test.gz"))


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def read_census_names(path: str | Path) -> list[tuple[str, tuple[str, ...] | None]]:
    """Column names (snake_case) and nominal domains (None = continuous) from a `.names` file."""
    path = Path(path)
    columns = []
    in_attributes = False
    for number, line in enumerate(path.read_text(encoding="latin-1").splitlines(), start=1):
        line = line.strip()
        if not in_attributes:
            # The class line ("- 50000, 50000+.") opens the attribute list.
            in_attributes = line.startswith("- 50000")
            continue
        if not line or line.startswith("|"):
            continue
        match = re.fullmatch(r"([^:]+):\s*(.*)\.", line)
        if not match:
            raise DataFormatError(
                "expected 'attribute: continuous.' or 'attribute: v1, v2, ...'.", path=str(path), line=number
            )
        name, domain = match.group(1).strip(), match.group(2).strip()
        if domain in ("continuous", "ignore"):
            columns.append((_snake(name), None))
        else:
            columns.append((_snake(name), tuple(v.strip() for v in domain.split(","))))
    if not columns:
        raise DataFormatError("no attribute list found after the class line '- 50000, 50000+.'", path=str(path))
    return columns


def read_census_income(
    path: str | Path | None = None,
    *,
    names_path: str | Path | None = None,
    tasks: Sequence[str] = ("income", "never_married"),
    on_bad_row: BadRowPolicy = "raise",
    with_flow: bool = False,
) -> TabularData:
    """Reads a Census-Income (KDD) file into memory.

    Args:
      path: `census-income.data` or `.test`, optionally gzipped. Default: the bundled
        test split.
      names_path: the `.names` file; default `census-income.names` beside `path`, else
        the bundled one.
      tasks: labels to derive, from `CENSUS_TASKS`. The column a label comes from is
        removed from the features.
      on_bad_row: "raise" stops at the first malformed row with a `DataFormatError`
        naming file, line and field; "skip" drops such rows and counts them in
        `skipped_rows`.
      with_flow: add the `flow` feature (class of worker grouped, see above).

    Returns:
      `TabularData` whose spec has a categorical feature (vocabulary = the `.names`
      domain; other values, "?" included, go to the OOV bucket) per nominal attribute and
      a numeric feature (standardised, log-scaled for money amounts, with up to 16
      quantile buckets) per continuous one; "?" in a continuous field is a missing value.
    """
    unknown = sorted(set(tasks) - set(CENSUS_TASKS))
    if unknown or not tasks:
        raise ValueError(f"`tasks` must be a non-empty subset of {CENSUS_TASKS}. Received: tasks={tuple(tasks)}")
    path = Path(path) if path is not None else bundled_census_path()
    if names_path is None:
        sibling = path.parent / "census-income.names"
        names_path = sibling if sibling.exists() else bundled_census_path().parent / "census-income.names"
    attributes = read_census_names(names_path)
    num_fields = len(attributes) + 1  # + the class column
    names = [name for name, _ in attributes]

    raw: list[list[str]] = []
    line_numbers: list[int] = []
    bad_rows = BadRows(on_bad_row, str(path))
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="latin-1") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            fields = [f.strip() for f in line.rstrip().rstrip(".").split(",")]
            if len(fields) != num_fields:
                bad_rows.handle(
                    DataFormatError(
                        f"expected {num_fields} comma-separated fields, found {len(fields)}",
                        path=str(path),
                        line=number,
                    )
                )
            elif fields[-1] not in _INCOME_CLASSES:
                bad_rows.handle(
                    DataFormatError(
                        f"class must be '- 50000' or '50000+', found {fields[-1]!r}",
                        path=str(path),
                        line=number,
                        field="income",
                    )
                )
            else:
                raw.append(fields)
                line_numbers.append(number)

    table = np.array(raw, dtype=object).reshape(len(raw), num_fields)
    keep = np.ones(len(raw), bool)
    numbers = {}
    for index, (name, domain) in enumerate(attributes):
        if domain is not None:
            continue
        text = np.where(table[:, index] == "?", "nan", table[:, index])
        try:
            numbers[name] = text.astype(np.float32)
        except ValueError:
            # Slow path, only for a column that holds something unparsable: find the rows.
            values = np.full(len(text), np.nan, np.float32)
            for row, value in enumerate(text):
                try:
                    values[row] = float(value)
                except ValueError:
                    keep[row] = False
                    bad_rows.handle(
                        DataFormatError(
                            f"expected a number or '?', found {value!r}",
                            path=str(path),
                            line=line_numbers[row],
                            field=name,
                        )
                    )
            numbers[name] = values
    bad_rows.report()

    table = table[keep]
    columns = dict(zip(names, table[:, :-1].T))
    incomes = np.array([_INCOME_CLASSES[c] for c in table[:, -1]], np.float32)
    derive = {
        "income": lambda: incomes,
        "never_married": lambda: (columns["marital_stat"] == "Never married").astype(np.float32),
        "college": lambda: np.isin(columns["education"], list(_COLLEGE_DEGREES)).astype(np.float32),
    }
    labels = {task: derive[task]() for task in tasks}

    dropped = {_INSTANCE_WEIGHT} | {_TASK_SOURCE_COLUMN[t] for t in tasks if t in _TASK_SOURCE_COLUMN}
    features, spec_features = {}, []
    for name, domain in attributes:
        if name in dropped:
            continue
        if domain is None:
            features[name] = numbers[name][keep]
            spec_features.append(NumericFeature(name, log1p=name in _LOG_SCALED, num_buckets=NUMERIC_BUCKETS))
        else:
            features[name] = columns[name]  # object array of str
            spec_features.append(CategoricalFeature(name, vocabulary=domain))
    if with_flow:
        features["flow"] = worker_flow(columns["class_of_worker"])
        spec_features.append(CategoricalFeature("flow", vocabulary=FLOW_NAMES))
    spec = DatasetSpec(features=tuple(spec_features), labels=tuple(labels))
    return TabularData(features=features, labels=labels, spec=spec, source=str(path), skipped_rows=bad_rows.skipped)
