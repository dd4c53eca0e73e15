"""Eq. 10's AUC-driven task weights with a pure-noise auxiliary task: lambda trajectories.

Generated behaviour sequences (`make_behaviour_sequences`) with their three tasks (like,
female, over_34) plus `noise`, a task of coin-flip labels (`with_noise_task`). A small
SUPER-MoE is fine-tuned with `task_weight_rate > 0`; every training batch comes with a
validation batch, and lambda moves towards the tasks whose training gradients align with
the validation AUC surrogate's. Prints, per seed, lambda of every task every
`--every` steps (markdown), and the final weights; the noise task should end lowest.

    python bench/supermoe_task_weights.py [--seeds 3] [--epochs 3] [--rate 0.1] [--figure PNG]
    python bench/supermoe_task_weights.py --quick    # one seed, one epoch: checks that it runs
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfzoo  # noqa: E402,F401  (Keras 2 switch)
from tfzoo.data.behaviour_sequences import (  # noqa: E402
    BEHAVIOUR_TASKS,
    channel_columns,
    make_behaviour_sequences,
    with_noise_task,
)
from tfzoo.evaluation import figures  # noqa: E402
from tfzoo.evaluation.report import reproducing_command  # noqa: E402
from tfzoo.models.supermoe import SuperMoE  # noqa: E402


def batches(rows, tasks, batch_size, seed):
    columns = channel_columns(rows)
    labels = {t: rows.labels[t] for t in tasks}
    masks = {t: rows.label_masks[t] for t in tasks}
    dataset = tf.data.Dataset.from_tensor_slices((columns, labels, masks))
    return dataset.shuffle(len(rows), seed=seed, reshuffle_each_iteration=True).batch(batch_size)


class Trajectory(tf.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps: list[dict[str, float]] = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(self.model.current_task_weights())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=0.1, help="task_weight_rate")
    parser.add_argument("--every", type=int, default=5, help="print lambda every EVERY steps")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="one seed, one epoch: checks that the bench runs")
    parser.add_argument("--figure", help="also draw every seed's trajectories into this PNG file")
    parser.add_argument("--out", help="write one JSON line per seed (every step's lambdas) and the command here")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs = 1, 1

    data, sizes = make_behaviour_sequences(80, num_items=60, events_per_user=16, length=6, seed=3)
    data = with_noise_task(data, seed=0)
    tasks = (*BEHAVIOUR_TASKS, "noise")
    order = np.random.default_rng(0).permutation(len(data))
    train, validation = data.take(order[:900]), data.take(order[900:])
    encoder = dict(
        units=16,
        category_channels=sizes.category_channels,
        id_channels=sizes.id_channels,
        dense_channels=sizes.dense_channels,
        num_heads=2,
        key_dim=8,
        ffn_units=16,
        num_experts=2,
    )
    print(
        f"{len(train)} training / {len(validation)} validation sequences; tasks {list(tasks)}; "
        f"task_weight_rate {args.rate}, batch {args.batch_size}"
    )
    finals, trajectories = [], {}
    for seed in range(args.seeds):
        tf.keras.utils.set_random_seed(seed)
        model = SuperMoE(encoder=encoder, tasks=tasks, task_weight_rate=args.rate)
        model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
        trajectory = Trajectory()
        data_pairs = tf.data.Dataset.zip(
            (batches(train, tasks, args.batch_size, seed), batches(validation, tasks, args.batch_size, seed).repeat())
        )
        model.fit(data_pairs, epochs=args.epochs, verbose=0, callbacks=[trajectory])
        print(f"\nseed {seed}: lambda per step")
        print("| step | " + " | ".join(tasks) + " |")
        print("|---:|" + "---:|" * len(tasks))
        shown = list(range(0, len(trajectory.steps), args.every))
        if shown[-1] != len(trajectory.steps) - 1:
            shown.append(len(trajectory.steps) - 1)
        for step in shown:
            weights = trajectory.steps[step]
            print(f"| {step + 1} | " + " | ".join(f"{weights[t]:.3f}" for t in tasks) + " |")
        finals.append(trajectory.steps[-1])
        trajectories[f"seed {seed}"] = {t: [weights[t] for weights in trajectory.steps] for t in tasks}
    lowest = [min(final, key=final.get) for final in finals]
    print(f"\nlowest final lambda per seed: {lowest}; noise lowest in {lowest.count('noise')} of {len(finals)} seeds")
    print("mean final lambda: " + ", ".join(f"{t} {np.mean([f[t] for f in finals]):.3f}" for t in tasks))
    if args.out:
        command = reproducing_command(__file__, sys.argv[1:] if argv is None else argv)
        with open(args.out, "w") as file:
            for seed, steps in enumerate(trajectories.values()):
                row = {"seed": seed, "rate": args.rate, "epochs": args.epochs, "batch_size": args.batch_size}
                row.update(lambdas=steps, final=finals[seed], command=command)
                file.write(json.dumps(row) + "\n")
        print(f"wrote {args.out}")
    if args.figure:
        figures.line_panels(
            trajectories,
            args.figure,
            xlabel="training step",
            ylabel="task weight lambda",
            title=f"eq. 10's AUC-driven task weights, rate {args.rate}: the noise task should fall",
            reference=1.0,
        )
        print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
