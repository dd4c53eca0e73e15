"""The portable layers under Keras 3: `keras3_harness.py` in its own process (started with
`TF_USE_LEGACY_KERAS` unset; the harness sets it to 0 before importing tfzoo)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).with_name("keras3_harness.py")


@pytest.fixture(scope="module")
def report():
    # The process starts with the switch unset, as a Keras 3 program's does; the harness, a
    # Keras 3 program, turns it off itself before importing tfzoo.
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    result = subprocess.run([sys.executable, str(HARNESS)], capture_output=True, text=True, timeout=400, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_every_portable_layer_passes_the_harness_in_keras_3(report):
    assert report["keras"].startswith("3.") and not report["legacy"]
    assert not report["tfrs_or_tfgnn_imported"]  # tfzoo.layers needs neither
    failed = {name: error for name, error in report["layers"].items() if error != "ok"}
    assert not failed, "\n\n".join(f"{name}:\n{error}" for name, error in failed.items())
    covered = {name.split(" (")[0] for name in report["layers"]}
    assert covered == set(report["portable"])  # every portable layer, and only those


def test_the_keras_3_example_trains_exports_and_serves(report):
    example = report["example"]
    assert example["test_auc"] > 0.8  # the tasks' labels follow their own directions of the features
    assert example["served_difference"] < 1e-5
