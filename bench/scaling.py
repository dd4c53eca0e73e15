"""Training throughput under tf.distribute: one device vs 2 workers vs mirrored, side by side.

Trains the same model on the same data with `tfzoo train`, once per set-up, in this one
run, and prints examples/s over the epochs after the first (the first pays tracing and
start-up) and the ratio to one device:

- `default`: one process, one device;
- `multi_worker x2`: two worker processes (`tfzoo launch --workers 2`; another count with `--workers`);
- `mirrored x2`: one process over 2 devices (GPUs when there are 2, else 2 logical CPUs).

On a machine whose cores are all used by one process, more replicas cannot help: the
figures then show the synchronisation cost of each strategy.

    .venv/bin/python bench/scaling.py [--model mmoe] [--dataset census] [--epochs 4]
    .venv/bin/python bench/scaling.py --quick    # synthetic, 2 epochs of 2,000 rows, one worker: checks that it runs
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
QUICK_TRAIN_ROWS = 2000
QUICK_TIMEOUT_S = 300  # per training run; a quick run that hangs (e.g. a worker waiting on its peers) fails


def _throughput(run: Path, batch_size: int) -> float:
    """Examples/s of the median epoch after the first (steps x global batch / seconds)."""
    metrics = json.loads((run / "metrics.json").read_text())
    return metrics["steps_per_epoch"] * batch_size / statistics.median(metrics["history"]["epoch_seconds"][1:])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mmoe")
    parser.add_argument("--dataset", help="default census; --quick: synthetic (generated, smaller evaluation splits)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--workers", type=int, help="worker processes of the multi_worker run (default 2; --quick: 1)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"2 epochs (the first is not timed) of {QUICK_TRAIN_ROWS:,} training rows in batches of 256, "
        f"one multi_worker worker unless --workers, {QUICK_TIMEOUT_S} s timeout per run: checks that the bench runs",
    )
    args = parser.parse_args(argv)
    timeout = None
    data_options = []
    if args.quick:
        args.epochs, args.batch_size, timeout = 2, 256, QUICK_TIMEOUT_S
        data_options = ["--data-option", f"train_rows={QUICK_TRAIN_ROWS}"]
    # Quick: one worker still runs the multi_worker path (launch, TF_CONFIG, collectives) at a process less.
    args.workers = args.workers or (1 if args.quick else 2)
    # Quick: generated rows skip reading the file, and their 2,000-row evaluation splits are a fifth of Census's.
    args.dataset = args.dataset or ("synthetic" if args.quick else "census")
    train = [
        "train",
        args.model,
        "--dataset",
        args.dataset,
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        *data_options,
    ]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run(
            [*TFZOO, *train, "--out", str(tmp / "default")], check=True, capture_output=True, timeout=timeout
        )
        results["default (1 device)"] = _throughput(tmp / "default", args.batch_size)
        log = io.StringIO()
        code = launch(
            [*TFZOO, *train, "--strategy", "multi_worker", "--out", str(tmp / "multi_worker")],
            workers=args.workers,
            timeout=timeout or 1800,
            sink=log,
        )
        if code:
            sys.exit(f"multi_worker run failed ({code}):\n{log.getvalue()[-3000:]}")
        processes = f"{args.workers} process" + ("es" if args.workers > 1 else "")
        results[f"multi_worker x{args.workers} ({processes})"] = _throughput(tmp / "multi_worker", args.batch_size)
        subprocess.run(
            [*TFZOO, *train, "--strategy", "mirrored", "--cpu-devices", "2", "--out", str(tmp / "mirrored")],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        results["mirrored x2 (1 process)"] = _throughput(tmp / "mirrored", args.batch_size)
    base = results["default (1 device)"]
    rows = f" ({QUICK_TRAIN_ROWS:,} training rows)" if args.quick else ""
    print(
        f"{args.model} on {args.dataset}{rows}, global batch {args.batch_size}, {os.cpu_count()} CPU cores, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print("| set-up | examples/s | vs 1 device |")
    print("|---|---:|---:|")
    for name, value in results.items():
        print(f"| {name} | {value:,.0f} | {value / base:.2f}x |")


if __name__ == "__main__":
    main()
