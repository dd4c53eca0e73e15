"""Time of an export with the Keras model tracked by the SavedModel against the zoo's way
(the model's variables only: `tfzoo.export.saved_model.hold_untracked`), side by side in
one process.

    .venv/bin/python bench/export_time.py [--repeats 3]
    .venv/bin/python bench/export_time.py --quick      # one repeat

A tracked Keras model makes `tf.saved_model.save` serialize every layer with its call
functions traced; a servable is only its signatures, which both ways save alike. Each
repeat exports a tiny SUPER-MoE (generated sequences) and a tiny GRec (synthetic data)
both ways, alternating, and checks that the two exports answer alike.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfzoo.data.behaviour_sequences import ItemTables
from tfzoo.export import saved_model
from tfzoo.export import supermoe as supermoe_export
from tfzoo.export.grec import export_grec
from tfzoo.export.supermoe import export_supermoe
from tfzoo.training import RunConfig, task_for

SUPERMOE_ENCODER = {"units": 8, "num_heads": 2, "key_dim": 4, "ffn_units": 8, "num_experts": 2}
GREC_OPTIONS = {
    "token_features": {"user": ["cat_0", "num_0"], "item": ["item_vector"]},
    "model_dim": 8,
    "num_heads": 2,
    "num_experts": 4,
    "top_k": 2,
    "expert_units": [8],
    "tower_units": [4],
}


@contextlib.contextmanager
def tracked_models():
    """Exports as they were before `hold_untracked`: the Keras model a tracked attribute."""
    modules = (saved_model, supermoe_export)  # where exporters call it from
    original = saved_model.hold_untracked
    for module in modules:
        module.hold_untracked = lambda module, name, model: setattr(module, name, model)
    try:
        yield
    finally:
        for module in modules:
            module.hold_untracked = original


def exporters() -> dict[str, callable]:
    """{model: export(directory)} for a tiny untrained SUPER-MoE and GRec."""
    supermoe = task_for("supermoe").prepare(
        RunConfig(model="supermoe", dataset="generated_sequences", model_options={"encoder": SUPERMOE_ENCODER}), None
    )
    items = ItemTables.of(supermoe.data.train, supermoe.data.validation, supermoe.data.test)
    grec = task_for("grec").prepare(RunConfig(model="grec", dataset="synthetic", model_options=GREC_OPTIONS), None)
    return {
        "supermoe": lambda directory: export_supermoe(supermoe.model, items, directory, "supermoe"),
        "grec": lambda directory: export_grec(grec.model, grec.inputs.feature_spec, directory, "grec"),
    }


def answers(path: Path) -> dict[str, np.ndarray]:
    """The first warm-up request's answer of the export's serving_default signature."""
    from tfzoo.export.warmup import read_warmup_requests

    loaded = tf.saved_model.load(str(path))
    for log in read_warmup_requests(path):
        request = log.predict_log.request
        if (request.model_spec.signature_name or "serving_default") == "serving_default":
            inputs = {key: tf.constant(tf.make_ndarray(value)) for key, value in request.inputs.items()}
            return {k: v.numpy() for k, v in loaded.signatures["serving_default"](**inputs).items()}
    raise AssertionError(f"{path} has no serving_default warm-up request")


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one repeat")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    export = exporters()
    times = {model: {"tracked": [], "untracked": []} for model in export}
    with tempfile.TemporaryDirectory() as work:
        for repeat in range(repeats):
            for model, write in export.items():
                paths = {}
                for way in ("tracked", "untracked"):
                    started = time.perf_counter()
                    with tracked_models() if way == "tracked" else contextlib.nullcontext():
                        paths[way] = write(Path(work) / f"{way}_{repeat}")
                    times[model][way].append(time.perf_counter() - started)
                for key, value in answers(paths["tracked"]).items():
                    np.testing.assert_allclose(answers(paths["untracked"])[key], value, atol=1e-6)
    print(f"export time, mean of {repeats} (the first repeat includes tracing caches warming up)")
    print("| model | Keras model tracked s | variables only (zoo) s | speed-up |")
    print("|---|---:|---:|---:|")
    means = {}
    for model, ways in times.items():
        means[model] = {way: float(np.mean(values)) for way, values in ways.items()}
        speedup = means[model]["tracked"] / means[model]["untracked"]
        print(f"| {model} | {means[model]['tracked']:.1f} | {means[model]['untracked']:.1f} | {speedup:.2f}x |")
    return means


if __name__ == "__main__":
    main()
