"""Every model kind trains under a mixed dtype policy and its export serves float32.

`RunConfig(precision="mixed_bfloat16")` builds the model under Keras' mixed policy: layers
compute in bfloat16 with float32 variables, while routers, softmaxes, losses and model
outputs stay float32. On CPU bfloat16 is slow but exact enough to test the wiring; the
throughput gain is a GPU / TPU matter (`docs/benchmarks.md`).
"""

import json
import math

import numpy as np
import pytest
import tensorflow as tf

from tests.serving.helpers import TINY_OPTIONS, TINY_RUNS
from tfzoo.export.warmup import read_warmup_requests
from tfzoo.training import RunConfig, load_run, task_for, train

pytestmark = pytest.mark.timeout(600)

# One model per task kind (the rankers' GRec has the routers and the attention):
# model -> (dataset, data options, model options).
MODEL_KINDS = {
    "grec": ("synthetic", {}, {**TINY_OPTIONS["grec"], "load_balance_weight": 0.01, "z_loss_weight": 0.001}),
    "supermoe": ("generated_sequences", {}, TINY_RUNS["supermoe"][1]),
    "supermoe_mcp": ("generated_sequences", {}, {"encoder": TINY_RUNS["supermoe"][1]["encoder"]}),
    "ssmtl": ("friend_graph", {"num_users": 300}, TINY_RUNS["ssmtl"][1]),
}


def layers_of(model):
    return list(model._flatten_layers(include_self=False))


def signature_outputs(version_dir):
    """Each warm-up request of an export, answered by its signature: {signature: outputs}."""
    loaded = tf.saved_model.load(str(version_dir))
    answers = {}
    for log in read_warmup_requests(version_dir):
        request = log.predict_log.request
        name = request.model_spec.signature_name or "serving_default"
        inputs = {key: tf.constant(tf.make_ndarray(value)) for key, value in request.inputs.items()}
        answers.setdefault(name, loaded.signatures[name](**inputs))
    return answers


@pytest.mark.parametrize("model_name", sorted(MODEL_KINDS))
def test_model_trains_under_mixed_bfloat16_and_exports_float32(model_name, tmp_path):
    dataset, data_options, options = MODEL_KINDS[model_name]
    config = RunConfig(
        model=model_name,
        dataset=dataset,
        epochs=1,
        batch_size=512,  # a few steps: the wiring is under test, not the learning
        patience=0,
        precision="mixed_bfloat16",
        data_options=data_options,
        model_options=options,
    )
    metrics = train(config, tmp_path / "run", verbose=0)
    assert math.isfinite(metrics["history"]["loss"][0])
    assert tf.keras.mixed_precision.global_policy().name == "float32"  # the run left the process as it was

    # Opened as `tfzoo export` opens it: from the run alone, no dataset read.
    run = load_run(tmp_path / "run", with_data=False)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["run"]["precision"] == "mixed_bfloat16"
    computes = {layer.compute_dtype for layer in layers_of(run.model)}
    assert "bfloat16" in computes  # the model really computes in 16 bits ...
    assert {v.dtype for v in run.model.variables} == {tf.float32}  # ... on float32 variables
    routers = [layer for layer in layers_of(run.model) if "router" in layer.name]
    assert all(layer.compute_dtype == "float32" for layer in routers)
    if model_name == "supermoe_mcp":
        return  # pre-training has no export: fine-tuning starts from its checkpoint

    mixed = task_for(model_name).export(run, tmp_path / "export", "mixed")
    mixed_answers = signature_outputs(mixed)
    assert mixed_answers, "the export has no warm-up requests to answer"
    for signature, outputs in mixed_answers.items():
        for key, value in outputs.items():
            if value.dtype.is_floating:
                assert value.dtype == tf.float32, f"{signature}/{key} is {value.dtype.name}"
                # No NaN or +inf; -inf only where a retrieval row has fewer than k answers (id -1).
                finite = np.isfinite(value.numpy())
                padded = (outputs["friend_ids"].numpy() == -1) if "friend_ids" in outputs else np.zeros_like(finite)
                assert (finite | (padded & (value.numpy() == -np.inf))).all(), f"{signature}/{key}"

    if model_name != "grec":
        return  # a float32 twin costs a second export (ScaNN for ssmtl); GRec's checks the same
    # The checkpoint is float32 alike: the same run rebuilt under float32 serves the same
    # answers, up to bfloat16's 8-bit mantissa in the mixed model's activations.
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    stored["run"]["precision"] = "float32"
    (tmp_path / "run" / "config.json").write_text(json.dumps(stored))
    exact = load_run(tmp_path / "run", with_data=False)
    assert {layer.compute_dtype for layer in layers_of(exact.model)} == {"float32"}
    exact_answers = signature_outputs(task_for(model_name).export(exact, tmp_path / "export", "exact"))
    for signature, outputs in mixed_answers.items():
        for key, value in outputs.items():
            if value.dtype.is_floating:
                np.testing.assert_allclose(value.numpy(), exact_answers[signature][key].numpy(), atol=0.1, rtol=0.1)


def test_unknown_precision_is_refused_with_the_accepted_ones():
    with pytest.raises(ValueError, match=r"one of .*'mixed_bfloat16'.*Received: precision='float64'"):
        RunConfig(model="mmoe", dataset="synthetic", precision="float64")
