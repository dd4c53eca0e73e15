"""Training throughput under tf.distribute: one device vs 2 workers vs mirrored, side by side.

Trains the same model on the same data with `tfzoo train`, once per set-up, in this one
run, and prints examples/s over the epochs after the first (the first pays tracing and
start-up) and the ratio to one device:

- `default`: one process, one device;
- `multi_worker x2`: two worker processes (`tfzoo launch --workers 2`);
- `mirrored x2`: one process over 2 devices (GPUs when there are 2, else 2 logical CPUs).

On a machine whose cores are all used by one process, more replicas cannot help: the
figures then show the synchronisation cost of each strategy.

    .venv/bin/python bench/scaling.py [--model mmoe] [--dataset census] [--epochs 4]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tfzoo.training.launch import launch

TFZOO = [sys.executable, "-m", "tfzoo"]


def _throughput(run: Path, batch_size: int) -> float:
    """Examples/s of the median epoch after the first (steps x global batch / seconds)."""
    metrics = json.loads((run / "metrics.json").read_text())
    return metrics["steps_per_epoch"] * batch_size / statistics.median(metrics["history"]["epoch_seconds"][1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mmoe")
    parser.add_argument("--dataset", default="census")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=2048)
    args = parser.parse_args()
    train = [
        "train",
        args.model,
        "--dataset",
        args.dataset,
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
    ]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run([*TFZOO, *train, "--out", str(tmp / "default")], check=True, capture_output=True)
        results["default (1 device)"] = _throughput(tmp / "default", args.batch_size)
        log = io.StringIO()
        code = launch(
            [*TFZOO, *train, "--strategy", "multi_worker", "--out", str(tmp / "multi_worker")],
            workers=2,
            timeout=1800,
            sink=log,
        )
        if code:
            sys.exit(f"multi_worker run failed ({code}):\n{log.getvalue()[-3000:]}")
        results["multi_worker x2 (2 processes)"] = _throughput(tmp / "multi_worker", args.batch_size)
        subprocess.run(
            [*TFZOO, *train, "--strategy", "mirrored", "--cpu-devices", "2", "--out", str(tmp / "mirrored")],
            check=True,
            capture_output=True,
        )
        results["mirrored x2 (1 process)"] = _throughput(tmp / "mirrored", args.batch_size)
    base = results["default (1 device)"]
    print(
        f"{args.model} on {args.dataset}, global batch {args.batch_size}, {os.cpu_count()} CPU cores, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print("| set-up | examples/s | vs 1 device |")
    print("|---|---:|---:|")
    for name, value in results.items():
        print(f"| {name} | {value:,.0f} | {value / base:.2f}x |")


if __name__ == "__main__":
    main()
