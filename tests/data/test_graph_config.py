"""Friend graphs from a node table and an edge list (`kind: friend_graph` data configs)."""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from tfzoo.data import read_data_config
from tfzoo.data.data_config import DataConfigError
from tfzoo.data.errors import DataFormatError
from tfzoo.data.graph_config import FriendGraphConfig, friend_graph_splits, read_friend_graph
from tfzoo.data.readers.twitch import read_twitch

USERS = """\
user_id,country,games,age,ids
u1,DE,a|b,20,1|2
u2,DE,b,31,
u3,FR,,45,3
u4,,c|a,,0
"""
FRIENDS = "from,to\nu1,u2\nu2,u1\nu3,u4\nu1,u4\n"
CONFIG = {
    "kind": "friend_graph",
    "nodes": {
        "files": "users.csv",
        "id": "user_id",
        "features": [
            {"name": "country", "kind": "categorical"},
            {"name": "games", "kind": "tokens"},
            {"name": "age", "kind": "numeric", "num_buckets": 2},
            {"name": "ids", "kind": "indices", "dim": 4},
        ],
    },
    "edges": {"files": "friends.csv"},
}


def _write(folder, users=USERS, friends=FRIENDS, **changes):
    (folder / "users.csv").write_text(users)
    (folder / "friends.csv").write_text(friends)
    path = folder / "graph.json"
    path.write_text(json.dumps({**CONFIG, **changes}))
    return read_data_config(path)


def test_node_columns_become_blocks_of_the_multi_hot_features(tmp_path):
    config = _write(tmp_path)
    assert isinstance(config, FriendGraphConfig) and config.name == "graph"
    graph = read_friend_graph(config)
    assert graph.num_users == 4 and list(graph.node_ids) == ["u1", "u2", "u3", "u4"]
    # Listed twice or in both directions, a friendship is one.
    assert graph.edges.tolist() == [[0, 1], [0, 3], [2, 3]]
    # Blocks: country [0, 3) (0 = other; DE 1, FR 2), games [3, 7) (a 4, b 5, c 6: most
    # frequent first, ties by value), age [7, 9) (two quantile buckets), ids [9, 13).
    assert graph.features.dim == 13
    assert [graph.user_features(u).tolist() for u in range(4)] == [
        [1, 4, 5, 7, 10, 11],
        [1, 5, 7],
        [2, 8, 12],
        [4, 6, 9],  # empty country and age set nothing
    ]
    assert graph.serving_ids().tolist() == ["u1", "u2", "u3", "u4"]


def test_parquet_tables_read_as_the_csv_ones(tmp_path):
    csv_graph = read_friend_graph(_write(tmp_path))
    for name in ("users", "friends"):
        table = pacsv.read_csv(tmp_path / f"{name}.csv", convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
        pq.write_table(table, tmp_path / f"{name}.parquet")
    config = json.loads((tmp_path / "graph.json").read_text())
    config["nodes"].update(files="users.parquet", format="parquet")
    config["edges"].update(files="friends.parquet", format="parquet")
    (tmp_path / "parquet.json").write_text(json.dumps(config))
    graph = read_friend_graph(read_data_config(tmp_path / "parquet.json"))
    assert np.array_equal(graph.edges, csv_graph.edges)
    assert np.array_equal(graph.feature_indices, csv_graph.feature_indices)
    assert np.array_equal(graph.feature_splits, csv_graph.feature_splits)


def test_integer_ids_serve_as_integers_and_row_numbers_as_rows(tmp_path):
    users = "user_id\n70\n5\n12\n"
    graph = read_friend_graph(_write(tmp_path, users, "from,to\n70,5\n", nodes={"files": "users.csv", "id": "user_id"}))
    assert graph.serving_ids().tolist() == [70, 5, 12] and graph.serving_ids().dtype == np.int64
    assert graph.features.dim == 1 and len(graph.feature_indices) == 0
    rows = read_friend_graph(
        _write(tmp_path, "user_id\n0\n1\n2\n", "from,to\n0,1\n", nodes=CONFIG["nodes"] | {"features": []})
    )
    assert rows.serving_ids() is None


# (table, its text, the error, after skipping: users, friendships, skipped rows)
BAD = [
    ("users", USERS + "u2,FR,,50,\n", "users.csv:6: field 'user_id': user 'u2' has a row already, at ", (4, 3, 1)),
    # A user's row dropped drops its friendships too: each is counted.
    (
        "users",
        USERS.replace("u2,DE,b,31,", "u2,DE,b,thirty,"),
        "users.csv:3: field 'age': expected a number",
        (3, 2, 3),
    ),
    (
        "users",
        USERS.replace("u3,FR,,45,3", "u3,FR,,45,4"),
        "users.csv:4: field 'ids': expected integers in [0, 4)",
        (3, 2, 2),
    ),
    ("friends", FRIENDS + "u1,u9\n", "friends.csv:6: field 'to': user 'u9' has no row in the node files", (4, 3, 1)),
    ("friends", FRIENDS + "u3,u3\n", "friends.csv:6: field 'to': a user befriends itself ('u3')", (4, 3, 1)),
    ("friends", FRIENDS + "u1,u2,u3\n", "friends.csv:6: 3 fields where the header has 2", (4, 3, 1)),
]


@pytest.mark.parametrize("table, text, message, skipped", BAD, ids=[m.split(": ")[-1][:24] for _, _, m, _ in BAD])
def test_a_bad_row_names_file_line_and_column_or_is_skipped_and_counted(tmp_path, table, text, message, skipped):
    files = {"users": USERS, "friends": FRIENDS, table: text}
    config = _write(tmp_path, files["users"], files["friends"])
    with pytest.raises(DataFormatError, match="^" + re.escape(str(tmp_path / message))):
        read_friend_graph(config)
    graph = read_friend_graph(config, on_bad_row="skip")
    assert (graph.num_users, len(graph.edges), graph.skipped_rows) == skipped
    if table == "friends" or "already" in message:  # the other rows as without the bad one
        good = read_friend_graph(_write(tmp_path))
        assert np.array_equal(graph.edges, good.edges)
        assert np.array_equal(graph.feature_indices, good.feature_indices)


@pytest.mark.parametrize(
    "change, key, accepted",
    [
        ({"kind": "graph"}, "kind", "Accepted: rows, friend_graph"),
        ({"nodes": {"files": "users.csv"}}, "nodes.id", "required: the column of the user ids"),
        (
            {"nodes": {"files": "u.csv", "id": "i", "features": [{"name": "a", "kind": "text"}]}},
            "nodes.features[0].kind",
            "Accepted: categorical, tokens, numeric, indices",
        ),
        (
            {"nodes": {"files": "u.csv", "id": "i", "features": [{"name": "a", "kind": "indices"}]}},
            "nodes.features[0].dim",
            "required for kind indices",
        ),
        ({"edges": {"files": "f.csv", "columns": ["a"]}}, "edges.columns", "two different columns"),
        ({"edges": {"files": "f.csv", "format": "tfrecord"}}, "edges.format", "Accepted: csv, tsv, parquet"),
        ({"split": {"test_share": 0.6, "validation_share": 0.5}}, "split", "validation + test < 1"),
        ({"labels": ["x"]}, "labels", "unknown key for kind friend_graph"),
    ],
)
def test_each_mistake_names_the_file_the_key_and_what_is_accepted(tmp_path, change, key, accepted):
    path = tmp_path / "graph.json"
    path.write_text(json.dumps({**CONFIG, **change}))
    with pytest.raises(DataConfigError) as raised:
        read_data_config(path)
    assert str(raised.value).startswith(f"{path}: `{key}`: ") and accepted in str(raised.value)


def test_splits_follow_the_config_and_the_seed(tmp_path):
    config = _write(tmp_path, split={"validation_share": 0.2, "test_share": 0.2})
    first = friend_graph_splits(config, split_seed=3, on_bad_row="raise")
    again = friend_graph_splits(config, split_seed=3, on_bad_row="raise")
    assert first.split.startswith("graph: ") and np.array_equal(first.test, again.test)
    assert len(first.train.edges) + len(first.validation) + len(first.test) == len(first.graph.edges)


@pytest.mark.shared_data
def test_a_twitch_region_written_as_a_node_table_reads_as_the_twitch_reader_does(shared_data, tmp_path):
    # What a user exporting Twitch from a warehouse would have: a user table with the
    # feature indices in one column, and the edge list as it is.
    region = shared_data / "twitch_musae" / "ES"
    twitch = read_twitch(region)
    features = json.loads((region / "ES.json").read_text())
    ids = [str(u) for u in range(twitch.num_users)]
    table = pa.table({"id": ids, "features": ["|".join(str(i) for i in features.get(u, [])) for u in ids]})
    pq.write_table(table, tmp_path / "users.parquet")
    config = {
        "kind": "friend_graph",
        "nodes": {
            "files": "users.parquet",
            "format": "parquet",
            "id": "id",
            "features": [{"name": "features", "kind": "indices", "dim": 3170}],
        },
        "edges": {"files": str(region / "ES_edges.csv")},
    }
    (tmp_path / "twitch_es.yaml").write_text(json.dumps(config))
    graph = read_friend_graph(read_data_config(tmp_path / "twitch_es.yaml"))
    assert graph.serving_ids() is None  # ids are the rows: served as the named dataset is
    assert np.array_equal(graph.edges, twitch.edges)
    assert np.array_equal(graph.feature_splits, twitch.feature_splits)
    assert np.array_equal(graph.feature_indices, twitch.feature_indices)
