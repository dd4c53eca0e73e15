"""SSMTL friend retrieval on a Twitch MUSAE graph: train, compare with the graph heuristics,
export with its index.

    python recipes/ssmtl_twitch.py --data PATH/twitch_musae/ES [--seed 0] [--out runs/ssmtl_es]
    python recipes/ssmtl_twitch.py --demo          # generated friend graph (1,500 users), about 3 minutes on 2 cores

The same run as `tfzoo train ssmtl --dataset twitch --data PATH --seed SEED`: the
friendships split per user (10% validation, 10% test, split seed 0), `SSMTLRetrieval` with
`tfzoo train`'s defaults (GATv2 encoder over 2-hop subgraphs with user-id embeddings,
retrieval with log-Q correction and a candidate bias, plus CCA-SSG and GraphMAE at
calibrated weights), trained until validation Recall@50 stops improving (best epoch
kept). Prints test Recall@K next to the link-prediction heuristics on the same split
(popularity, common neighbours, Adamic-Adar, resource allocation) and the model's score
fused with Adamic-Adar at the weight chosen on validation (what is served), then exports
`<export-base>/ssmtl_<dataset>/<version>/` (ScaNN index) and its `_brute_force` twin
(exact, TensorFlow only) over every user and every known friendship. `--demo` does the
same on the generated `friend_graph` dataset (redistributable) with tiny sizes.
"""

# isort: off
import quiet_logs  # noqa: F401  (recipes/quiet_logs.py: TensorFlow quiet, before it loads)

# isort: on
import argparse
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf

import tfzoo
from tfzoo.export import check_in_fresh_process
from tfzoo.export.ann import scann_op_library_path
from tfzoo.training import RunConfig, load_run, task_for, train
from tfzoo.training.summary import append_summary, run_summary

METRICS = ("recall@10", "recall@50", "recall@100")
DEMO_OPTIONS = {
    "hidden_dim": 16,
    "embedding_dim": 16,
    "num_heads": 2,
    "fanouts": [4, 3],
    "ssl_batch_size": 16,
    "mae_decoder_dim": 16,
}
DEMO_DATA = {"num_users": 1500}  # a generated graph half the default size keeps `make demo` short


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a Twitch region folder (DE, ENGB, ES)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--epochs", type=int, help="most epochs (default: tfzoo train ssmtl's; early stopping ends sooner)"
    )
    parser.add_argument("--out", help="run directory (default: runs/ssmtl_<region>; recreated)")
    parser.add_argument("--export-base", default="savedmodels")
    parser.add_argument("--demo", action="store_true", help="the generated friend graph and tiny sizes")
    parser.add_argument("--summary", type=Path, help="append the model's summary line to this JSON-lines file")
    args = parser.parse_args()

    if args.demo:
        config = RunConfig(
            model="ssmtl",
            dataset="friend_graph",
            epochs=3,
            batch_size=256,
            seed=args.seed,
            model_options=DEMO_OPTIONS,
            patience=2,
            data_options=DEMO_DATA,
        )
    elif args.data:
        config = RunConfig(model="ssmtl", dataset="twitch", data_path=args.data, epochs=args.epochs, seed=args.seed)
    else:
        parser.error("pass --data with a Twitch region folder, or --demo")
    run_dir = Path(args.out or f"runs/ssmtl_{'demo' if args.demo else Path(args.data).name.lower()}")
    shutil.rmtree(run_dir, ignore_errors=True)

    metrics = train(config, run_dir, verbose=2)
    print(metrics["split"])
    print(f"best epoch {metrics['best_epoch']} of {metrics['epochs_trained']} (validation Recall@50)")
    rows = [("ssmtl (test)", metrics["test"])]
    if "fused" in metrics:
        fused = metrics["fused"]
        rows.append((f"{tfzoo.evaluation.fusion.fusion_label('ssmtl', fused)} (test, served)", fused["test"]))
    rows += [(f"{name} (test)", report) for name, report in metrics["baselines"]["test"].items()]
    print(tfzoo.evaluation.format_task_table(rows, metrics=METRICS))

    # Serving knows every friendship: the export embeds and excludes from the whole graph
    # (saved with the run), and serves the fusion chosen on validation.
    run = load_run(run_dir, with_data=False)
    name = f"ssmtl_{config.dataset}"
    scann = task_for("ssmtl").export(run, args.export_base, name)
    brute = scann.parent.parent / f"{name}_brute_force" / scann.name
    print(f"exported {scann} and {brute}")
    print(
        "new friends for user 0:",
        np.asarray(
            tf.saved_model.load(str(brute)).signatures["serving_default"](user_ids=tf.constant([0], tf.int64))[
                "friend_ids"
            ]
        )[0][:10],
    )
    # TF Serving's view: each export loads alone (TensorFlow and the ScaNN op library, no
    # tfzoo) and answers its warm-up requests as it does here.
    for path, libraries in ((scann, [scann_op_library_path()]), (brute, [])):
        difference = check_in_fresh_process(path, op_libraries=libraries)
        print(f"{path}: a fresh process answers as this one (max abs difference {difference:.1e})")
    if args.summary:
        append_summary(args.summary, run_summary(run_dir, export=scann, checks={"fresh process": True}))


if __name__ == "__main__":
    main()
