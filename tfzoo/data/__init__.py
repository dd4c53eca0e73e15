"""Feature specs, readers, splits and `tf.data` pipelines."""

from tfzoo.data.data_config import DataConfig, DataConfigError, read_data_config
from tfzoo.data.errors import DataFormatError
from tfzoo.data.features import (
    CategoricalFeature,
    DatasetSpec,
    EmbeddingFeature,
    IdFeature,
    NumericFeature,
    SequenceFeature,
)
from tfzoo.data.friend_graph import FriendGraph, FriendshipSplits, MultiHotFeatures, split_friendships
from tfzoo.data.graph_config import FriendGraphConfig, read_friend_graph
from tfzoo.data.pipeline import dataset_from_columns, make_dataset, model_columns, preprocess_columns
from tfzoo.data.preprocessing import FeaturePreprocessor
from tfzoo.data.readers import (
    CENSUS_TASKS,
    MOVIELENS_TASKS,
    MovieLens100K,
    bundled_census_path,
    movielens_ranking_data,
    read_census_income,
    read_movielens_100k,
    read_twitch,
)
from tfzoo.data.registry import DATASETS, DatasetSplits, load_dataset
from tfzoo.data.splits import ordered_split, random_split
from tfzoo.data.streaming import StreamedSplits
from tfzoo.data.synthetic import make_multi_scenario_data
from tfzoo.data.synthetic_graph import make_friend_graph
from tfzoo.data.tabular import TabularData

__all__ = [
    "CENSUS_TASKS",
    "CategoricalFeature",
    "DATASETS",
    "DatasetSplits",
    "DataConfig",
    "DataConfigError",
    "DataFormatError",
    "DatasetSpec",
    "EmbeddingFeature",
    "FeaturePreprocessor",
    "FriendGraph",
    "FriendGraphConfig",
    "FriendshipSplits",
    "IdFeature",
    "MOVIELENS_TASKS",
    "MovieLens100K",
    "MultiHotFeatures",
    "NumericFeature",
    "SequenceFeature",
    "StreamedSplits",
    "TabularData",
    "bundled_census_path",
    "load_dataset",
    "dataset_from_columns",
    "make_dataset",
    "model_columns",
    "make_friend_graph",
    "make_multi_scenario_data",
    "movielens_ranking_data",
    "ordered_split",
    "preprocess_columns",
    "random_split",
    "read_census_income",
    "read_data_config",
    "read_friend_graph",
    "read_movielens_100k",
    "read_twitch",
    "split_friendships",
]
