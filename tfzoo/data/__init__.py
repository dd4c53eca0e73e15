"""Feature specs, readers, splits and `tf.data` pipelines."""

from tfzoo.data.errors import DataFormatError
from tfzoo.data.friend_graph import FriendGraph, FriendshipSplits, MultiHotFeatures, split_friendships
from tfzoo.data.features import (
    CategoricalFeature,
    DatasetSpec,
    EmbeddingFeature,
    IdFeature,
    NumericFeature,
    SequenceFeature,
)
from tfzoo.data.pipeline import make_dataset, preprocess_columns
from tfzoo.data.preprocessing import FeaturePreprocessor
from tfzoo.data.readers import CENSUS_TASKS, bundled_census_path, read_census_income, read_twitch
from tfzoo.data.registry import DATASETS, DatasetSplits, load_dataset
from tfzoo.data.splits import ordered_split, random_split
from tfzoo.data.synthetic import make_multi_scenario_data
from tfzoo.data.synthetic_graph import make_friend_graph
from tfzoo.data.tabular import TabularData

__all__ = [
    "CENSUS_TASKS",
    "CategoricalFeature",
    "DATASETS",
    "DatasetSplits",
    "DataFormatError",
    "DatasetSpec",
    "EmbeddingFeature",
    "FeaturePreprocessor",
    "FriendGraph",
    "FriendshipSplits",
    "IdFeature",
    "MultiHotFeatures",
    "NumericFeature",
    "SequenceFeature",
    "TabularData",
    "bundled_census_path",
    "load_dataset",
    "make_dataset",
    "make_friend_graph",
    "make_multi_scenario_data",
    "ordered_split",
    "preprocess_columns",
    "random_split",
    "split_friendships",
    "read_census_income",
    "read_twitch",
]
