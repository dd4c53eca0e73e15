"""What the serving tests serve, and how they call the REST API.

The end-to-end tests serve every trained model kind of `tfzoo.training.registry.TASKS`,
exported by its own task (`ModelTask.export`), as `tfzoo export` exports a run: a ranker
is built tiny on the synthetic multi-scenario spec (`TINY_OPTIONS`); another kind of
model is prepared as a tiny run of its own dataset (`TINY_RUNS`). Requests use real
synthetic rows where a signature takes the spec's raw features and the version's warm-up
rows otherwise; the reference is the exported signature called in this process.
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf

import tfzoo
from tfzoo.export import export_saved_model
from tfzoo.serving import example_inputs
from tfzoo.tasks import RankingInputs, RankingTask
from tfzoo.training import RunConfig, task_for
from tfzoo.training.registry import trained_models
from tfzoo.training.run import Run

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

# Tiny hyper-parameters of the rankers: what the serving tests export (on the synthetic
# spec) and what the rankers' own tests build (tests/models/test_baselines.py); a ranker
# not listed is built with its constructor defaults.
TINY_OPTIONS: dict[str, dict] = {
    "single_task": {"embedding_dim": 2, "hidden_units": [8]},
    "shared_bottom": {"embedding_dim": 2, "bottom_units": [8], "tower_units": [4]},
    "mmoe": {"embedding_dim": 2, "num_experts": 3, "expert_units": [8], "tower_units": [4]},
    "ple": {
        "embedding_dim": 2,
        "num_levels": 2,
        "num_task_experts": 1,
        "num_shared_experts": 1,
        "expert_units": [8],
        "tower_units": [4],
    },
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


# The tiny zoo models outside the rankers: model -> (dataset, model options).
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

# Where the tiny runs keep their artifacts (a friend graph, item tables): removed when the
# test process exits, not left behind in the system's temporary folder.
_TINY_RUNS_DIR = tempfile.TemporaryDirectory(prefix="tfzoo_tiny_runs_")

# Every model `tfzoo train` trains is served in the end-to-end tests.
ZOO_MODELS: list[str] = trained_models()


def build_zoo_model(model_name: str, *, seed: int = 0) -> Run:
    """A tiny untrained `model_name` as `tfzoo export` opens a run of it (untrained weights;
    the run's artifacts in a scratch directory)."""
    tf.keras.utils.set_random_seed(seed)
    task = task_for(model_name)
    directory = Path(tempfile.mkdtemp(prefix=f"{model_name}_", dir=_TINY_RUNS_DIR.name))
    if model_name in TINY_RUNS:
        dataset, options = TINY_RUNS[model_name]
        config = RunConfig(model=model_name, dataset=dataset, model_options=options)
        prepared = task.prepare(config, None)
        task.save_artifacts(prepared, directory)
        return Run(directory, config, prepared, checkpoint=None)
    if not isinstance(task, RankingTask):
        raise LookupError(
            f"Model {model_name!r} is served but the serving tests cannot build it: add a tiny run of it "
            f"to TINY_RUNS in {Path(__file__).name}."
        )
    inputs = RankingInputs(spec=SYNTHETIC_SPEC.to_config())
    try:
        config = RunConfig(model=model_name, dataset="synthetic", model_options=TINY_OPTIONS.get(model_name, {}))
        model = task.build(config, inputs, directory)
    except (TypeError, ValueError) as error:
        raise LookupError(
            f"Cannot build a tiny {model_name!r} on the synthetic spec ({error}): add its options to "
            f"TINY_OPTIONS (or a tiny run to TINY_RUNS) in {Path(__file__).name}."
        ) from error
    return Run(directory, config, tfzoo.training.Prepared(model, inputs, data=None, split=""), checkpoint=None)


def export_zoo_model(
    model_name: str, base: Path, name: str | None = None, *, seed: int = 0, version: int | None = None
) -> Path:
    """A tiny `model_name` exported by its task (warm-up records, models.config)."""
    run = build_zoo_model(model_name, seed=seed)
    return task_for(model_name).export(run, base, name or model_name, version=version)


def export_ranker(model_name: str, base: Path, name: str, *, seed: int = 0, version: int | None = None) -> Reference:
    """A tiny zoo ranker exported; its Keras model (behind the preprocessing) is the reference."""
    model = build_zoo_model(model_name, seed=seed).model
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
