import json
import subprocess
import sys
from pathlib import Path

JOB = Path(__file__).with_name("supermoe_parameter_server_job.py")
REPO = Path(__file__).resolve().parents[2]


def test_id_tables_are_sharded_over_two_parameter_servers():
    result = subprocess.run([sys.executable, str(JOB)], capture_output=True, text=True, timeout=240, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["item_table"] == "ShardedVariable"
    # Two shards, one per parameter server, together holding every row (400 items + padding + [MASK]).
    assert sorted(report["item_shards"]) == ["/job:ps/replica:0/task:0/device:CPU:0", "/job:ps/replica:0/task:1/device:CPU:0"]
    assert sum(report["item_shard_rows"]) == report["rows"] == 402
    assert len(set(report["output_shards"])) == 2  # the sampled-softmax table too
    assert report["loss"][-1] < report["loss"][0]
