"""Training under tf.distribute: same numbers as one device, recovery, sharded variables.

Every multi-process run goes through `tfzoo launch` with a timeout (a worker that never
starts would hang its peers forever).
"""

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from tfzoo.training import RunConfig, train
from tfzoo.training.launch import launch

# Generous: under `make test` another pytest worker shares the cores with these clusters.
pytestmark = pytest.mark.timeout(600)

EPOCHS = 2
BATCH_SIZE = 2048
STEPS_PER_EPOCH = 8  # 16,000 synthetic training rows
TRAIN_ARGS = [
    "mmoe",
    "--dataset",
    "synthetic",
    "--epochs",
    str(EPOCHS),
    "--batch-size",
    str(BATCH_SIZE),
    "--option",
    "num_experts=2",
    "--option",
    "expert_units=[16]",
]
TFZOO = [sys.executable, "-m", "tfzoo"]


def _metrics(run) -> dict:
    return json.loads((run / "metrics.json").read_text())


def _assert_same_training(run, reference, *, rtol=1e-4):
    got, want = _metrics(run), _metrics(reference)
    np.testing.assert_allclose(got["history"]["loss"], want["history"]["loss"], rtol=rtol)
    for task, metrics in want["test"].items():
        assert got["test"][task]["auc"] == pytest.approx(metrics["auc"], abs=1e-4), task


def _launch(command, *, workers, ps=0, timeout=480, **kwargs) -> tuple[int, str]:
    out = io.StringIO()
    code = launch(command, workers=workers, ps=ps, timeout=timeout, sink=out, **kwargs)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def single_device_run(tmp_path_factory):
    """MMoE trained on one device, in this process: the reference of every strategy."""
    out = tmp_path_factory.mktemp("single") / "run"
    config = RunConfig(
        model="mmoe",
        dataset="synthetic",
        epochs=EPOCHS,
        batch_size=BATCH_SIZE,
        model_options={"num_experts": 2, "expert_units": [16]},
    )
    train(config, out, verbose=0)
    return out


def test_mirrored_over_two_logical_cpus_matches_one_device(single_device_run, tmp_path):
    run = tmp_path / "run"
    result = subprocess.run(
        [*TFZOO, "train", *TRAIN_ARGS, "--strategy", "mirrored", "--cpu-devices", "2", "--out", str(run)],
        capture_output=True,
        text=True,
        timeout=420,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert json.loads((run / "config.json").read_text())["distribute"] == {"strategy": "mirrored", "replicas": 2}
    _assert_same_training(run, single_device_run)


def _latest_backup_position(backup_dir) -> tuple[int, int] | None:
    latest = tf.train.latest_checkpoint(str(backup_dir / "chief"))
    if latest is None:
        return None
    try:
        reader = tf.train.load_checkpoint(latest)
        return (
            int(reader.get_tensor("ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE")),
            int(reader.get_tensor("ckpt_saved_batch/.ATTRIBUTES/VARIABLE_VALUE")),
        )
    except (tf.errors.OpError, RuntimeError, ValueError):
        # Being written, or rotated away between finding and reading it (seen: its data
        # file gone when the tensor was read).
        return None


def test_two_workers_killed_mid_epoch_recover_and_match_one_device(single_device_run, tmp_path):
    # MultiWorkerMirroredStrategy over 2 worker processes, one killed in the second epoch and
    # the cluster relaunched from the backup: the same steps and weights as one device.
    run = tmp_path / "run"
    attempts, killed_at = [], []

    def kill_worker_1_in_second_epoch(cluster):
        attempts.append(cluster)
        if len(attempts) > 1:
            return  # the relaunched cluster runs to the end

        def watch():
            deadline = time.monotonic() + 200
            while time.monotonic() < deadline:
                position = _latest_backup_position(run / "backup")
                if position is not None and position[0] >= 1:
                    worker_1 = next(p for t, p in cluster.processes.items() if t.name == "worker1")
                    os.killpg(worker_1.pid, signal.SIGKILL)
                    killed_at.append(position)
                    return
                time.sleep(0.05)

        threading.Thread(target=watch, daemon=True).start()

    code, log = _launch(
        [*TFZOO, "train", *TRAIN_ARGS, "--strategy", "multi_worker", "--backup-every", "2", "--out", str(run)],
        workers=2,
        max_restarts=1,
        on_start=kill_worker_1_in_second_epoch,
    )
    assert code == 0, log[-5000:]
    assert json.loads((run / "config.json").read_text())["distribute"] == {"strategy": "multi_worker", "replicas": 2}
    # Only the chief (worker 0) writes the run and prints the table.
    assert "[worker0] run written to" in log and "[worker1] run written to" not in log
    assert len(attempts) == 2 and killed_at, "worker 1 was not killed mid-training"
    epoch, batch = killed_at[0]
    assert epoch >= 1 and 0 <= batch < STEPS_PER_EPOCH - 1, killed_at  # inside the second epoch, not at its end
    assert f"[worker0] INFO tfzoo.training: recovering {run} from its backup" in log
    # Same total steps as an uninterrupted run, and the same weights (hence metrics).
    checkpoint = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run / "checkpoints")))
    assert checkpoint.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == EPOCHS * STEPS_PER_EPOCH
    metrics, reference = _metrics(run), _metrics(single_device_run)
    assert len(metrics["history"]["loss"]) == EPOCHS
    for task, want in reference["test"].items():
        assert metrics["test"][task]["auc"] == pytest.approx(want["auc"], abs=1e-4), task
    assert not (run / "backup" / "chief").exists() or _latest_backup_position(run / "backup") is None


def test_parameter_server_shards_tables_across_both_servers(single_device_run, tmp_path):
    run = tmp_path / "run"
    # 1 KiB threshold: the MMoE's larger weights split across the 2 parameter servers.
    code, log = _launch(
        [
            *TFZOO,
            "train",
            *TRAIN_ARGS,
            "--strategy",
            "parameter_server",
            "--min-shard-bytes",
            "1024",
            "--out",
            str(run),
        ],
        workers=2,
        ps=2,
    )
    assert code == 0, log[-5000:]
    placement = json.loads((run / "config.json").read_text())["distribute"]["placement"]
    sharded = {name: devices for name, devices in placement.items() if len(devices) > 1}
    assert sharded, placement
    for name, devices in sharded.items():
        assert {d.split("/task:")[1].split("/")[0] for d in devices} == {"0", "1"}, (name, devices)
        assert all("/job:ps/" in d for d in devices)
    metrics = _metrics(run)
    assert np.isfinite(metrics["history"]["loss"]).all()
    # Early stopping scores every epoch on the coordinator (predicting there must not take
    # the coordinator away from the rest of `fit`).
    assert len(metrics["history"]["val_mean_auc"]) == EPOCHS, metrics["history"]
    assert metrics["best_epoch"] in range(1, EPOCHS + 1)
    # Asynchronous steps (stale gradients, workers taking unequal shares of the steps):
    # not the single-device numbers, but the same descent within 10%.
    losses, reference = metrics["history"]["loss"], _metrics(single_device_run)["history"]["loss"]
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] == pytest.approx(reference[-1], rel=0.10), (losses, reference)
