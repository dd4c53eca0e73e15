"""Training throughput of each ranker on Census-Income next to the input pipeline alone.

    .venv/bin/python bench/train_throughput.py [--batch-size 512] [--steps 150]
    .venv/bin/python bench/train_throughput.py --quick      # 3 steps of 64 rows: checks that it runs
    .venv/bin/python bench/train_throughput.py --precision float32 mixed_bfloat16   # side by side (GPU)

Both are measured in one run on the same batches: the pipeline's examples/s (iterating
the `tf.data` stream that `tfzoo train` feeds to `fit`, no model) and each model's `fit`
examples/s (after one warm-up epoch that traces the step function). Every model of the
ranking family is built and fed as `tfzoo train MODEL --dataset census_flows` builds and
feeds it (`family.prepare`, `family.datasets`). The pipeline is not the bottleneck when its
rate is a large multiple of every model's.
"""

from __future__ import annotations

import argparse
import time

import tensorflow as tf

from tfzoo.models.base import dtype_policy
from tfzoo.tasks import RankingTask
from tfzoo.training import RunConfig, task_for
from tfzoo.training.config import PRECISIONS
from tfzoo.training.registry import TASKS

RANKERS = tuple(model for model in TASKS if isinstance(task_for(model), RankingTask))


class _EpochTimer(tf.keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.started


def pipeline_rate(dataset: tf.data.Dataset, steps: int, batch_size: int) -> float:
    iterator = iter(dataset)
    next(iterator)
    started = time.perf_counter()
    for _ in range(steps):
        next(iterator)
    return steps * batch_size / (time.perf_counter() - started)


def model_rate(model, dataset: tf.data.Dataset, steps: int, batch_size: int) -> float:
    timer = _EpochTimer()
    model.fit(dataset, steps_per_epoch=steps, epochs=2, callbacks=[timer], verbose=0)  # epoch 1 traces
    return steps * batch_size / timer.seconds


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--models", nargs="+", choices=RANKERS, default=list(RANKERS))
    parser.add_argument(
        "--precision",
        nargs="+",
        choices=PRECISIONS,
        default=["float32"],
        help="dtype policies to measure side by side (mixed_* pay off on GPUs and TPUs, not on CPUs)",
    )
    parser.add_argument("--quick", action="store_true", help="3 steps of 64 rows: checks that the bench runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch_size, args.steps = 64, 3
    rates = {}
    for name in args.models:
        for precision in args.precision:
            config = RunConfig(
                model=name, dataset="census_flows", batch_size=args.batch_size, epochs=2, precision=precision
            )
            task = task_for(name)
            tf.keras.utils.set_random_seed(0)
            started = time.perf_counter()
            with dtype_policy(precision):  # as `tfzoo train --precision` builds the model
                prepared = task.prepare(config, None)
            dataset = task.datasets(prepared, config).train
            if not rates:
                seconds = time.perf_counter() - started
                print(f"loading and preprocessing {len(prepared.data.train)} rows: {seconds:.2f} s")
                rates["input pipeline alone"] = pipeline_rate(dataset, args.steps * 4, args.batch_size)
            label = f"{name} fit" if args.precision == ["float32"] else f"{name} fit, {precision}"
            rates[label] = model_rate(prepared.model, dataset, args.steps, args.batch_size)
    pipeline = rates["input pipeline alone"]
    print(f"\nCensus-Income flows, batch {args.batch_size}, {args.steps} steps per measurement")
    print("| what | examples/s | pipeline / this |")
    print("|---|---:|---:|")
    for what, rate in rates.items():
        print(f"| {what} | {rate:,.0f} | {pipeline / rate:.1f}x |")
    return rates


if __name__ == "__main__":
    main()
