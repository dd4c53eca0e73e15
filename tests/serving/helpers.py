"""What the serving tests serve, and how they call the REST API.

The end-to-end tests serve every model of `tfzoo.export.EXPORTERS`, exported by its own
exporter: a ranking-family model is built tiny on the synthetic multi-scenario spec
(`TINY_OPTIONS`); another kind of model needs a builder in `ZOO_MODEL_BUILDERS`.
Requests use real synthetic rows where a signature takes the spec's raw features and the
version's warm-up rows otherwise; the reference is the exported signature called in
this process.
"""

from __future__ import annotations

import base64
import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

import tfzoo
from tfzoo.export import EXPORTERS, export_model, export_saved_model
from tfzoo.models.registry import build_model
from tfzoo.serving import example_inputs
from tfzoo.training.families import MODEL_FAMILIES

Reference = Callable[[str, Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


def saved_model_reference(path: Path) -> Reference:
    """The exported signatures, called in this process (no server in between)."""
    loaded = tf.saved_model.load(str(path))

    def reference(signature, inputs):
        return {
            k: v.numpy()
            for k, v in loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()}).items()
        }

    return reference


_SYNTHETIC = tfzoo.data.make_multi_scenario_data(400, seed=3)
SYNTHETIC_SPEC = _SYNTHETIC.spec.fit(_SYNTHETIC.features)
# Real rows (with their missing values) for requests; 3 rows per request by default.
SYNTHETIC_ROWS = {k: v[:64] for k, v in _SYNTHETIC.features.items()}

# Tiny hyper-parameters of the zoo models the serving tests export, for the synthetic
# spec; a model not listed is built with its constructor defaults; entries of models that
# are not registered are unused.
TINY_OPTIONS: dict[str, dict] = {
    "single_task": {"hidden_units": [8]},
    "shared_bottom": {"bottom_units": [8], "tower_units": [4]},
    "mmoe": {"num_experts": 2, "expert_units": [8], "tower_units": [4]},
    "ple": {"num_levels": 1, "num_task_experts": 1, "num_shared_experts": 1, "expert_units": [8], "tower_units": [4]},
    "grec": {
        "token_features": {"user": ["cat_0", "num_0"], "item": ["item_vector"]},
        "model_dim": 8,
        "num_heads": 2,
        "num_experts": 4,
        "top_k": 2,
        "expert_units": [8],
        "tower_units": [4],
    },
}


# Models outside the tabular ranking family: `model name -> () -> (model, inputs)`, the
# model and the model-inputs description a run hands to the model's exporter.
def _prepared_run(model: str, dataset: str, options: dict) -> tuple[tf.keras.Model, Any]:
    # Exactly what `tfzoo export` gets from a run of `model` (untrained weights).
    from tfzoo.training import RunConfig, family_for

    prepared = family_for(model).prepare(RunConfig(model=model, dataset=dataset, model_options=options), None)
    return prepared.model, prepared.inputs


# The tiny zoo models outside the ranking family: model -> (dataset, model options).
# Explicit eq. 6 weights for ssmtl: the objectives' heads exist (the export leaves them
# out), and no calibration runs.
TINY_RUNS: dict[str, tuple[str, dict]] = {
    "ssmtl": (
        "friend_graph",
        {
            "hidden_dim": 8,
            "embedding_dim": 8,
            "num_heads": 2,
            "fanouts": [3, 2],
            "cca_weight": 0.1,
            "mae_weight": 1.0,
            "ssl_batch_size": 16,
            "mae_decoder_dim": 8,
        },
    ),
    "supermoe": (
        "generated_sequences",
        {"encoder": {"units": 8, "num_heads": 2, "key_dim": 4, "ffn_units": 8, "num_experts": 2}},
    ),
}
ZOO_MODEL_BUILDERS: dict[str, Callable[[], tuple[tf.keras.Model, Any]]] = {
    name: (lambda name=name: _prepared_run(name, *TINY_RUNS[name])) for name in TINY_RUNS
}

# Every model with a registered exporter is served in the end-to-end tests.
ZOO_MODELS: list[str] = sorted(EXPORTERS)


def build_zoo_model(model_name: str, *, seed: int = 0) -> tuple[tf.keras.Model, Any]:
    """A tiny untrained `model_name` and its model inputs, as `tfzoo export` gets them from a run."""
    tf.keras.utils.set_random_seed(seed)
    if model_name in ZOO_MODEL_BUILDERS:
        return ZOO_MODEL_BUILDERS[model_name]()
    if MODEL_FAMILIES.get(model_name) != "ranking":
        raise LookupError(
            f"Model {model_name!r} has an exporter but the serving tests cannot build it: add a "
            f"builder of a tiny {model_name} to ZOO_MODEL_BUILDERS in {Path(__file__).name}."
        )
    try:
        model = build_model(model_name, SYNTHETIC_SPEC, options=TINY_OPTIONS.get(model_name))
    except (TypeError, ValueError) as error:
        raise LookupError(
            f"Cannot build a tiny {model_name!r} on the synthetic spec ({error}): add its options to "
            f"TINY_OPTIONS (or a builder to ZOO_MODEL_BUILDERS) in {Path(__file__).name}."
        ) from error
    # Called once, as a run's model is before training (exporters may need built layers).
    model(next(iter(tfzoo.data.make_dataset(_SYNTHETIC.take(np.arange(2)), SYNTHETIC_SPEC, batch_size=2)))[0])
    return model, SYNTHETIC_SPEC.to_config()


def export_zoo_model(
    model_name: str, base: Path, name: str | None = None, *, seed: int = 0, version: int | None = None
) -> Path:
    """A tiny `model_name` exported by its registered exporter (warm-up records, models.config)."""
    model, inputs = build_zoo_model(model_name, seed=seed)
    return export_model(model_name, model, inputs, base, name or model_name, version=version)


def export_ranker(model_name: str, base: Path, name: str, *, seed: int = 0, version: int | None = None) -> Reference:
    """A tiny zoo ranker exported; its Keras model (behind the preprocessing) is the reference."""
    model, _ = build_zoo_model(model_name, seed=seed)
    preprocessor = tfzoo.data.FeaturePreprocessor(SYNTHETIC_SPEC)
    export_saved_model(model, SYNTHETIC_SPEC, base, name, version=version)

    def reference(signature, inputs):
        assert signature == "serving_default"
        outputs = model(preprocessor({k: tf.constant(v) for k, v in inputs.items()}), training=False)
        return {k: v.numpy() for k, v in outputs.items()}

    return reference


def ranker_rows(signature: str, start: int = 0, rows: int = 3) -> dict[str, np.ndarray]:
    return {k: v[start : start + rows] for k, v in SYNTHETIC_ROWS.items()}


def request_inputs(signature, warmup, *, start: int = 0, rows: int = 3) -> dict[str, np.ndarray]:
    """Inputs of a request to `signature` (its `SignatureMetadata`).

    Real synthetic rows (with their missing values) `start:start + rows` where the
    signature takes the spec's raw features, else the rows of the version's warm-up records.
    """
    names = set(signature.inputs)
    if names <= set(SYNTHETIC_ROWS) and all(
        signature.inputs[k].dtype.is_compatible_with(
            tf.string if SYNTHETIC_ROWS[k].dtype == object else tf.as_dtype(SYNTHETIC_ROWS[k].dtype)
        )
        for k in names
    ):
        return {k: SYNTHETIC_ROWS[k][start : start + rows] for k in names}
    return example_inputs(signature, warmup, batch_size=rows)


def predict_signatures(metadata) -> list[str]:
    """The signatures of a model's `Metadata` that Predict serves."""
    return sorted(n for n, s in metadata.signatures.items() if s.method_name == "tensorflow/serving/predict")


# The zoo server's message limit: small, so that an oversized request is cheap to build.
ZOO_MAX_MESSAGE_BYTES = 1 << 20


def build_tf1_model(path: Path) -> None:
    """A TF1-style SavedModel with predict, classify and regress signatures (y = 0.5 x + 2).

    The layout Estimator exports have, and what TF Serving's Classify and Regress expect:
    serialized tf.Examples in `inputs`, `classes` / `scores` or `outputs` out.
    """
    with tf.Graph().as_default():
        serialized = tf.compat.v1.placeholder(tf.string, [None], name="tf_example")
        x_parsed = tf.io.parse_example(serialized, {"x": tf.io.FixedLenFeature([], tf.float32, default_value=0.0)})["x"]
        x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
        a = tf.compat.v1.Variable(0.5, name="a")
        y_parsed, y = a * x_parsed + 2.0, a * x + 2.0
        probability = tf.sigmoid(y_parsed)
        scores = tf.stack([probability, 1.0 - probability], axis=1)
        classes = tf.tile(tf.constant([["high", "low"]]), [tf.shape(x_parsed)[0], 1])
        signature = tf.compat.v1.saved_model
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            builder = signature.Builder(str(path))
            builder.add_meta_graph_and_variables(
                session,
                ["serve"],
                signature_def_map={
                    "serving_default": signature.predict_signature_def({"x": x}, {"y": y}),
                    "classify": signature.classification_signature_def(serialized, classes, scores),
                    "regress": signature.regression_signature_def(serialized, y_parsed),
                },
            )
            builder.save()


def copy_version(base: Path, name: str, source: int, target: int) -> Path:
    """A new version as a copy of another, renamed into place atomically (as an export does)."""
    tmp = base / name / f".copy-{target}"
    shutil.copytree(base / name / str(source), tmp)
    return tmp.rename(base / name / str(target))


def to_json(value) -> object:
    """A request array (or one row of it) as JSON values (NaN stays NaN, as TF Serving accepts).

    Text is decoded; binary strings (e.g. serialized protos) travel as TF Serving's `{"b64": ...}`.
    """
    value = np.asarray(value)
    if value.dtype == object or value.dtype.kind in "SU":
        return np.vectorize(_json_string, otypes=[object])(value).tolist()
    return value.tolist()


def _json_string(value):
    if not isinstance(value, bytes):
        return str(value)
    try:
        return value.decode()
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(value).decode()}


def rest_call(url: str, path: str, body=None, *, raw: bytes | None = None, context=None) -> tuple[int, dict]:
    """(HTTP status, JSON body) of a REST call: GET without a body, POST with one."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(
        url + path,
        data=data,
        method="POST" if data is not None else "GET",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def assert_outputs_close(actual: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray]) -> None:
    assert set(actual) == set(expected)
    for key in expected:
        np.testing.assert_allclose(
            np.asarray(actual[key], dtype=np.float64),
            np.asarray(expected[key], dtype=np.float64),
            rtol=1e-6,
            atol=1e-6,
            err_msg=key,
        )
