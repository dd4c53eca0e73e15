"""Training under tf.distribute on batches that cannot be split along a first dimension
(merged subgraphs) and with id tables sharded over parameter servers.

Apart from `test_distributed.py` so that the two pytest workers of `make test` share the
distributed runs. Every multi-process run goes through `tfzoo launch` with a timeout.
"""

import json
import subprocess

import numpy as np
import pytest

from tests.training.test_distributed import TFZOO, _launch, _metrics

# Generous: under `make test` another pytest worker shares the cores with these clusters.
pytestmark = pytest.mark.timeout(600)


def test_supermoe_id_tables_sharded_over_two_parameter_servers(tmp_path):
    # chief + 2 workers + 2 parameter servers; 4 KiB threshold: the item-id tables (and
    # larger dense weights) split over both servers, small layers stay whole.
    run = tmp_path / "run"
    code, log = _launch(
        [
            *TFZOO,
            "train",
            "supermoe",
            "--dataset",
            "generated_sequences",
            "--epochs",
            "2",
            "--batch-size",
            "64",
            "--option",
            'encoder={"units": 16, "num_heads": 2, "key_dim": 8, "ffn_units": 16, "num_experts": 2}',
            "--strategy",
            "parameter_server",
            "--min-shard-bytes",
            "4096",
            "--out",
            str(run),
        ],
        workers=2,
        ps=2,
    )
    assert code == 0, log[-5000:]
    placement = json.loads((run / "config.json").read_text())["distribute"]["placement"]
    item_tables = {name: devices for name, devices in placement.items() if "item" in name and len(devices) > 1}
    assert item_tables, sorted(placement)
    for name, devices in item_tables.items():
        assert sorted(devices) == ["/job:ps/replica:0/task:0/device:CPU:0", "/job:ps/replica:0/task:1/device:CPU:0"], (
            name
        )
    losses = _metrics(run)["history"]["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0], losses


@pytest.mark.parametrize("strategy", ["mirrored", "parameter_server"])
def test_ssmtl_trains_with_per_replica_subgraph_batches(strategy, tmp_path):
    # A batch of sampled subgraphs is one merged GraphTensor: it cannot be split across
    # replicas, so each replica (or parameter-server worker) builds its own batches
    # (`FitData.replica_fn`) from the NumPy graph.
    run = tmp_path / "run"
    command = [
        *TFZOO,
        "train",
        "ssmtl",
        "--dataset",
        "friend_graph",
        "--data-option",
        "num_users=1000",
        "--epochs",
        "2",
        "--batch-size",
        "256",
        "--option",
        "hidden_dim=8",
        "--option",
        "embedding_dim=8",
        "--option",
        "num_heads=2",
        "--option",
        "mae_weight=1.0",
        "--option",
        "cca_weight=0",
        "--option",
        "fanouts=[3, 2]",
        "--strategy",
        strategy,
        "--out",
        str(run),
    ]
    if strategy == "mirrored":
        result = subprocess.run([*command, "--cpu-devices", "2"], capture_output=True, text=True, timeout=420)
        code, log = result.returncode, result.stdout + result.stderr
    else:
        code, log = _launch(command, workers=2, ps=1)
    assert code == 0, log[-5000:]
    assert json.loads((run / "config.json").read_text())["distribute"]["strategy"] == strategy
    metrics = _metrics(run)
    losses = metrics["history"]["loss"]
    assert np.isfinite(losses).all(), losses
    if strategy == "mirrored":
        # Synchronous replicas: the epoch loss falls. Asynchronous parameter-server steps make
        # two epochs' losses too noisy to order (seen: 1,447 then 1,499 in a run that learned);
        # what it learned is measured on held-out friendships below.
        assert losses[-1] < losses[0], losses
    # 1,000 users: chance Recall@10 is 10 / 1,000; the generated graph's friendships
    # follow the user features, which the encoder learns to read.
    assert metrics["test"]["all"]["recall@10"] > 3 * 10 / 1000, metrics["test"]
