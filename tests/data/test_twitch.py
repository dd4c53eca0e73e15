import numpy as np
import pytest

from tfzoo.data import DataFormatError, read_twitch
from tfzoo.data.readers.twitch import TWITCH_FEATURE_DIM

TARGETS = "id,days,mature,views,partner,new_id\n11,100,True,5,False,0\n12,200,False,6,True,1\n13,300,True,7,False,2\n"
FEATURES = '{"0": [1, 5, 5], "1": [2], "2": [3, 4]}'
EDGES = "from,to\n0,1\n1,2\n2,1\n"


def write_region(tmp_path, *, targets=TARGETS, features=FEATURES, edges=EDGES, region="XX"):
    folder = tmp_path / region
    folder.mkdir()
    (folder / f"{region}_target.csv").write_text(targets)
    (folder / f"{region}.json").write_text(features)
    (folder / f"{region}_edges.csv").write_text(edges)
    return folder


@pytest.mark.shared_data
@pytest.mark.parametrize(
    "region, users, friendships", [("DE", 9498, 153_138), ("ENGB", 7126, 35_324), ("ES", 4648, 59_382)]
)
def test_real_regions_match_their_published_counts(shared_data, region, users, friendships):
    graph = read_twitch(shared_data / "twitch_musae" / region)
    assert (graph.num_users, graph.num_friendships) == (users, friendships)
    assert graph.skipped_rows == 0
    assert graph.features.dim == TWITCH_FEATURE_DIM
    assert graph.feature_indices.max() == TWITCH_FEATURE_DIM - 1  # every region uses index 3169
    assert np.all(graph.edges[:, 0] < graph.edges[:, 1])
    assert np.isfinite(graph.node_targets["views"]).all()
    assert graph.degrees().min() >= 1  # no isolated user in MUSAE Twitch


@pytest.mark.shared_data
def test_real_rows_become_the_documented_structure(shared_data):
    folder = shared_data / "twitch_musae" / "ENGB"
    graph = read_twitch(folder)
    # ENGB_target.csv line 2: "73045350,1459,False,9528,False,2299"
    assert graph.node_targets["twitch_id"][2299] == 73045350
    assert graph.node_targets["days"][2299] == 1459 and graph.node_targets["mature"][2299] == 0.0
    # ENGB.json: node 3032's list, deduplicated and sorted.
    assert graph.user_features(3032).tolist() == sorted(
        {
            2605,
            1191,
            357,
            2120,
            861,
            231,
            3164,
            920,
            1907,
            1612,
            2327,
            2549,
            2524,
            2912,
            139,
            83,
            276,
            2645,
            2424,
            2501,
            2737,
            1525,
            751,
        }
    )
    # ENGB_edges.csv line 2: "6194,255" (stored as the pair (255, 6194)).
    assert ((graph.edges[:, 0] == 255) & (graph.edges[:, 1] == 6194)).any()


def test_small_region_reads_with_repeats_and_reversed_duplicates(tmp_path):
    graph = read_twitch(write_region(tmp_path), feature_dim=8)
    assert graph.num_users == 3
    assert graph.edges.tolist() == [[0, 1], [1, 2]]  # "2,1" repeats "1,2"
    assert graph.user_features(0).tolist() == [1, 5]  # index 5 listed twice, held once
    assert graph.multi_hot(np.array([2]))[0].tolist() == [0, 0, 0, 1, 1, 0, 0, 0]
    assert graph.node_targets["partner"].tolist() == [0.0, 1.0, 0.0]


@pytest.mark.parametrize(
    "part, text, match",
    [
        ("edges", EDGES + "1,x\n", r"XX_edges\.csv:5: field 'to': expected an integer, found 'x'"),
        ("edges", EDGES + "1,7\n", r"XX_edges\.csv:5: field 'to': expected an integer in \[0, 2\], found '7'"),
        ("edges", EDGES + "2,2\n", r"XX_edges\.csv:5: field 'to': self-loop on node 2"),
        ("edges", EDGES + "0,1,2\n", r"XX_edges\.csv:5: expected 2 comma-separated fields, found 3"),
        ("edges", "source,target\n0,1\n", r"XX_edges\.csv:1: expected the header 'from,to'"),
        ("targets", TARGETS.replace("True,5", "yes,5", 1), r"XX_target\.csv:2: field 'mature': expected True or False"),
        ("targets", TARGETS.replace(",2\n", ",1\n"), r"XX_target\.csv:4: field 'new_id': node 1 is described twice"),
        (
            "features",
            '{"0": [1],\n "1": [9999]}',
            r"XX\.json:2: field 'node 1': feature index 9999 is outside \[0, 8\)",
        ),
        ("features", '{"0": "abc"}', r"XX\.json:1: field 'node 0': expected a list of integer feature indices"),
        ("features", '{"0": [1],\n "1": [2,]}', r"XX\.json:2: not valid JSON"),
    ],
)
def test_malformed_rows_name_file_line_and_field(tmp_path, part, text, match):
    folder = write_region(tmp_path, **{part: text})
    with pytest.raises(DataFormatError, match=match):
        read_twitch(folder, feature_dim=8)


def test_skip_policy_drops_and_counts_bad_rows(tmp_path):
    folder = write_region(tmp_path, edges=EDGES + "1,x\n0,9\n", features='{"0": [1], "1": [99], "2": [3]}')
    graph = read_twitch(folder, feature_dim=8, on_bad_row="skip")
    assert graph.skipped_rows == 3
    assert graph.edges.tolist() == [[0, 1], [1, 2]]
    assert graph.user_features(1).tolist() == []  # its only entry was bad


def test_missing_files_are_named(tmp_path):
    folder = write_region(tmp_path)
    (folder / "XX.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"XX\.json"):
        read_twitch(folder)
