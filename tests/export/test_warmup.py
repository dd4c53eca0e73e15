"""Warm-up requests: rows synthesised from the fitted spec, TF Serving's file format, checked at export."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

import tfzoo
from tfzoo.data import (
    CategoricalFeature,
    DatasetSpec,
    EmbeddingFeature,
    FeaturePreprocessor,
    IdFeature,
    NumericFeature,
    SequenceFeature,
)
from tfzoo.export import (
    example_rows,
    export_saved_model,
    predict_log,
    read_warmup_requests,
    signature_inputs,
    synthesize_inputs,
    warmup_logs,
    write_warmup_requests,
)
from tfzoo.export.warmup import WARMUP_DIRECTORY, WARMUP_FILE
from tfzoo.models import SharedBottom

SPEC = DatasetSpec(
    features=(
        CategoricalFeature("city", vocabulary=("paris", "rome")),
        CategoricalFeature("code", vocabulary=(7, 9, 11), dtype="int64"),
        CategoricalFeature("hashed", hash_buckets=10),
        IdFeature("user", num_ids=3),
        NumericFeature("amount", mean=2.0, std=0.5, log1p=True),
        NumericFeature("age", mean=40.0, std=10.0),
        SequenceFeature("history", CategoricalFeature("item", vocabulary=("a", "b")), max_length=5),
        SequenceFeature("prices", NumericFeature("price", mean=1.0, std=2.0), max_length=2),
        EmbeddingFeature("text", dim=3),
    ),
    labels=("click",),
)


def test_example_rows_are_valid_raw_features_of_the_spec():
    rows = example_rows(SPEC, num_rows=4)
    assert SPEC.check_columns(rows) == 4
    assert rows["city"].tolist() == ["paris", "rome", "paris", "rome"]
    assert rows["code"].tolist() == [7, 9, 11, 7] and rows["user"].tolist() == [0, 1, 2, 0]
    # Numbers: mean, mean - std, mean + std (raw space), missing; log1p inverted: log1p(raw) = 2.0 for row 0.
    np.testing.assert_allclose(rows["age"][:3], [40.0, 30.0, 50.0])
    np.testing.assert_allclose(np.log1p(rows["amount"][:3]), [2.0, 1.5, 2.5], rtol=1e-6)
    assert np.isnan(rows["age"][3]) and np.isnan(rows["text"][3]).all()
    # Sequences: row 0 full (3 of max 5), later rows shorter and padded.
    assert rows["history"].tolist()[:2] == [["a", "b", "a"], ["a", "b", ""]]
    # Every row goes through the serving preprocessing without NaN or error.
    processed = FeaturePreprocessor(SPEC)({k: tf.constant(v) for k, v in rows.items()})
    assert all(np.isfinite(v.numpy()).all() for v in processed.values() if v.dtype.is_floating)
    with pytest.raises(ValueError, match="num_rows"):
        example_rows(SPEC, num_rows=0)


def test_neutral_inputs_follow_any_signature():
    inputs = synthesize_inputs(
        {
            "ids": tf.TensorSpec([None], tf.int64),
            "query": tf.TensorSpec([None, 4], tf.float32),
            "k": tf.TensorSpec([], tf.int32),
            "tags": tf.TensorSpec([None, None], tf.string),
        },
        3,
    )
    assert {k: (v.shape, v.dtype.kind) for k, v in inputs.items()} == {
        "ids": ((3,), "i"),
        "query": ((3, 4), "f"),
        "k": ((), "i"),
        "tags": ((3, 1), "O"),
    }


def test_warmup_file_round_trips_as_tf_serving_reads_it(tmp_path):
    logs = [
        predict_log("m", "serving_default", {"x": np.array([1.0, 2.0], np.float32)}),
        predict_log("m", "other", {"s": np.array([b"a"], dtype=object)}),
    ]
    path = write_warmup_requests(tmp_path, logs)
    assert path == tmp_path / WARMUP_DIRECTORY / WARMUP_FILE
    # The file is a TFRecord of serialized PredictionLog protos.
    records = [
        prediction_log_pb2.PredictionLog.FromString(r) for r in tf.data.TFRecordDataset(str(path)).as_numpy_iterator()
    ]
    assert records == logs == read_warmup_requests(tmp_path)
    assert tf.make_ndarray(records[0].predict_log.request.inputs["x"]).tolist() == [1.0, 2.0]
    assert read_warmup_requests(tmp_path / "elsewhere") == []
    path.write_bytes(b"not a tfrecord at all")
    with pytest.raises(ValueError, match=WARMUP_FILE):
        read_warmup_requests(tmp_path)


def test_signature_inputs_use_the_names_the_saved_signature_takes():
    spec = {"a": tf.TensorSpec([None], tf.float32, name="a"), "b": tf.TensorSpec([None], tf.string, name="b")}
    as_dict = tf.function(lambda features: {"y": features["a"]}, input_signature=[spec]).get_concrete_function()
    as_args = tf.function(
        lambda user_id, query: {"y": query},
        input_signature=[tf.TensorSpec([None], tf.int64), tf.TensorSpec([None, 2], tf.float32)],
    ).get_concrete_function()
    assert set(signature_inputs(as_dict)) == {"a", "b"}
    assert list(signature_inputs(as_args)) == ["user_id", "query"]


def test_a_warmup_request_that_fails_stops_the_export(tmp_path):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def positive_only(x):
        tf.debugging.assert_positive(x, message="x must be positive")
        return {"y": x}

    function = positive_only.get_concrete_function()
    with pytest.raises(ValueError, match="'scores'.*fails on the model"):
        warmup_logs("m", {"scores": function}, inputs={"scores": {"x": np.array([-1.0], np.float32)}})
    logs = warmup_logs("m", {"scores": function}, inputs={"scores": {"x": np.array([1.0], np.float32)}})
    assert len(logs) == 1 and logs[0].predict_log.request.model_spec.signature_name == "scores"


def test_export_writes_warmup_for_every_signature_and_registers_the_model(tmp_path, synthetic_small):
    _, spec = synthetic_small
    model = SharedBottom(feature_spec=spec, bottom_units=[4], tower_units=[2])
    extra = {
        "flow_only": lambda module: tf.function(
            lambda flow: {"n": tf.strings.length(flow)}, input_signature=[tf.TensorSpec([None], tf.string, name="flow")]
        ).get_concrete_function()
    }
    path = export_saved_model(model, spec, tmp_path, "ranker", extra_signatures=extra)
    logs = read_warmup_requests(path)
    by_signature = {}
    for log in logs:
        request = log.predict_log.request
        by_signature.setdefault(request.model_spec.signature_name, []).append(
            {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        )
    assert sorted(by_signature) == ["flow_only", "serving_default"]
    assert [len(r["flow"]) for r in by_signature["serving_default"]] == [1, 4]  # batch sizes 1 and 4
    assert set(by_signature["serving_default"][0]) == set(spec.feature_names)
    # The extra signature's input is a spec feature: it gets the spec's vocabulary values.
    vocabulary = [v.encode() for v in spec.feature("flow").vocabulary]
    assert set(by_signature["flow_only"][1]["flow"].tolist()) <= set(vocabulary)
    assert (tmp_path / "models.config").read_text().count('name: "ranker"') == 1
    # The requests run on the exported model exactly as a server replays them.
    loaded = tf.saved_model.load(str(path))
    for log in logs:
        request = log.predict_log.request
        loaded.signatures[request.model_spec.signature_name](
            **{k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        )
    assert tfzoo.export.next_version(tmp_path / "ranker") == 2
