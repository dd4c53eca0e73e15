"""`tfzoo data analyze` and `convert` under Beam's DirectRunner: the analysis is the one
machine's, and the converted TFRecord shards read back as the same rows."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import tensorflow as tf

from tests.data.test_streaming import _rows, _sorted_rows
from tfzoo import cli
from tfzoo.data.beam_pipelines import analyze, convert, read_analysis
from tfzoo.data.data_config import read_data_config
from tfzoo.data.file_writers import data_config_of, write_shards
from tfzoo.data.streaming import StreamedSplits

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def csv_config(tmp_path_factory):
    directory = tmp_path_factory.mktemp("csv")
    data, _ = _rows(900)
    users = np.array([f"user{i % 150}" for i in range(len(data))])
    write_shards(data, directory, file_format="csv", num_shards=3, extra_columns={"user": users})
    split = {"by": "hash", "key": "user", "shares": [0.7, 0.15, 0.15]}
    path = directory / "data.json"
    path.write_text(json.dumps(data_config_of(data.spec, file_format="csv", files="part-*", split=split)))
    return path


def test_beam_analysis_equals_the_one_machine_analysis(csv_config, tmp_path):
    assert cli.main(["data", "analyze", "--data-config", str(csv_config), "--out", str(tmp_path)]) == 0
    spec, rows, file_rows = read_analysis(str(tmp_path))
    expected = StreamedSplits(read_data_config(csv_config)).analyze()
    assert rows == expected.rows and file_rows == expected.train_file_rows
    assert spec.feature("color").vocabulary == expected.spec.feature("color").vocabulary
    assert spec.feature("history").element.vocabulary == expected.spec.feature("history").element.vocabulary
    price, expected_price = spec.feature("price"), expected.spec.feature("price")
    assert price.mean == pytest.approx(expected_price.mean, rel=1e-9)
    assert price.std == pytest.approx(expected_price.std, rel=1e-9)
    assert price.boundaries == pytest.approx(expected_price.boundaries)


def _sorted_raw_rows(splits: StreamedSplits, split: str) -> tuple[np.ndarray, ...]:
    batches = list(splits.batches(split))
    price = np.concatenate([b.features["price"] for b in batches])
    click = np.concatenate([b.labels["click"] for b in batches])
    buy = np.concatenate([b.labels["buy"] for b in batches])
    colors = np.concatenate([b.features["color"] for b in batches]).astype(str)
    buy = np.nan_to_num(buy, nan=-1)
    order = np.lexsort((buy, click, np.nan_to_num(price, nan=-1), colors))  # a canonical order of the rows
    return price[order], click[order], buy[order], colors[order]


def test_converted_tfrecord_shards_hold_the_same_rows(csv_config, tmp_path):
    out = tmp_path / "converted"
    assert cli.main(["data", "convert", "--data-config", str(csv_config), "--out", str(out), "--num-shards", "2"]) == 0
    assert sorted(p.name for p in out.glob("train-*")) == [f"train-0000{i}-of-00002.tfrecord" for i in range(2)]
    converted = StreamedSplits(read_data_config(out / "data.yaml"))
    original = StreamedSplits(read_data_config(csv_config))
    assert converted.analyze().rows == original.analyze().rows
    for split in ("train", "test"):
        for a, b in zip(_sorted_raw_rows(converted, split), _sorted_raw_rows(original, split)):
            np.testing.assert_array_equal(a, b)


def _columns(dataset) -> dict:
    """Every batch of a `StreamedSplits.dataset` joined, as `model_columns` gives them."""
    batches = list(dataset)
    join = lambda i: {k: np.concatenate([b[i][k].numpy() for b in batches]) for k in batches[0][i]}  # noqa: E731
    return {"features": join(0), "labels": join(1), "label_masks": join(2)}


def test_preprocessed_conversion_reads_back_as_the_model_inputs_of_the_source_rows(csv_config, tmp_path):
    out = tmp_path / "prepared"
    argv = ["data", "convert", "--data-config", str(csv_config), "--out", str(out), "--num-shards", "2", "--preprocess"]
    assert cli.main(argv) == 0
    prepared = StreamedSplits(read_data_config(out / "data.yaml"))
    original = StreamedSplits(read_data_config(csv_config))
    expected, analysis = original.analyze(), prepared.analyze()  # the stored analysis: no pass over the files
    assert analysis.spec == expected.spec and analysis.rows == expected.rows
    assert analysis.train_file_rows == {
        str(path): sum(1 for _ in tf.data.TFRecordDataset(str(path))) for path in sorted(out.glob("train-*"))
    }
    assert "preprocessed by `tfzoo data convert --preprocess`" in prepared.split and "hash of 'user'" in prepared.split
    for split in ("train", "validation", "test"):
        np.testing.assert_allclose(
            _sorted_rows(_columns(prepared.dataset(split, analysis.spec, batch_size=64))),
            _sorted_rows(_columns(original.dataset(split, expected.spec, batch_size=64))),
            rtol=1e-6,
            atol=1e-6,  # float32 normalisation, traced in two graphs: last-bit differences
        )

    def epoch(number, shard=(0, 1)):
        dataset = prepared.dataset("train", analysis.spec, batch_size=16, shuffle=True, epoch=number, shard=shard)
        return _columns(dataset)["features"]["price"]

    np.testing.assert_array_equal(epoch(2), epoch(2))  # a resumed run sees the same batches
    assert not np.array_equal(epoch(2), epoch(3))
    np.testing.assert_allclose(np.sort(np.concatenate([epoch(0, (0, 2)), epoch(0, (1, 2))])), np.sort(epoch(0)))
    # A parameter-server worker picks its shard by a tensor index inside its graph: the
    # same batches as the shard picked in Python.
    for index in (0, 1):
        np.testing.assert_array_equal(epoch(4, (tf.constant(index), 2)), epoch(4, (index, 2)))
    with pytest.raises(ValueError, match="Shard 2 of 3 has no file"):
        epoch(0, (tf.constant(0), 3))
    with pytest.raises(ValueError, match="Only preprocessed rows .* can be sharded by a tensor index"):
        original.dataset("train", expected.spec, batch_size=16, shard=(tf.constant(0), 2))
    repeated = prepared.dataset("train", analysis.spec, batch_size=50, shuffle=True, repeat=True)
    assert [int(b[0]["price"].shape[0]) for b in repeated.take(30)] == [50] * 30  # every batch full, passes on
    with pytest.raises(ValueError, match="holds preprocessed rows"):
        next(prepared.batches("train"))
    for run in (analyze, functools.partial(convert, num_shards=1)):  # model inputs are not raw rows
        with pytest.raises(ValueError, match="holds preprocessed rows .model inputs. already"):
            run(prepared.config, str(tmp_path / "again"))
