"""The shared layer checks under Keras 3, run as a script by `test_keras3.py` in its own
process: a Keras 3 program (TensorFlow backend), which sets `TF_USE_LEGACY_KERAS=0`
before importing tfzoo.

For every portable layer (`tfzoo.layers.PORTABLE_LAYERS`): the config round trip (the same
config, the same outputs once the weights are copied), serialization by its registered
name ("tfzoo>Name"), saving in Keras 3's own format (a `.keras` file of a functional model
around the layer) and reloading it with equal outputs. Then the worked example
(`recipes/keras3_task_routed_ranker.py`: fit, `model.export`, `tf.saved_model.load`).
Prints one JSON object: {"keras": version, "layers": {name: "ok" or the error}, ...}.
"""

import json
import os
import sys
import tempfile
import traceback
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "0")  # a Keras 3 program says so before importing tfzoo

import numpy as np  # noqa: E402

import tfzoo.layers as layers  # noqa: E402
from tfzoo.layers.backend import LEGACY_KERAS, keras  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(0)
X = RNG.normal(size=(4, 5, 8)).astype("float32")  # [batch, tokens, d]
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 0]], "float32")
ITEMS = RNG.integers(1, 20, size=(4, 5))
ITEMS[0, 3:] = 0  # padding
SEQUENCE = {"item": ITEMS, "rating": RNG.integers(1, 6, size=(4, 5)), "interval": X[..., :1]}
CHANNELS = dict(id_channels={"item": 20}, category_channels={"rating": 5}, dense_channels={"interval": 1})


def cases():
    """(case name, layer, inputs, call keyword arguments) of every portable layer."""
    moe = layers.MixtureOfExperts(4, [6], router="task", router_options={"num_tasks": 3}, top_k=2, name="task_moe")
    moe(X, routing_ids=np.array([0, 1, 2, 0]))
    yield "MLP", layers.MLP([8, 4]), X[:, 0], {}
    yield "Experts", layers.Experts(3, [5]), X[:, 0], {}
    yield "ExtractedExperts", moe.extract([0, 2], name="extracted"), X, {"route": np.array([0, 1, 1, 0])}
    yield "TokenRouter", layers.TokenRouter(4), X, {"mask": MASK}
    yield "SentenceRouter", layers.SentenceRouter(4), X, {"mask": MASK}
    yield "TaskRouter", layers.TaskRouter(4, num_tasks=3), X, {"routing_ids": np.array([0, 1, 2, 0])}
    yield (
        "TaskSentenceRouter",
        layers.TaskSentenceRouter(4, vocabulary_size=5),
        X,
        {"routing_ids": np.array([[0, 3], [1, 3], [0, 4], [2, 4]])},
    )
    yield "DenseRouter", layers.DenseRouter(4, num_gates=2), X[:, 0], {}
    yield "MixtureOfExperts (token)", layers.MixtureOfExperts(4, [6], router="token", top_k=2), X, {"mask": MASK}
    yield "MixtureOfExperts (task)", moe, X, {"routing_ids": np.array([2, 0, 1, 1])}
    yield "MultiGateMixtureOfExperts", layers.MultiGateMixtureOfExperts(2, 3, [6]), X[:, 0], {}
    yield "CustomizedGateControl", layers.CustomizedGateControl(2, 1, 1, (3,)), X[:, :3], {}
    yield "MultiQueryAttention", layers.MultiQueryAttention(2, 4), X, {"mask": MASK}
    yield "ParallelTransformerBlock", layers.ParallelTransformerBlock(2), X, {"mask": MASK}
    yield "MoEMultiHeadSelfAttention", layers.MoEMultiHeadSelfAttention(2, 4, num_experts=2), X, {"mask": MASK}
    yield "MoETransformerBlock", layers.MoETransformerBlock(2, 4, 8, num_experts=2), X, {"mask": MASK}
    yield "MultiChannelProjection", layers.MultiChannelProjection(6, **CHANNELS, category_dim=2, id_dim=3), SEQUENCE, {}
    yield (
        "MoESequenceEncoder",
        layers.MoESequenceEncoder(8, **CHANNELS, num_blocks=1, num_heads=2, key_dim=4, ffn_units=8, num_experts=2),
        SEQUENCE,
        {},
    )


def symbolic(value, name):
    value = np.asarray(value)
    return keras.Input(shape=value.shape[1:], dtype=str(value.dtype), name=name)


def check(layer, inputs, kwargs, directory: Path) -> None:
    outputs = np.asarray(layer(inputs, **kwargs))
    config = layer.get_config()
    clone = type(layer).from_config(config)
    clone(inputs, **kwargs)
    clone.set_weights(layer.get_weights())
    assert clone.get_config() == config, "from_config(get_config()) gave another config"
    np.testing.assert_allclose(np.asarray(clone(inputs, **kwargs)), outputs, atol=1e-5)

    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == f"tfzoo>{type(layer).__name__}", serialized["registered_name"]
    assert type(keras.saving.deserialize_keras_object(serialized)) is type(layer)

    # Keras 3's own format: a functional model around the layer, saved and loaded back.
    if isinstance(inputs, dict):
        symbols = {name: symbolic(value, name) for name, value in inputs.items()}
    else:
        symbols = symbolic(inputs, "inputs")
    extra = {name: symbolic(value, name) for name, value in kwargs.items()}
    model = keras.Model([symbols, extra], layer(symbols, **extra))
    path = directory / f"{layer.name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded([inputs, kwargs])), outputs, atol=1e-5)


def main() -> None:
    report = {"keras": keras.__version__, "legacy": LEGACY_KERAS, "layers": {}}
    report["tfrs_or_tfgnn_imported"] = any(m in sys.modules for m in ("tensorflow_recommenders", "tensorflow_gnn"))
    with tempfile.TemporaryDirectory() as scratch:
        for name, layer, inputs, kwargs in cases():
            try:
                check(layer, inputs, kwargs, Path(scratch))
                report["layers"][name] = "ok"
            except Exception:  # noqa: BLE001 (every layer's outcome is reported)
                report["layers"][name] = traceback.format_exc(limit=3)[-1500:]
        sys.path.insert(0, str(REPO / "recipes"))
        import keras3_task_routed_ranker  # noqa: PLC0415 (the recipes folder joins the path above)

        report["example"] = keras3_task_routed_ranker.run(Path(scratch) / "ranker", epochs=3)
    report["portable"] = list(layers.PORTABLE_LAYERS)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
