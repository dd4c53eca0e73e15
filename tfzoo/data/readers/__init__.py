"""Dataset readers: plain functions returning in-memory data plus its spec."""

from tfzoo.data.readers.census import CENSUS_TASKS, bundled_census_path, read_census_income, read_census_names
from tfzoo.data.readers.twitch import TWITCH_FEATURE_DIM, read_twitch

__all__ = [
    "CENSUS_TASKS",
    "TWITCH_FEATURE_DIM",
    "bundled_census_path",
    "read_census_income",
    "read_census_names",
    "read_twitch",
]
