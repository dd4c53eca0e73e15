"""`tfzoo train MODEL --data-config FILE`: a ranker trained from files it never holds in
memory reports, resumes and exports exactly as one trained from memory.

The rows are the generated multi-scenario rows, written as shards with a `part` column
that splits them; the in-memory copy of the same rows checks every number."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
import yaml

from tfzoo import cli
from tfzoo.data.file_writers import data_config_of, write_shards
from tfzoo.data.pipeline import make_dataset
from tfzoo.data.synthetic import make_multi_scenario_data
from tfzoo.evaluation.metrics import task_metrics
from tfzoo.training import RunConfig, evaluate, load_run, train

TINY_MMOE = {"embedding_dim": 2, "num_experts": 2, "expert_units": [8], "tower_units": [4]}
SPLITS = ("train", "validation", "test")


@pytest.fixture(scope="module")
def rows():
    data = make_multi_scenario_data(num_rows=6000, seed=0)
    part = np.array(SPLITS)[np.random.default_rng(0).choice(3, len(data), p=[0.8, 0.1, 0.1])]
    return data, part


def _config_file(rows, directory, file_format: str) -> str:
    data, part = rows
    write_shards(data, directory / "shards", file_format=file_format, num_shards=3, extra_columns={"part": part})
    rule = {"by": "column", "column": "part", "values": {s: [s] for s in SPLITS}}
    raw = data_config_of(data.spec, file_format=file_format, files="shards/part-*", split=rule, name="clicks")
    path = directory / "clicks.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return str(path)


def _run_config(path: str, **overrides) -> RunConfig:
    from tfzoo.data.data_config import read_data_config

    stored = read_data_config(path).run_record()
    settings = dict(
        model="mmoe", dataset="clicks", data_config=stored, epochs=2, batch_size=64, seed=3, model_options=TINY_MMOE
    )
    return RunConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def csv_run(rows, tmp_path_factory):
    directory = tmp_path_factory.mktemp("csv")
    path = _config_file(rows, directory, "csv")
    return path, directory / "run", train(_run_config(path, patience=0), directory / "run", verbose=0)


def test_the_streamed_report_is_the_model_on_the_same_rows_in_memory(rows, csv_run):
    data, part = rows
    _, run_dir, metrics = csv_run
    losses = metrics["history"]["loss"]
    assert len(losses) == 2 and losses[1] < losses[0]
    stored = json.loads((run_dir / "config.json").read_text())
    assert stored["inputs"]["rows"] == {s: int((part == s).sum()) for s in SPLITS}
    assert stored["run"]["data_config"]["format"] == "csv" and "part" in stored["split"]
    # The restored model on the in-memory copy of the test rows: the numbers the run wrote.
    run = load_run(run_dir)
    test = data.take(np.flatnonzero(part == "test"))
    predictions = run.model.predict(make_dataset(test, run.inputs.feature_spec, batch_size=512, with_labels=False))
    expected = task_metrics(test.labels, predictions, test.label_masks)
    for task in ("ctr", "atc", "cvr"):
        assert metrics["test"][task]["rows"] == expected[task]["rows"]
        assert metrics["test"][task]["auc"] == pytest.approx(expected[task]["auc"], abs=1e-5), task
    assert metrics["test"]["ctr"]["auc"] > 0.6  # it learned (ctr is the densest task)
    # The baselines on the same rows, and `evaluate` reproduces it all from the files.
    for name, report in metrics["baselines"]["test"].items():
        assert report["ctr"]["rows"] == expected["ctr"]["rows"] and report["ctr"]["auc"] > 0.6, name
    assert evaluate(run_dir)["tasks"]["ctr"]["auc"] == pytest.approx(metrics["test"]["ctr"]["auc"], abs=1e-6)


def test_resumed_streamed_run_equals_an_uninterrupted_one(csv_run, tmp_path):
    path, straight_dir, _ = csv_run
    train(_run_config(path, epochs=1, patience=0), tmp_path / "resumed", verbose=0)
    train(_run_config(path, epochs=2, patience=0), tmp_path / "resumed", resume=True, verbose=0)
    straight, resumed = load_run(straight_dir), load_run(tmp_path / "resumed")
    for run in (straight, resumed):
        run.checkpoint.restore(run.model)
    assert int(resumed.model.optimizer.iterations) == int(straight.model.optimizer.iterations)
    for a, b in zip(straight.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_export_serves_raw_rows_as_the_streamed_model_scores_them(rows, csv_run, tmp_path):
    data, part = rows
    _, run_dir, _ = csv_run
    assert cli.main(["export", "--run", str(run_dir), "--to", str(tmp_path), "--name", "clicks"]) == 0
    serving = tf.saved_model.load(str(tmp_path / "clicks" / "1")).signatures["serving_default"]
    run = load_run(run_dir)
    test = data.take(np.flatnonzero(part == "test")[:50])
    raw = {f.name: tf.constant(test.features[f.name]) for f in run.inputs.feature_spec.features}
    served = serving(**raw)
    predicted = run.model.predict(make_dataset(test, run.inputs.feature_spec, batch_size=64, with_labels=False))
    for task, scores in predicted.items():
        np.testing.assert_allclose(np.ravel(served[task]), np.ravel(scores), atol=1e-5)


@pytest.mark.parametrize("file_format", ["parquet", "tfrecord"])
def test_parquet_and_tfrecord_train_from_the_command_line(rows, tmp_path, file_format, capsys):
    path = _config_file(rows, tmp_path, file_format)
    run_dir = tmp_path / "run"
    args = ["train", "mmoe", "--data-config", path, "--epochs", "1", "--batch-size", "512", "--out", str(run_dir)]
    assert cli.main([*args, "--option", f"num_experts={TINY_MMOE['num_experts']}"]) == 0
    out = capsys.readouterr().out
    assert "split: clicks: by the value of 'part'" in out and "logistic_regression (test)" in out
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"]["ctr"]["rows"] == int((rows[1] == "test").sum())


def test_each_worker_reads_its_own_files_and_together_every_training_row(rows, csv_run):
    # What `tfzoo train --strategy multi_worker` hands each of two workers' input
    # pipelines (one replica each) over the three shards: files 0 and 2, and file 1.
    from tfzoo.training.registry import task_for

    data, part = rows
    config = _run_config(csv_run[0], epochs=1, batch_size=64)
    task = task_for("mmoe")
    prepared = task.prepare(config, None)
    fit = task.datasets(prepared, config)
    steps = fit.sharded_steps_per_epoch(2, 32)  # 2 pipelines of a 64-row global batch
    row_key = data.features["item_vector"][:, 0]  # continuous: one value per row
    train = np.flatnonzero(part == "train")
    expected = [set(row_key[train[train % 3 != 1]].tolist()), set(row_key[train[train % 3 == 1]].tolist())]
    assert steps == int(np.ceil(max(map(len, expected)) / 32))  # the larger share, 32 rows a step
    for worker in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=worker, num_replicas_in_sync=2)
        batches = list(fit.replica_fn(context))
        assert len(batches) == steps and all(len(b[1]["ctr"]) == 32 for b in batches)
        seen = {float(v) for b in batches for v in b[0]["item_vector"][:, 0].numpy()}
        # Its own rows, every one of them (the smaller share goes round again).
        assert seen == expected[worker], worker
    assert not expected[0] & expected[1]


@pytest.mark.timeout(600)
def test_two_launched_workers_read_disjoint_files_that_together_hold_every_training_row(rows, csv_run, tmp_path):
    # `tfzoo launch` of `tfzoo train --strategy multi_worker` over two worker processes:
    # each one's input pipeline reads its own shards (every 2nd file), the two together
    # every training row, and the run trains the epoch the larger share needs.
    import io
    import re
    import sys

    from tfzoo.training.launch import launch

    data, part = rows
    run = tmp_path / "run"
    command = [sys.executable, "-m", "tfzoo", "train", "mmoe", "--data-config", csv_run[0]]
    command += ["--strategy", "multi_worker", "--epochs", "1", "--batch-size", "256", "--no-report"]
    command += ["--out", str(run), "--option", f"num_experts={TINY_MMOE['num_experts']}"]
    command += ["--option", "expert_units=[8]", "--option", "tower_units=[4]"]
    out = io.StringIO()
    assert launch(command, workers=2, sink=out, timeout=540) == 0, out.getvalue()[-5000:]
    log = out.getvalue()
    reads = {}
    for worker, pipeline, count, rows_read, files in re.findall(
        r"\[worker(\d)\] INFO tfzoo\.training: input pipeline (\d) of 2 reads (\d+) training file\(s\), (\d+) rows: "
        r"(.*)",
        log,
    ):
        assert worker == pipeline  # worker i is input pipeline i
        names = [f.rsplit("/", 1)[-1] for f in files.split(", ")]
        assert len(names) == int(count)
        reads[int(worker)] = (int(rows_read), names)
    assert set(reads) == {0, 1}, log[-3000:]
    # Every 2nd file of the sorted list: disjoint, and each of the 3 shards read by one worker.
    assert reads[0][1] == ["part-00000-of-00003.csv", "part-00002-of-00003.csv"]
    assert reads[1][1] == ["part-00001-of-00003.csv"]
    assert reads[0][0] + reads[1][0] == int((part == "train").sum())  # every training row
    config = json.loads((run / "config.json").read_text())
    assert config["distribute"] == {"strategy": "multi_worker", "replicas": 2}
    checkpoint = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run / "checkpoints")))
    steps = int(np.ceil(max(reads[0][0], reads[1][0]) * 2 / 256))
    assert checkpoint.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == steps


@pytest.mark.timeout(600)
def test_preprocessed_rows_train_under_parameter_server_and_export_serves_raw_rows(rows, csv_run, tmp_path):
    # Preprocessed rows are read by TensorFlow ops alone, so parameter-server workers can
    # read them: `tfzoo launch` of a chief, 2 workers and a parameter server, each worker
    # reading its own shards (picked by its index inside its graph; the coordinator, which
    # builds the workers' datasets, logs their shares).
    import re
    import sys

    from tests.training.test_distributed import _launch

    data, part = rows
    path, _, _ = csv_run
    prepared = tmp_path / "prepared"
    argv = ["data", "convert", "--data-config", path, "--out", str(prepared), "--preprocess", "--num-shards", "3"]
    assert cli.main(argv) == 0
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "tfzoo", "train", "mmoe", "--data-config", str(prepared / "data.yaml")]
    command += ["--strategy", "parameter_server", "--epochs", "1", "--batch-size", "512", "--out", str(run_dir)]
    command += ["--option", f"num_experts={TINY_MMOE['num_experts']}", "--no-report"]
    code, log = _launch(command, workers=2, ps=1)
    assert code == 0, log[-5000:]
    assert "preprocessed by `tfzoo data convert --preprocess` from clicks (by the value of 'part'" in log
    reads = {
        int(worker): (int(count), int(rows_read), [f.rsplit("/", 1)[-1] for f in files.split(", ")])
        for worker, count, rows_read, files in re.findall(
            r"\[chief0\] INFO tfzoo\.training: input pipeline (\d) of 2 reads (\d+) training file\(s\), (\d+) rows: (.*)",
            log,
        )
    }
    # Every 2nd file of the sorted list: disjoint, each of the 3 shards read by one worker.
    assert reads[0][2] == ["train-00000-of-00003.tfrecord", "train-00002-of-00003.tfrecord"], reads
    assert reads[1][2] == ["train-00001-of-00003.tfrecord"], reads
    assert reads[0][1] + reads[1][1] == int((part == "train").sum())  # every training row
    assert json.loads((run_dir / "config.json").read_text())["distribute"]["strategy"] == "parameter_server"
    # An epoch is every worker's batches: the larger share's batches, from each worker.
    checkpoint = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run_dir / "checkpoints")))
    steps = 2 * int(np.ceil(max(reads[0][1], reads[1][1]) / 512))
    assert checkpoint.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == steps
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"]["ctr"]["rows"] == int((part == "test").sum())
    # The export takes raw rows: the spec the rows were preprocessed with is the run's.
    assert cli.main(["export", "--run", str(run_dir), "--to", str(tmp_path), "--name", "clicks"]) == 0
    serving = tf.saved_model.load(str(tmp_path / "clicks" / "1")).signatures["serving_default"]
    run = load_run(run_dir)
    test = data.take(np.flatnonzero(part == "test")[:50])
    served = serving(**{f.name: tf.constant(test.features[f.name]) for f in run.inputs.feature_spec.features})
    predicted = run.model.predict(make_dataset(test, run.inputs.feature_spec, batch_size=64, with_labels=False))
    for task, scores in predicted.items():
        np.testing.assert_allclose(np.ravel(served[task]), np.ravel(scores), atol=1e-5)
