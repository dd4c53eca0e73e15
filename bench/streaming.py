"""Training from files against training from memory: throughput, peak memory, one-pass fit.

    .venv/bin/python bench/streaming.py                       # 1M and 10M rows, CSV and TFRecord
    .venv/bin/python bench/streaming.py --rows 1000000 --formats csv prepared --repeats 3
    .venv/bin/python bench/streaming.py --rows 1000000 --formats csv
    .venv/bin/python bench/streaming.py --quick               # 20k rows: checks that it runs

The generated multi-scenario rows (`tfzoo.data.make_multi_scenario_data`) are written as
32 shards of each format with a data config (split by a hash of a user key); "prepared"
is the CSV shards converted once to preprocessed TFRecord shards (`tfzoo data convert
--preprocess`: the rows as model inputs, read by `tf.data` alone). Then, each
in a fresh process so that its peak resident memory is its own: the streaming run (the
spec fitted in one pass over every file, then MMoE trained `--steps` steps from the files
as `tfzoo train mmoe --data-config` feeds it) and, at the smallest size, the in-memory
run on the same rows (`tfzoo.data.make_dataset` over the preprocessed columns, the
pipeline of the named datasets). Printed side by side: rows/s of the one-pass fit,
training examples/s (after a warm-up of `--warmup` steps), peak RSS, and the ratios the
targets are about: streaming / in-memory throughput (>= 0.8), peak RSS of the largest
size / the smallest (<= 1.1: flat in the data size), fit rows/s (>= 200k on 2 cores).
With `--repeats N` every run is measured N times, the in-memory run and then each
streaming run in turn, and the medians of the paired ratios are printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import tfzoo  # noqa: F401 - first: it puts Keras 2 behind tf.keras

ROOT = Path(__file__).resolve().parents[1]
MMOE = {"num_experts": 4, "expert_units": [64], "tower_units": [32]}
SHARDS = 32
USERS = 100_000


def _rows_dataset(rows: int):
    from tfzoo.data.synthetic import make_multi_scenario_data

    data = make_multi_scenario_data(num_rows=rows, seed=0)
    users = np.char.add("user", (np.random.default_rng(1).integers(0, USERS, rows)).astype(str))
    return data, users


def write(rows: int, directory: Path, file_format: str) -> Path:
    """The rows as 32 shards of `file_format` and the data config that reads them;
    "prepared": the CSV shards (written beside, or kept from an earlier run) analyzed and
    converted to preprocessed TFRecord shards, as `tfzoo data convert --preprocess` does."""
    import yaml

    from tfzoo.data.file_writers import data_config_of, write_shards

    if file_format == "prepared":
        from tfzoo.data import beam_pipelines
        from tfzoo.data.data_config import read_data_config

        source = directory.parent / f"csv-{rows}" / "data.yaml"
        if not source.exists():
            write(rows, source.parent, "csv")
        beam_pipelines.convert_preprocessed(read_data_config(source), str(directory), num_shards=SHARDS)
        return directory / "data.yaml"

    data, users = _rows_dataset(rows)
    write_shards(data, directory, file_format=file_format, num_shards=SHARDS, extra_columns={"user": users})
    split = {"by": "hash", "key": "user", "shares": [0.8, 0.1, 0.1]}
    config = data_config_of(data.spec, file_format=file_format, files="part-*", split=split, name="generated")
    path = directory / "data.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _fit_rate(model, dataset, steps: int, warmup: int, batch_size: int) -> float:
    iterator = iter(dataset)
    model.fit(iterator, steps_per_epoch=warmup, epochs=1, verbose=0)  # traces the step
    started = time.perf_counter()
    model.fit(iterator, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch_size / (time.perf_counter() - started)


def _model(spec):
    import tensorflow as tf

    from tfzoo.models.baselines import MMoE

    model = MMoE(feature_spec=spec, **MMOE)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
    return model


def measure(mode: str, source: str, steps: int, warmup: int, batch_size: int) -> dict:
    """One measurement, in this process (run by `main` in a fresh one)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    result = {}
    if mode == "stream":
        from tfzoo.data.data_config import read_data_config
        from tfzoo.data.streaming import StreamedSplits

        splits = StreamedSplits(read_data_config(source))
        started = time.perf_counter()
        analysis = splits.analyze()  # preprocessed rows: the analysis stored with them
        seconds = time.perf_counter() - started
        if splits.config.preprocessed is None:
            result["fit_rows_per_s"] = sum(analysis.rows.values()) / seconds
        spec = analysis.spec
        dataset = splits.dataset("train", spec, batch_size=batch_size, shuffle=True, seed=0, repeat=True)
    else:
        from tfzoo.data.pipeline import make_dataset
        from tfzoo.data.splits import random_split

        data, _ = _rows_dataset(int(source))
        train, _, _ = random_split(data, (0.8, 0.1, 0.1), seed=0)
        spec = train.spec.fit(train.features)
        dataset = make_dataset(train, spec, batch_size=batch_size, shuffle=True, seed=0, repeat=True)
    result["examples_per_s"] = _fit_rate(_model(spec), dataset, steps, warmup, batch_size)
    result["peak_rss_mib"] = _peak_rss_mib()
    return result


def _peak_rss_mib() -> float:
    """This process's peak resident memory: VmHWM of its own address space. (Linux keeps
    `ru_maxrss` across exec, so a child forked from a parent that generated 10M rows
    would report the parent's size.)"""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _in_fresh_process(*arguments: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run(
        [sys.executable, __file__, "--measure", *arguments], capture_output=True, text=True, env=env, check=False
    )
    if out.returncode:
        raise RuntimeError(f"measurement {arguments} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument(
        "--formats",
        nargs="+",
        choices=["csv", "tfrecord", "parquet", "prepared"],
        default=["csv", "tfrecord"],
        help="prepared: the conversion runs under Beam's DirectRunner, which holds the rows in memory (1M rows: "
        "about 2 GB), so it is not a default",
    )
    parser.add_argument("--steps", type=int, default=300, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument(
        "--repeats", type=int, default=1, help="measure every run this many times, in-memory and streaming in turn"
    )
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument(
        "--keep", help="write the shards here and keep them; shards already there are read again (default: a temp dir)"
    )
    parser.add_argument("--quick", action="store_true", help="20k rows, CSV, 20 steps: checks that the bench runs")
    parser.add_argument("--measure", nargs=2, metavar=("MODE", "SOURCE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(*args.measure, args.steps, args.warmup, args.batch_size)))
        return []
    if args.quick:
        args.rows, args.formats, args.steps, args.warmup, args.batch_size = [20_000], ["csv"], 20, 3, 256
    extra = ["--steps", str(args.steps), "--warmup", str(args.warmup), "--batch-size", str(args.batch_size)]
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(args.keep or scratch)
        smallest = min(args.rows)
        configs = {}
        for file_format in args.formats:
            for rows in sorted(args.rows):
                directory = base / f"{file_format}-{rows}"
                started = time.perf_counter()
                kept = args.keep and (directory / "data.yaml").exists()
                configs[file_format, rows] = directory / "data.yaml" if kept else write(rows, directory, file_format)
                written = "kept from an earlier run" if kept else f"written in {time.perf_counter() - started:.0f} s"
                print(f"{file_format}, {rows:,} rows: {SHARDS} shards in {directory} ({written})", flush=True)
        # Each repeat measures the in-memory run and then every streaming run, so that each
        # ratio pairs runs made minutes apart (a shared machine's speed drifts between runs).
        for repeat in range(args.repeats):
            memory = _in_fresh_process("memory", str(smallest), *extra)
            print(
                f"[{repeat + 1}/{args.repeats}] in memory, {smallest:,} rows: {memory['examples_per_s']:,.0f} "
                f"examples/s, peak RSS {memory['peak_rss_mib']:,.0f} MiB",
                flush=True,
            )
            results.append({"mode": "memory", "rows": smallest, "repeat": repeat, **memory})
            for (file_format, rows), config in configs.items():
                stream = _in_fresh_process("stream", str(config), *extra)
                ratio = stream["examples_per_s"] / memory["examples_per_s"]
                results.append(
                    {"mode": "stream", "format": file_format, "rows": rows, "repeat": repeat, "ratio": ratio, **stream}
                )
                fit = f"fit {stream['fit_rows_per_s']:,.0f} rows/s" if "fit_rows_per_s" in stream else "fitted before"
                print(
                    f"[{repeat + 1}/{args.repeats}] {file_format}, {rows:,} rows: {fit}, "
                    f"training {stream['examples_per_s']:,.0f} examples/s "
                    f"({ratio:.2f}x in memory), peak RSS {stream['peak_rss_mib']:,.0f} MiB",
                    flush=True,
                )
    for file_format in args.formats:
        for rows in sorted(args.rows):
            runs = [r for r in results if r.get("format") == file_format and r["rows"] == rows]
            ratios = sorted(r["ratio"] for r in runs)
            print(
                f"{file_format}, {rows:,} rows: training {np.median(ratios):.2f}x in memory (median of "
                f"{len(ratios)}; {ratios[0]:.2f}-{ratios[-1]:.2f})"
            )
        sizes = sorted(args.rows)
        if len(sizes) > 1:
            peak = {
                rows: np.median(
                    [r["peak_rss_mib"] for r in results if r.get("format") == file_format and r["rows"] == rows]
                )
                for rows in (sizes[0], sizes[-1])
            }
            print(
                f"{file_format}: peak RSS at {sizes[-1]:,} / {sizes[0]:,} rows: {peak[sizes[-1]] / peak[sizes[0]]:.2f}"
            )
    steps_note = math.ceil(args.steps)
    print(f"(batch {args.batch_size}, {steps_note} timed steps after {args.warmup} warm-up steps; MMoE {MMOE})")
    return results


if __name__ == "__main__":
    main()
