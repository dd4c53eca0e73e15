"""Dataset readers: plain functions returning in-memory data plus its spec."""

from tfzoo.data.readers.census import CENSUS_TASKS, bundled_census_path, read_census_income, read_census_names

__all__ = ["CENSUS_TASKS", "bundled_census_path", "read_census_income", "read_census_names"]
