"""Training throughput of each baseline on Census-Income next to the input pipeline alone.

    .venv/bin/python bench/train_throughput.py [--batch-size 512] [--steps 150]

Both are measured in one run on the same batches: the pipeline's examples/s (iterating
the `tf.data` dataset that `fit` consumes, no model) and each model's `fit` examples/s
(after one warm-up epoch that traces the step function). The pipeline is not the
bottleneck when its rate is a large multiple of every model's.
"""

from __future__ import annotations

import argparse
import time

import tensorflow as tf

from tfzoo.data import load_dataset, make_dataset
from tfzoo.models.registry import MODELS, build_model


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


def model_rate(name: str, spec, dataset: tf.data.Dataset, steps: int, batch_size: int) -> float:
    tf.keras.utils.set_random_seed(0)
    model = build_model(name, spec)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
    timer = _EpochTimer()
    model.fit(dataset, steps_per_epoch=steps, epochs=2, callbacks=[timer], verbose=0)  # epoch 1 traces
    return steps * batch_size / timer.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args()
    splits = load_dataset("census")
    spec = splits.train.spec.fit(splits.train.features)
    started = time.perf_counter()
    dataset = make_dataset(splits.train, spec, batch_size=args.batch_size, shuffle=True, seed=0, repeat=True)
    print(f"preprocessing {len(splits.train)} rows once: {time.perf_counter() - started:.2f} s")
    rates = {"input pipeline alone": pipeline_rate(dataset, args.steps * 4, args.batch_size)}
    for name in MODELS:
        rates[f"{name} fit"] = model_rate(name, spec, dataset, args.steps, args.batch_size)
    pipeline = rates["input pipeline alone"]
    print(f"\nCensus-Income, batch {args.batch_size}, {args.steps} steps per measurement")
    print("| what | examples/s | pipeline / this |")
    print("|---|---:|---:|")
    for what, rate in rates.items():
        print(f"| {what} | {rate:,.0f} | {pipeline / rate:.1f}x |")


if __name__ == "__main__":
    main()
