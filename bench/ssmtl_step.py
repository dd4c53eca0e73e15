"""SSMTL training speed: seconds per step and per epoch of the previous code and of the
current defaults, measured side by side in one run.

    git worktree add ../tfzoo-previous df5eb64      # the code before the faster step
    python bench/ssmtl_step.py --data ../shared/data/twitch_musae/ES \
        --previous-checkout ../tfzoo-previous
    python bench/ssmtl_step.py --quick      # `current` on a 200-user graph, in this process: checks that it runs

Each configuration runs in a fresh process, one after the other, and trains `--steps`
batches of 256 directed training friendships with `model.fit` after `--warmup` batches
(tracing, pipeline start-up); the epoch time is the step time times the steps of one
epoch. `previous` imports tfzoo from `--previous-checkout` and trains its SSMTL model with
both self-supervised objectives (beta 1, gamma 30, as docs/ssmtl.md measured it before);
without that option it is skipped. Without `--data`, a generated graph of ES's size is used.
`--quick` measures `current` (or the `--only` configurations but `previous`) in this
process, for a few small batches on a generated graph of 200 users.

Configurations:
- `previous`: the previous code, retrieval + CCA-SSG + GraphMAE.
- `current`: `tfzoo train ssmtl`'s defaults (`tfzoo.tasks.ssmtl.SSMTL_DEFAULTS`),
  retrieval + CCA-SSG + GraphMAE (weights 1, not calibrated: the step costs the same).
- `current, retrieval only`: the same without the self-supervised objectives.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CONFIGURATIONS = ("previous", "current", "current, retrieval only")
ES_USERS = 4648  # users of Twitch ES, the size of the default generated graph
# `--quick`: a graph, batches and step counts small enough for a test to call the bench.
QUICK_USERS, QUICK_STEPS, QUICK_WARMUP, QUICK_BATCH_SIZE = 200, 2, 1, 32


def _graph(data: str | None, users: int = ES_USERS):
    import tfzoo

    if data:
        return tfzoo.data.read_twitch(data)
    return tfzoo.data.make_friend_graph(users, num_communities=40, feature_dim=3170, mean_degree=25, seed=0)


def _current_options(name: str, num_users: int) -> dict:
    """The model options `tfzoo train ssmtl` builds from its defaults, the run's own options
    (fan-outs, fusion, the objectives' scales) left out. A run calibrates eq. 6's weights
    from the scales; here both are 1: a step costs the same at any non-zero weight, and
    calibrating would trace one more model."""
    from tfzoo.tasks.ssmtl import SSMTL_DEFAULTS
    from tfzoo.training import task_for

    run_options = task_for("ssmtl").run_options
    options = {key: value for key, value in SSMTL_DEFAULTS.items() if key not in run_options}
    weight = 0.0 if name == "current, retrieval only" else 1.0
    return {**options, "id_buckets": num_users, "cca_weight": weight, "mae_weight": weight}


def measure(
    name: str, *, data: str | None, steps: int, warmup: int, batch_size: int, seed: int, users: int = ES_USERS
) -> dict:
    """Seconds per step of configuration `name`, in this process (only APIs the previous
    code has are used for `previous`); without `data`, on a generated graph of `users`."""
    import tensorflow as tf

    import tfzoo
    from tfzoo.graph import SubgraphSampler, directed_pairs
    from tfzoo.models.ssmtl import SSMTLRetrieval

    graph = _graph(data, users)
    splits = tfzoo.data.split_friendships(graph, seed=0)
    if name == "previous":
        options = {"cca_weight": 1.0, "mae_weight": 30.0}
    else:
        options = _current_options(name, graph.num_users)
    tf.keras.utils.set_random_seed(seed)
    sampler = SubgraphSampler(splits.train, seed=seed)
    pairs = directed_pairs(splits.train.edges)
    dataset = sampler.friendship_dataset(pairs, batch_size=batch_size, shuffle_seed=seed, repeat=True)
    model = SSMTLRetrieval(feature_dim=graph.features.dim, **options)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
    model.build_objectives(next(iter(dataset)))

    class StepClock(tf.keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == warmup - 1:
                self.start = time.perf_counter()

        def on_train_end(self, logs=None):
            self.end = time.perf_counter()

    clock = StepClock()
    model.fit(dataset, steps_per_epoch=warmup + steps, epochs=1, verbose=0, callbacks=[clock])
    seconds = (clock.end - clock.start) / steps
    steps_per_epoch = len(pairs) // batch_size
    return {
        "configuration": name,
        "options": options,
        "seconds_per_step": round(seconds, 4),
        "steps_per_epoch": steps_per_epoch,
        "epoch_seconds": round(seconds * steps_per_epoch, 1),
        "tfzoo": str(Path(tfzoo.__file__).parent.parent.name),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="a Twitch region folder (default: a generated graph of ES's size)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--previous-checkout", type=Path, help="a checkout of the previous code (see above)")
    parser.add_argument("--only", nargs="*", choices=CONFIGURATIONS, help="configurations to measure (default: all)")
    parser.add_argument("--measure", choices=CONFIGURATIONS, help=argparse.SUPPRESS)  # one, in this process
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"`current` (or --only's configurations) in this process on a generated {QUICK_USERS}-user graph, "
        f"{QUICK_STEPS} steps of {QUICK_BATCH_SIZE} pairs after {QUICK_WARMUP} warm-up: checks that the bench runs",
    )
    args = parser.parse_args(argv)
    if args.quick:
        if args.data:
            parser.error("--quick generates its graph: drop --data")
        quick = args.only or ["current"]
        if "previous" in quick:
            # In this process tfzoo is this checkout's: the previous code needs its own process.
            parser.error("--quick measures in this process, with this checkout's tfzoo: it cannot measure previous")
        for name in quick:
            result = measure(
                name,
                data=None,
                users=QUICK_USERS,
                steps=QUICK_STEPS,
                warmup=QUICK_WARMUP,
                batch_size=QUICK_BATCH_SIZE,
                seed=args.seed,
            )
            print(json.dumps(result), flush=True)
        return
    settings = {
        "data": args.data and str(Path(args.data).resolve()),
        "steps": args.steps,
        "warmup": args.warmup,
        "batch_size": args.batch_size,
        "seed": args.seed,
    }
    if args.measure:
        print(json.dumps(measure(args.measure, **settings)), flush=True)
        return
    here = Path(__file__).resolve().parent.parent
    results = {}
    for name in args.only or CONFIGURATIONS:
        checkout = here
        if name == "previous":
            if args.previous_checkout is None:
                print("previous: skipped (no --previous-checkout)")
                continue
            checkout = args.previous_checkout.resolve()
        command = [sys.executable, str(Path(__file__).resolve()), "--measure", name]
        for key, value in settings.items():
            if value is not None:
                command += [f"--{key.replace('_', '-')}", str(value)]
        environment = {**os.environ, "PYTHONPATH": str(checkout), "TF_CPP_MIN_LOG_LEVEL": "2"}
        output = subprocess.run(command, check=True, capture_output=True, text=True, env=environment, cwd=checkout)
        result = json.loads(output.stdout.strip().splitlines()[-1])
        results[name] = result
        print(json.dumps(result), flush=True)
    if "previous" in results:
        base = results["previous"]["seconds_per_step"]
        for name, result in results.items():
            print(
                f"{name}: {result['epoch_seconds']:.0f} s per epoch ({result['seconds_per_step']:.3f} s per step), "
                f"{base / result['seconds_per_step']:.2f}x the previous code's speed"
            )


if __name__ == "__main__":
    main()
