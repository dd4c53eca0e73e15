"""Dataset readers: plain functions returning in-memory data plus its spec."""

from tfzoo.data.readers.census import CENSUS_TASKS, bundled_census_path, read_census_income, read_census_names
from tfzoo.data.readers.movielens import (
    AGE_GROUPS,
    MOVIELENS_TASKS,
    MovieLens100K,
    movielens_ranking_data,
    read_movielens_100k,
)
from tfzoo.data.readers.twitch import TWITCH_FEATURE_DIM, read_twitch

__all__ = [
    "AGE_GROUPS",
    "CENSUS_TASKS",
    "MOVIELENS_TASKS",
    "MovieLens100K",
    "TWITCH_FEATURE_DIM",
    "bundled_census_path",
    "movielens_ranking_data",
    "read_census_income",
    "read_census_names",
    "read_movielens_100k",
    "read_twitch",
]
