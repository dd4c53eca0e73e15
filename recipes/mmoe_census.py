"""MMoE on Census-Income: income > 50K and never married (the MMoE paper's first task pair).

    python recipes/mmoe_census.py [--epochs 10] [--export-base savedmodels] [--demo]
    tfzoo launch --workers 2 -- python recipes/mmoe_census.py --strategy multi_worker

Reads the Census-Income file bundled with tfzoo, splits it 80/10/10 (seed 0), trains,
reports exact test AUC / AP per task, and exports a SavedModel for TF Serving. Under
`--strategy` the same code trains with `tf.distribute` (docs/distributed.md); only the
chief reports and exports.
"""

# isort: off
import quiet_logs  # noqa: F401  (recipes/quiet_logs.py: TensorFlow quiet, before it loads)

# isort: on
import argparse

import tensorflow as tf

import tfzoo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--export-base", default="savedmodels")
    parser.add_argument("--demo", action="store_true", help="one quick epoch")
    parser.add_argument("--strategy", default="default", choices=tfzoo.training.distribute.STRATEGIES)
    args = parser.parse_args()
    epochs = 1 if args.demo else args.epochs
    distribute = tfzoo.training.distribute
    if distribute.is_server_task(args.strategy):
        distribute.serve_cluster_task()  # parameter-server workers and servers serve until stopped
    strategy = distribute.make_strategy(args.strategy)  # before any other TensorFlow op

    data = tfzoo.data.read_census_income(tasks=("income", "never_married"))
    train, validation, test = tfzoo.data.random_split(data, (0.8, 0.1, 0.1), seed=0)
    spec = train.spec.fit(train.features)  # vocabularies and statistics: training rows only

    tf.keras.utils.set_random_seed(0)
    with strategy.scope():
        model = tfzoo.models.MMoE(feature_spec=spec, num_experts=8, expert_units=(64,), tower_units=(32,))
        model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
    # The batch size is global: split across the replicas of every step.
    columns = tfzoo.data.model_columns(train, spec)
    model.fit(
        distribute.fit_input(
            strategy,
            lambda: tfzoo.data.dataset_from_columns(
                columns, batch_size=args.batch_size, shuffle=True, seed=0, repeat=True
            ),
        ),
        steps_per_epoch=-(-len(train) // args.batch_size),
        validation_data=None
        if args.strategy == "parameter_server"
        else tfzoo.data.make_dataset(validation, spec, batch_size=4096),
        epochs=epochs,
        verbose=2 if args.strategy == "parameter_server" else "auto",
    )
    if distribute.uses_cluster(strategy):
        # Predict in this process alone, on a copy with the trained weights. Every worker
        # copies: reading variables synchronised across workers is a collective op.
        trained, model = model, tfzoo.models.MMoE.from_config(model.get_config())
        model(next(iter(tfzoo.data.make_dataset(test, spec, batch_size=2, with_labels=False))))
        model.set_weights(trained.get_weights())
    if not distribute.task_info().is_chief:
        return

    predictions = model.predict(tfzoo.data.make_dataset(test, spec, batch_size=4096, with_labels=False), verbose=0)
    report = tfzoo.evaluation.task_metrics(test.labels, predictions, test.label_masks)
    print(tfzoo.evaluation.format_task_table([("mmoe (test)", report)]))

    path = tfzoo.export.export_saved_model(model, spec, args.export_base, "mmoe_census")
    print(f"exported {path}")


if __name__ == "__main__":
    main()
