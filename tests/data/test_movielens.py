import re

import numpy as np
import pytest
import tensorflow as tf

import tfzoo
from tfzoo.data import (
    DataFormatError,
    EmbeddingFeature,
    IdFeature,
    SequenceFeature,
    load_dataset,
    make_dataset,
    movielens_ranking_data,
    preprocess_columns,
    read_movielens_100k,
)
from tfzoo.data.readers.movielens import AGE_GROUPS, age_groups

GENRES = ["unknown|0", "Action|1", "Comedy|2", "Drama|3"]
OCCUPATIONS = ["other", "writer", "doctor"]
USERS = ["1|24|M|writer|85711", "2|53|F|other|T8H1N", "3|17|M|doctor|02139"]
ITEMS = [
    "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|1|0",
    "2|Misérables, Les (1995)|4-Feb-1971||http://x|0|1|1|1",
    "3|unknown||||1|0|0|0",
    "4|Heat (1995)|01-Jan-1995||http://x|0|1|0|1",
]
# The toy log, in file order (user, item, rating, timestamp). User 1's ratings are out of
# time order and lines 1 and 4 tie at t=100; user 2's two ratings tie at t=50.
RATINGS = [
    "1\t1\t5\t100",
    "2\t2\t3\t50",
    "1\t2\t4\t90",
    "1\t3\t2\t100",
    "3\t4\t1\t10",
    "1\t4\t4\t200",
    "2\t1\t5\t50",
]


def write_folder(tmp_path, *, ratings=RATINGS, users=USERS, items=ITEMS, genres=GENRES, occupations=OCCUPATIONS):
    folder = tmp_path / "ml-100k"
    folder.mkdir(exist_ok=True)
    for name, lines in (
        ("u.data", ratings),
        ("u.user", users),
        ("u.item", items),
        ("u.genre", genres + [""]),
        ("u.occupation", occupations),
    ):
        (folder / name).write_text("\n".join(lines) + "\n", encoding="latin-1")
    return folder


def write_embeddings(tmp_path, ids, vectors, name="titles"):
    directory = tmp_path / "derived"
    directory.mkdir(exist_ok=True)
    np.save(directory / f"{name}.npy", np.asarray(vectors, np.float32))
    np.save(directory / f"{name}_item_ids.npy", np.asarray(ids, np.int32))
    return directory


@pytest.fixture(scope="module")
def movielens(shared_data):
    root = shared_data / "movielens_100k"
    return read_movielens_100k(root / "ml-100k", embeddings_dir=root / "derived")


@pytest.fixture(scope="module")
def ranking(movielens):
    return movielens_ranking_data(movielens)


def test_real_files_match_provenance_counts(movielens, shared_data):
    ratings, users, items = movielens.ratings, movielens.users, movielens.items
    assert len(ratings["rating"]) == 100_000 and movielens.skipped_rows == 0
    assert (movielens.num_users, movielens.num_items) == (943, 1682)
    assert np.bincount(ratings["rating"], minlength=6)[1:].tolist() == [6_110, 11_370, 27_145, 34_174, 21_201]
    assert (len(movielens.genre_names), len(movielens.occupations)) == (19, 21)
    assert (users["gender"] == "M").sum() == 670 and (users["gender"] == "F").sum() == 273
    assert ratings["user_id"][:3].tolist() == [196, 186, 22] and ratings["timestamp"][0] == 881250949
    assert items["title"][0] == "Toy Story (1995)"
    assert items["genres"][0] == ("Animation", "Children's", "Comedy")
    assert "Misérables, Les (1995)" in items["title"].tolist()  # latin-1 decoded
    assert items["release_year"][0] == 1995 and np.isnan(items["release_year"][266])  # item 267 "unknown"
    assert users["zip_code"][1] == "94043"
    embeddings = movielens.title_embeddings
    assert embeddings.shape == (1683, 384) and embeddings.dtype == np.float32
    assert not embeddings[0].any()
    raw = np.load(shared_data / "movielens_100k" / "derived" / "ml100k_item_text_minilm_l6_v2.npy")
    np.testing.assert_array_equal(embeddings[1:], raw)  # the file's rows are items 1..1682


def test_real_ranking_rows_and_histories(ranking, movielens):
    assert len(ranking) == 100_000
    # rating >= 4: 34,174 + 21,201; rating 5: 21,201.
    assert ranking.labels["like"].sum() == 55_375 and ranking.labels["love"].sum() == 21_201
    assert "timestamp" not in ranking.spec.feature_names
    assert isinstance(ranking.spec.feature("title_embedding"), EmbeddingFeature)
    history = ranking.features["history"]
    # Every user has >= 20 ratings, so all but each user's first 20 have a full history.
    assert (history[:, -1] >= 0).sum() == 100_000 - 943 * 20
    # Against a per-user loop on a few users: earlier ratings only, ties in file order.
    ratings = movielens.ratings
    for user in (1, 196, 405, 943):
        rows = np.flatnonzero(ratings["user_id"] == user)
        ordered = rows[np.lexsort((rows, ratings["timestamp"][rows]))]
        for position, row in enumerate(ordered):
            earlier = ordered[max(0, position - 20) : position]
            expected = np.full(20, -1)
            expected[: len(earlier)] = ratings["item_id"][earlier]
            np.testing.assert_array_equal(history[row], expected)
            ratings_before = ranking.features["history_rating"][row][: len(earlier)]
            np.testing.assert_array_equal(ratings_before, ratings["rating"][earlier])


def test_toy_log_histories_exclude_current_and_later_ratings(tmp_path):
    data = movielens_ranking_data(read_movielens_100k(write_folder(tmp_path)), history_length=2)
    # Rows in file order. User 1 by time: item 2 (t=90), 1 (t=100), 3 (t=100, after item 1
    # in the file), 4 (t=200). User 2: item 2 then item 1 (tie at t=50, file order).
    np.testing.assert_array_equal(
        data.features["history"],
        [[2, -1], [-1, -1], [-1, -1], [2, 1], [-1, -1], [1, 3], [2, -1]],
    )
    np.testing.assert_array_equal(
        data.features["history_rating"],
        [[4, np.nan], [np.nan] * 2, [np.nan] * 2, [4, 5], [np.nan] * 2, [5, 2], [3, np.nan]],
    )
    longer = movielens_ranking_data(read_movielens_100k(write_folder(tmp_path)), history_length=3)
    np.testing.assert_array_equal(longer.features["history"][5], [2, 1, 3])  # most recent last
    assert longer.spec.feature("history").max_length == 3
    with pytest.raises(ValueError, match="history_length=0"):
        movielens_ranking_data(read_movielens_100k(write_folder(tmp_path)), history_length=0)


def test_toy_features_labels_and_spec(tmp_path):
    movielens = read_movielens_100k(write_folder(tmp_path))
    data = movielens_ranking_data(movielens, history_length=2)
    f = data.features
    assert f["user_id"].tolist() == [1, 2, 1, 1, 3, 1, 2]
    assert f["gender"].tolist() == ["M", "F", "M", "M", "M", "M", "F"]
    assert f["occupation"][4] == "doctor"
    assert f["age_group"].tolist() == ["18-24", "50-55", "18-24", "18-24", "under_18", "18-24", "50-55"]
    assert f["zip_prefix"].tolist()[:2] == ["8", "T"]
    assert f["genres"][1].tolist() == ["Action", "Comedy", "Drama", "", "", ""]  # item 2
    assert f["genres"][3].tolist() == ["unknown", "", "", "", "", ""]  # item 3
    np.testing.assert_array_equal(f["release_year"], [1995, 1971, 1971, np.nan, 1995, 1995, 1995])
    assert f["timestamp"].tolist() == [100, 50, 90, 100, 10, 200, 50]
    np.testing.assert_array_equal(data.labels["like"], [1, 0, 1, 0, 0, 1, 1])
    np.testing.assert_array_equal(data.labels["love"], [1, 0, 0, 0, 0, 0, 1])
    assert movielens.items["title"][1] == "Misérables, Les (1995)"

    spec = data.spec
    assert spec.labels == ("like", "love")
    assert spec.feature("user_id") == IdFeature("user_id", num_ids=4)
    assert spec.feature("history").element == IdFeature("history", num_ids=5)
    assert isinstance(spec.feature("history_rating"), SequenceFeature)
    assert spec.feature("genres").max_length == 6
    assert "title_embedding" not in spec.feature_names  # no embeddings dir

    inputs = preprocess_columns(data, spec.fit(data.features))
    # Sequence ids shift by one so that 0 is padding: history [1, 3] -> [2, 4].
    np.testing.assert_array_equal(inputs["history"].numpy()[5], [2, 4])
    np.testing.assert_array_equal(inputs["history"].numpy()[1], [0, 0])
    assert all(np.isfinite(v.numpy()).all() for v in inputs.values() if v.dtype == tf.float32)


def test_age_buckets():
    ages = [1, 7, 17, 18, 24, 25, 34, 35, 44, 45, 49, 50, 55, 56, 73]
    assert age_groups(np.array(ages)).tolist() == [
        "under_18",
        "under_18",
        "under_18",
        "18-24",
        "18-24",
        "25-34",
        "25-34",
        "35-44",
        "35-44",
        "45-49",
        "45-49",
        "50-55",
        "50-55",
        "56+",
        "56+",
    ]
    assert len(set(AGE_GROUPS)) == 7


def test_title_embeddings_are_indexed_by_item_id(tmp_path):
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3)
    # Rows out of id order: the ids file says which item each row belongs to.
    directory = write_embeddings(tmp_path, [4, 1, 2, 3], vectors)
    movielens = read_movielens_100k(write_folder(tmp_path), embeddings_dir=directory)
    np.testing.assert_array_equal(movielens.title_embeddings, [[0, 0, 0], [3, 4, 5], [6, 7, 8], [9, 10, 11], [0, 1, 2]])
    data = movielens_ranking_data(movielens)
    assert data.spec.feature("title_embedding") == EmbeddingFeature("title_embedding", dim=3)
    np.testing.assert_array_equal(data.features["title_embedding"][5], [0, 1, 2])  # row 5 rates item 4

    # A row of an unlisted item is a bad row: skipped and counted on request.
    directory = write_embeddings(tmp_path, [4, 1, 2, 3, 9], np.vstack([vectors, np.ones((1, 3))]))
    movielens = read_movielens_100k(write_folder(tmp_path), embeddings_dir=directory, on_bad_row="skip")
    assert movielens.skipped_rows == 1 and movielens.title_embeddings.shape == (5, 3)


def replaced(lines, index, line):
    lines = list(lines)
    lines[index] = line
    return lines


@pytest.mark.parametrize(
    "file, index, line, match",
    [
        ("ratings", 1, "2\t2\t3", r"u\.data:2: expected 4 tab-separated fields, found 3"),
        ("ratings", 1, "2\t2\t6\t50", r"u\.data:2: field 'rating': expected an integer in \[1, 5\], found '6'"),
        ("ratings", 2, "1\t2\t4\t9.5", r"u\.data:3: field 'timestamp': expected an integer, found '9\.5'"),
        ("ratings", 2, "1\t9\t4\t90", r"u\.data:3: field 'item_id': item_id 9 is not in u\.item"),
        ("ratings", 6, "7\t1\t5\t50", r"u\.data:7: field 'user_id': user_id 7 is not in u\.user"),
        ("users", 1, "2|53|X|other|94043", r"u\.user:2: field 'gender': expected 'M' or 'F', found 'X'"),
        ("users", 1, "2|old|F|other|94043", r"u\.user:2: field 'age': expected an integer, found 'old'"),
        ("users", 1, "2|530|F|other|94043", r"u\.user:2: field 'age': expected an integer in \[0, 120\]"),
        ("users", 2, "1|17|M|doctor|02139", r"u\.user:3: field 'user_id': duplicate user_id 1 \(first on line 1\)"),
        ("users", 1, "2|53|F|pilot|94043", r"u\.user:2: field 'occupation': occupation 'pilot' is not listed"),
        (
            "items",
            0,
            "1|Toy Story (1995)|1995||http://x|0|0|1|0",
            r"u\.item:1: field 'release_date': expected a date like '01-Jan-1995' or nothing, found '1995'",
        ),
        (
            "items",
            3,
            "4|Heat (1995)|01-Jan-1995||http://x|0|2|0|1",
            r"u\.item:4: field 'Action': expected 0 or 1, found '2'",
        ),
        (
            "items",
            3,
            "4|Heat (1995)|01-Jan-1995||http://x|0|1|0",
            r"u\.item:4: expected 9 '\|'-separated fields, found 8",
        ),
        (
            "items",
            3,
            "0|Heat (1995)|01-Jan-1995||http://x|0|1|0|1",
            r"u\.item:4: field 'item_id': expected an integer >= 1, found '0'",
        ),
        ("genres", 2, "Comedy|3", r"u\.genre:3: field 'index': expected 'name\|2'"),
        ("occupations", 1, "doctor", r"u\.occupation:3: field 'occupation': duplicate occupation 'doctor'"),
    ],
)
def test_malformed_files_name_file_line_and_field(tmp_path, file, index, line, match):
    default = {"ratings": RATINGS, "users": USERS, "items": ITEMS, "genres": GENRES, "occupations": OCCUPATIONS}
    folder = write_folder(tmp_path, **{file: replaced(default[file], index, line)})
    with pytest.raises(DataFormatError, match=re.escape(str(folder)) + r"/" + match):
        read_movielens_100k(folder)


@pytest.mark.parametrize(
    "ids, vectors, match",
    [
        (
            [1, 2, 3],
            np.ones((3, 2)),
            r"titles_item_ids\.npy: field 'item_id': 1 item\(s\) of u\.item have no embedding, e\.g\. item_id \[4\]",
        ),
        (
            [1, 2, 3, 4, 9],
            np.ones((5, 2)),
            r"titles_item_ids\.npy: field 'item_id': row 4: item_id 9 is not in u\.item",
        ),
        ([1, 2, 2, 4], np.ones((4, 2)), r"titles_item_ids\.npy: field 'item_id': duplicate item ids \[2\]"),
        (
            [1, 2, 3, 4],
            np.array([[1, 1], [1, np.inf], [1, 1], [1, 1]]),
            r"titles\.npy: row 1 \(item_id 2\) holds a non-finite value",
        ),
        ([1, 2, 3], np.ones((4, 2)), r"titles_item_ids\.npy: field 'item_id': expected 4 integer item ids"),
    ],
)
def test_embedding_ids_must_match_the_items(tmp_path, ids, vectors, match):
    directory = write_embeddings(tmp_path, ids, vectors)
    with pytest.raises(DataFormatError, match=re.escape(str(directory)) + "/" + match):
        read_movielens_100k(write_folder(tmp_path), embeddings_dir=directory)


def test_embeddings_dir_needs_one_pair_of_files(tmp_path):
    directory = write_embeddings(tmp_path, [1, 2, 3, 4], np.ones((4, 2)))
    write_embeddings(tmp_path, [1, 2, 3, 4], np.ones((4, 2)), name="other")
    pair = r"expected one '<name>\.npy' \+ '<name>_item_ids\.npy' pair of files, found \['other\.npy', 'titles\.npy'\]"
    with pytest.raises(DataFormatError, match=pair):
        read_movielens_100k(write_folder(tmp_path), embeddings_dir=directory)


def test_unreadable_embedding_file_is_named(tmp_path):
    directory = write_embeddings(tmp_path, [1, 2, 3, 4], np.ones((4, 2)))
    (directory / "titles.npy").write_bytes(b"not an array")
    with pytest.raises(DataFormatError, match=r"titles\.npy: not a readable \.npy array"):
        read_movielens_100k(write_folder(tmp_path), embeddings_dir=directory)


def test_skip_policy_drops_bad_rows_and_the_ratings_that_need_them(tmp_path):
    folder = write_folder(
        tmp_path,
        users=replaced(USERS, 1, "2|53|X|other|94043"),  # user 2 dropped -> its 2 ratings too
        ratings=RATINGS + ["1\t2\t0\t300", "garbage"],
    )
    movielens = read_movielens_100k(folder, on_bad_row="skip")
    assert movielens.skipped_rows == 1 + 2 + 2
    assert movielens.users["user_id"].tolist() == [1, 3]
    assert movielens.ratings["user_id"].tolist() == [1, 1, 1, 3, 1]
    with pytest.raises(DataFormatError, match=r"u\.user:2: field 'gender'"):
        read_movielens_100k(folder)


def test_missing_files_are_named(tmp_path):
    folder = write_folder(tmp_path)
    (folder / "u.item").unlink()
    with pytest.raises(FileNotFoundError, match=r"u\.item"):
        read_movielens_100k(folder)
    with pytest.raises(FileNotFoundError, match="folder not found"):
        read_movielens_100k(tmp_path / "absent")


def test_registry_orders_by_time_and_reads_sibling_embeddings(tmp_path):
    folder = write_folder(tmp_path)
    splits = load_dataset("movielens", path=str(folder))
    assert "title_embedding" not in splits.train.spec.feature_names
    assert "ordered by timestamp" in splits.split
    write_embeddings(tmp_path, [1, 2, 3, 4], np.ones((4, 2)))
    splits = load_dataset("movielens", path=str(folder), tasks=("love",))
    assert "title_embedding" in splits.train.spec.feature_names
    assert splits.train.spec.labels == ("love",)
    with pytest.raises(ValueError, match="may not be redistributed"):
        load_dataset("movielens")


def test_real_dataset_trains_mmoe_through_the_pipeline(shared_data):
    tf.keras.utils.set_random_seed(0)
    splits = load_dataset("movielens", path=str(shared_data / "movielens_100k" / "ml-100k"))
    assert [len(splits.train), len(splits.validation), len(splits.test)] == [80_000, 10_000, 10_000]
    # Time-ordered: no training rating is later than a validation one, nor those than test.
    times = [part.features["timestamp"] for part in (splits.train, splits.validation, splits.test)]
    assert times[0].max() <= times[1].min() and times[1].max() <= times[2].min()
    assert "validation from 1998-03-07, test from 1998-03-31" in splits.split
    spec = splits.train.spec.fit(splits.train.features)
    model = tfzoo.models.MMoE(feature_spec=spec, embedding_dim=4, num_experts=2, expert_units=(8,), tower_units=(4,))
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    train = make_dataset(splits.train, spec, batch_size=256, shuffle=True, seed=0).take(20)
    history = model.fit(train, epochs=2, verbose=0).history
    assert all(np.isfinite(v).all() for v in history.values())
    assert history["loss"][1] < history["loss"][0]
    validation = make_dataset(splits.validation.take(np.arange(2000)), spec, batch_size=1000)
    assert np.isfinite(model.evaluate(validation, verbose=0, return_dict=True)["like_auc"])
