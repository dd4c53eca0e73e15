"""A Keras 3 ranking model built from tfzoo's portable layers: a mixture of experts routed
by task, trained with `fit`, exported with `model.export` and served by a TensorFlow-only load.

    TF_USE_LEGACY_KERAS=0 python recipes/keras3_task_routed_ranker.py [--out DIR] [--epochs 3]

Keras 3 programs set `TF_USE_LEGACY_KERAS=0` before importing tfzoo (tfzoo's own default
is Keras 2, which TensorFlow Recommenders and TF-GNN need): `tfzoo.layers.backend` then
gives the portable layers Keras 3 as their base, and they join any Keras 3 model
(keras-rs, keras-hub) on the TensorFlow backend. Here: two click-through style tasks on
generated rows, one shared `MixtureOfExperts` (4 experts, top-2) whose router picks each
task's experts from the task id (GRec's task routing), a small tower per task.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "0")  # this example is a Keras 3 program

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfzoo.layers import MLP, MixtureOfExperts  # noqa: E402
from tfzoo.layers.backend import LEGACY_KERAS, keras  # noqa: E402

TASKS = ("click", "purchase")
FEATURES = 12


def generated_rows(num_rows: int, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Rows of `FEATURES` numbers and a task id each; the label follows a different direction
    of the features per task (what a shared bottom finds hard and task routing separates)."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(num_rows, FEATURES)).astype("float32")
    task = rng.integers(0, len(TASKS), num_rows).astype("int32")
    directions = rng.normal(size=(len(TASKS), FEATURES)).astype("float32")
    logits = np.einsum("nf,nf->n", features, directions[task])
    labels = (rng.random(num_rows) < 1 / (1 + np.exp(-logits))).astype("float32")
    return {"features": features, "task": task}, labels


def build_model() -> keras.Model:
    """features [batch, FEATURES], task [batch] -> probability [batch, 1] of the row's task."""
    features = keras.Input(shape=(FEATURES,), name="features")
    task = keras.Input(shape=(), dtype="int32", name="task")
    hidden = MLP([16], name="bottom")(features)  # [batch, 16]
    mixture = MixtureOfExperts(
        4, [16], router="task", router_options={"num_tasks": len(TASKS)}, top_k=2, name="task_routed_experts"
    )(hidden, routing_ids=task)  # [batch, 16]: each task through its own top-2 experts
    probability = keras.layers.Dense(1, activation="sigmoid", name="tower")(mixture)  # [batch, 1]
    return keras.Model({"features": features, "task": task}, probability, name="task_routed_ranker")


def run(out: Path, *, epochs: int = 3, num_rows: int = 4096) -> dict[str, float]:
    """Trains, exports to `out` and serves back; returns the test AUC and the largest
    difference between the served and the in-process probabilities."""
    inputs, labels = generated_rows(num_rows)
    split = num_rows * 3 // 4
    train = {k: v[:split] for k, v in inputs.items()}
    test = {k: v[split:] for k, v in inputs.items()}
    keras.utils.set_random_seed(0)
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", metrics=[keras.metrics.AUC()])
    model.fit(train, labels[:split], batch_size=256, epochs=epochs, verbose=0)
    auc = float(model.evaluate(test, labels[split:], batch_size=1024, verbose=0, return_dict=True)["auc"])

    model.export(str(out), format="tf_saved_model", verbose=False)  # a SavedModel with a `serve` endpoint
    loaded = tf.saved_model.load(str(out))  # kept: its variables live as long as it does
    served = loaded.serve({k: tf.constant(v) for k, v in test.items()})
    in_process = model.predict(test, batch_size=1024, verbose=0)
    return {"test_auc": auc, "served_difference": float(np.abs(np.asarray(served) - in_process).max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="export directory (default: a temporary one)")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    if LEGACY_KERAS:
        raise SystemExit("this example is a Keras 3 program: run it with TF_USE_LEGACY_KERAS=0")
    with tempfile.TemporaryDirectory() as scratch:
        result = run(args.out or Path(scratch) / "ranker", epochs=args.epochs)
    print(
        f"Keras {keras.__version__}: test AUC {result['test_auc']:.4f}; the exported SavedModel serves the "
        f"model's probabilities (max abs difference {result['served_difference']:.1e})"
    )


if __name__ == "__main__":
    main()
