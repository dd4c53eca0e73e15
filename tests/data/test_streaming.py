"""Data configs' files streamed: the same rows and the same fitted spec as in memory, from
CSV, TSV, Parquet and TFRecord; deterministic splits, epochs and worker shards; bad rows
named by file and line, or skipped and counted."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from tfzoo.data import (
    CategoricalFeature,
    DatasetSpec,
    EmbeddingFeature,
    IdFeature,
    NumericFeature,
    SequenceFeature,
    TabularData,
)
from tfzoo.data.data_config import DataConfig
from tfzoo.data.errors import DataFormatError
from tfzoo.data.file_writers import data_config_of, write_shards
from tfzoo.data.pipeline import model_columns
from tfzoo.data.streaming import StreamedSplits

FORMATS = ("csv", "tsv", "parquet", "tfrecord")


def _rows(num_rows: int = 600, seed: int = 0) -> tuple[TabularData, np.ndarray]:
    """Rows of every feature kind with missing values and a missing label; and each row's
    split ("train", "validation", "test")."""
    rng = np.random.default_rng(seed)
    price = rng.lognormal(size=num_rows)
    price[::7] = np.nan
    history = np.full((num_rows, 4), "", dtype=object)
    for i in range(num_rows):
        length = i % 5
        history[i, :length] = rng.choice(["a", "b", "c", "d"], length)
    vector = rng.normal(size=(num_rows, 3)).astype(np.float32)
    vector[::11] = np.nan
    spec = DatasetSpec(
        features=(
            CategoricalFeature("color"),
            CategoricalFeature("shop", dtype="int64", min_count=2),
            IdFeature("item", num_ids=50),
            NumericFeature("price", log1p=True, num_buckets=4),
            SequenceFeature("history", element=CategoricalFeature("history"), max_length=3),
            EmbeddingFeature("vector", dim=3),
        ),
        labels=("click", "buy"),
    )
    buy_mask = (np.arange(num_rows) % 3 != 0).astype(np.float32)
    data = TabularData(
        features={
            "color": rng.choice(["red", "green", "blue, navy"], num_rows).astype(object),  # a comma to quote
            "shop": rng.integers(0, 30, num_rows),
            "item": rng.integers(0, 60, num_rows),
            "price": price.astype(np.float32),
            "history": history,
            "vector": vector,
        },
        labels={"click": (rng.random(num_rows) < 0.3).astype(np.float32), "buy": (rng.random(num_rows) < 0.2)},
        label_masks={"buy": buy_mask},
        spec=spec,
    )
    split = np.array(["train", "validation", "test"])[rng.choice(3, num_rows, p=[0.7, 0.15, 0.15])]
    return data, split


def _splits(
    tmp_path, file_format: str, *, num_shards: int = 3, **options
) -> tuple[StreamedSplits, TabularData, np.ndarray]:
    data, split = _rows()
    write_shards(data, tmp_path, file_format=file_format, num_shards=num_shards, extra_columns={"part": split})
    rule = {
        "by": "column",
        "column": "part",
        "values": {"train": ["train"], "validation": ["validation"], "test": ["test"]},
    }
    raw = data_config_of(data.spec, file_format=file_format, files=f"{tmp_path}/part-*", split=rule)
    return StreamedSplits(DataConfig.from_dict(raw, source="test.yaml"), **options), data, split


def _sorted_rows(columns: dict) -> np.ndarray:
    """The rows of preprocessed columns as one float matrix, in a canonical order."""
    flat = [np.asarray(v, np.float64).reshape(len(v), -1) for _, v in sorted(columns["features"].items())]
    flat += [
        np.asarray(columns[part][k], np.float64)[:, None]
        for part in ("labels", "label_masks")
        for k in sorted(columns[part])
    ]
    matrix = np.concatenate(flat, axis=1)
    return matrix[np.lexsort(matrix.T[::-1])]


@pytest.mark.parametrize("file_format", FORMATS)
def test_streamed_rows_and_spec_equal_the_in_memory_ones(tmp_path, file_format):
    splits, data, split = _splits(tmp_path, file_format)
    analysis = splits.analyze()
    assert analysis.rows == {s: int((split == s).sum()) for s in ("train", "validation", "test")}
    train = data.take(np.flatnonzero(split == "train"))
    expected = data.spec.fit(train.features)
    assert analysis.spec.feature("color").vocabulary == expected.feature("color").vocabulary
    assert analysis.spec.feature("shop").vocabulary == expected.feature("shop").vocabulary  # min_count 2
    assert analysis.spec.feature("history").element.vocabulary == expected.feature("history").element.vocabulary
    price, expected_price = analysis.spec.feature("price"), expected.feature("price")
    assert price.mean == pytest.approx(expected_price.mean, rel=1e-6)
    assert price.std == pytest.approx(expected_price.std, rel=1e-6)
    assert price.boundaries == pytest.approx(expected_price.boundaries, abs=1e-5)
    # Every test row, preprocessed as the model sees it (labels and masks included).
    test = data.take(np.flatnonzero(split == "test"))
    batches = list(splits.dataset("test", analysis.spec, batch_size=64))
    streamed = {
        "features": {k: np.concatenate([b[0][k].numpy() for b in batches]) for k in batches[0][0]},
        "labels": {k: np.concatenate([b[1][k].numpy() for b in batches]) for k in batches[0][1]},
        "label_masks": {k: np.concatenate([b[2][k].numpy() for b in batches]) for k in batches[0][2]},
    }
    np.testing.assert_allclose(_sorted_rows(streamed), _sorted_rows(model_columns(test, analysis.spec)), rtol=1e-6)


def test_gzip_csv_reads_as_plain_csv(tmp_path):
    splits, _, _ = _splits(tmp_path, "csv", num_shards=1)
    (path,) = splits.files("train")
    with open(path, "rb") as plain, gzip.open(f"{path}.gz", "wb") as packed:
        packed.write(plain.read())
    gzipped = StreamedSplits(DataConfig.from_dict({**splits.config.to_dict(), "files": f"{path}.gz"}, source="gz.yaml"))
    packed, plain = gzipped.analyze(), splits.analyze()
    assert (packed.spec, packed.rows) == (plain.spec, plain.rows)


def test_hash_split_keeps_each_key_in_one_split_and_follows_the_shares(tmp_path):
    data, _ = _rows(3000)
    users = np.array([f"user{i % 400}" for i in range(len(data))])
    write_shards(data, tmp_path, file_format="csv", num_shards=2, extra_columns={"user": users})
    rule = {"by": "hash", "key": "user", "shares": [0.6, 0.2, 0.2]}
    splits = StreamedSplits(
        DataConfig.from_dict(
            data_config_of(data.spec, file_format="csv", files=f"{tmp_path}/*", split=rule), source="h"
        )
    )
    seen = {}
    for name in ("train", "validation", "test"):
        for batch in splits.batches(name):
            for user in batch.split_columns["user"]:
                assert seen.setdefault(user, name) == name, user
    shares = np.bincount([("train", "validation", "test").index(s) for s in seen.values()], minlength=3) / len(seen)
    np.testing.assert_allclose(shares, [0.6, 0.2, 0.2], atol=0.07)  # 400 keys
    assert splits.analyze().rows == {
        name: sum(len(b) for b in splits.batches(name)) for name in ("train", "validation", "test")
    }


def test_epochs_are_functions_of_seed_and_epoch_and_shards_partition_the_rows(tmp_path):
    splits, data, split = _splits(tmp_path, "parquet", num_shards=4)
    spec = splits.analyze().spec

    def epoch(number, seed=0, shard=(0, 1)):
        dataset = splits.dataset("train", spec, batch_size=32, shuffle=True, seed=seed, epoch=number, shard=shard)
        return np.concatenate([b[0]["price"].numpy() for b in dataset])

    np.testing.assert_array_equal(epoch(3), epoch(3))  # a resumed run sees the same batches
    assert not np.array_equal(epoch(3), epoch(4)) and not np.array_equal(epoch(3), epoch(3, seed=1))
    np.testing.assert_allclose(np.sort(epoch(3)), np.sort(epoch(4)), rtol=1e-5)  # the same rows, reordered
    halves = [epoch(0, shard=(i, 2)) for i in range(2)]  # two workers, two files each
    assert sorted(len(h) for h in halves) != [0, 0]
    np.testing.assert_allclose(np.sort(np.concatenate(halves)), np.sort(epoch(0)), rtol=1e-5)
    ids = [
        np.concatenate([b[0]["item"].numpy() for b in splits.dataset("train", spec, batch_size=99, shard=(i, 2))])
        for i in range(2)
    ]
    assert len(ids[0]) + len(ids[1]) == int((split == "train").sum())
    with pytest.raises(ValueError, match="Shard 4 of 5 has no file"):
        splits.dataset("train", spec, batch_size=8, shard=(4, 5))


def _bad_csv(tmp_path) -> str:
    path = tmp_path / "rows.csv"
    path.write_text(
        "color,price,click\n"
        "red,1.5,1\n"
        "green,2.5\n"  # line 3: a field short
        "blue,cheap,0\n"  # line 4: not a number
        "red,,1\n"  # missing price: fine
        "red,3.0,maybe\n"  # line 6: label not a number
        "blue,4.0,0\n"
    )
    return str(path)


def _bad_csv_config(path: str) -> DataConfig:
    raw = {
        "format": "csv",
        "files": {"train": path, "validation": path, "test": path},
        "features": [{"name": "color", "kind": "categorical"}, {"name": "price", "kind": "numeric"}],
        "labels": ["click"],
    }
    return DataConfig.from_dict(raw, source="bad.yaml")


def test_a_bad_row_names_its_file_line_and_field(tmp_path):
    path = _bad_csv(tmp_path)
    splits = StreamedSplits(_bad_csv_config(path))
    with pytest.raises(DataFormatError) as error:
        splits.analyze()
    assert str(error.value).startswith(f"{path}:3: 2 fields where the header has 3")
    (tmp_path / "rows.csv").write_text(open(path).read().replace("green,2.5\n", "green,2.5,1\n"))
    with pytest.raises(DataFormatError) as error:
        splits.analyze()
    assert str(error.value).startswith(f"{path}:4: field 'price': not a valid numeric value: 'cheap'")


def test_skipped_bad_rows_are_counted_per_file_and_the_rest_kept(tmp_path):
    path = _bad_csv(tmp_path)
    splits = StreamedSplits(_bad_csv_config(path), on_bad_row="skip")
    analysis = splits.analyze()
    assert analysis.rows["train"] == 3  # lines 2, 5 and 7
    assert splits.bad_rows.take() == {path: 3 * 3}  # three bad rows, read once per split
    assert analysis.spec.feature("price").mean == pytest.approx(np.mean([1.5, 4.0]))
    assert "rows.csv:3" in splits.bad_rows.first[path]
    assert splits.bad_rows.take() == {}  # taking resets: each epoch reports its own


@pytest.mark.parametrize("file_format", ["csv", "tsv", "parquet"])
def test_a_file_without_a_column_the_config_reads_names_the_file_and_the_column(tmp_path, file_format):
    # A header (or schema) lacking `price`: no row of the file can be read, so even `skip`
    # stops, naming the file and the column. (In TFRecord an absent feature is a missing
    # value: each record may have its own.)
    path = str(tmp_path / f"rows.{file_format}")
    if file_format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"color": ["red", "blue"], "click": [1.0, 0.0]}), path)
    else:
        (tmp_path / f"rows.{file_format}").write_text(
            "color,click\nred,1\nblue,0\n".replace(",", {"csv": ",", "tsv": "\t"}[file_format])
        )
    raw = {
        "format": file_format,
        "files": {"train": path, "validation": path, "test": path},
        "features": [{"name": "color", "kind": "categorical"}, {"name": "price", "kind": "numeric"}],
        "labels": ["click"],
    }
    for policy in ("raise", "skip"):
        with pytest.raises(DataFormatError) as error:
            StreamedSplits(DataConfig.from_dict(raw, source="rows.yaml"), on_bad_row=policy).analyze()
        assert str(error.value).startswith(path) and "price" in str(error.value), str(error.value)


@pytest.mark.parametrize("file_format", ["csv", "tfrecord"])
def test_validation_carved_from_training_files_and_labels_of_two_columns(tmp_path, file_format):
    # Training files dealt to train / validation by a hash; test files kept whole; ESMM's
    # labels: cvr observed on clicks, ctcvr = buy x click.
    data, _ = _rows(900)
    users = np.array([f"user{i % 300}" for i in range(len(data))])
    train_rows, test_rows = np.arange(600), np.arange(600, 900)
    for name, rows in (("train", train_rows), ("test", test_rows)):
        write_shards(
            data.take(rows), tmp_path / name, file_format=file_format, num_shards=2, extra_columns={"user": users[rows]}
        )
    raw = data_config_of(data.spec, file_format=file_format, files="x", split=None)
    raw["files"] = {"train": f"{tmp_path}/train/*", "test": f"{tmp_path}/test/*"}
    raw["split"] = {"by": "hash", "key": "user", "shares": [0.8, 0.2, 0]}
    raw["labels"] = [
        "click",
        {"name": "cvr", "column": "buy", "observed_where": "click"},
        {"name": "ctcvr", "column": "buy", "times": "click"},
    ]
    splits = StreamedSplits(DataConfig.from_dict(raw, source="carved.yaml"))
    analysis = splits.analyze()
    parts = {name: splits.in_memory(name) for name in ("train", "validation", "test")}
    assert analysis.rows == {name: len(part) for name, part in parts.items()}
    assert analysis.rows["train"] + analysis.rows["validation"] == 600 and analysis.rows["test"] == 300
    assert 0.1 < analysis.rows["validation"] / 600 < 0.3
    test = data.take(test_rows)
    click, buy = test.labels["click"], np.where(test.label_masks["buy"] > 0, test.labels["buy"], np.nan)

    def order_of(part):  # shards deal rows round-robin: compare in one order
        f = part.features
        return np.lexsort(
            (f["item"], f["shop"], np.nan_to_num(f["vector"][:, 0], nan=-9), np.nan_to_num(f["price"], nan=-9))
        )

    got = parts["test"]
    order, got_order = order_of(test), order_of(got)
    np.testing.assert_array_equal(got.labels["ctcvr"][got_order], np.nan_to_num(buy * click)[order])
    observed = (click == 1) & np.isfinite(buy)
    np.testing.assert_array_equal(got.label_masks["cvr"][got_order], observed[order].astype(np.float32))
    np.testing.assert_array_equal(got.labels["cvr"][got_order], np.where(observed, buy, 0)[order])
