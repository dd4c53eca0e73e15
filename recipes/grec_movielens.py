"""GRec on MovieLens-100K: (gender flow, like / love) tasks with multi-modal tokens.

    python recipes/grec_movielens.py --data path/to/ml-100k [--routing task_sentence] [--demo]
    python recipes/grec_movielens.py --data path/to/ml-100k --table [--seeds 3]

One row per rating (`tfzoo.data.movielens_ranking_data`), split by time 80/10/10 (the
`movielens` dataset of `tfzoo.data.DATASETS`). Use cases: `like` (rating >= 4) and
`love` (rating 5). Flows: the user's gender (F, M), a user attribute with two sizeable
groups. Tokens, each through a wide & deep encoder:
- user: user id, occupation, age group, zip prefix (deep);
- item: item id, genres (the item's categorical meta, mean-pooled), release year
  (normalised numeric meta) and the precomputed MiniLM title embedding (the paper's
  CLIP item vector);
- history: the user's earlier rated items and their ratings, a behaviour sequence
  encoded by parallel transformer blocks with its padding mask, then pooled;
- the flow and use-case task tokens.
The title embeddings are read from the `derived/` folder beside `ml-100k` when present
(`../shared/data/movielens_100k/derived/` in this project's data layout).

Without `--table`: trains one GRec, reports exact test AUC / AP per use case and per
(flow, use case), exports it (extracted per-task experts for task-level routing) and
checks the export in a fresh TensorFlow-only process. With `--table`: the Table 1 grid.
"""

import argparse
from pathlib import Path

import numpy as np

import tfzoo

import grec_table

USER = ["user_id", "occupation", "age_group", "zip_prefix"]
ITEM = ["item_id", "genres", "release_year", "title_embedding"]
HISTORY = ["history", "history_rating"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the ml-100k folder")
    parser.add_argument("--routing", default="task_sentence", choices=tfzoo.models.grec.ROUTINGS)
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--top-k", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--train-rows", type=int, help="train on the most recent this many training rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--table", action="store_true", help="the Table 1 grid instead of one model")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path("results/grec_movielens.json"))
    parser.add_argument("--export-base", default="savedmodels")
    parser.add_argument("--demo", action="store_true", help="tiny model, the last 6,000 training rows, one epoch")
    args = parser.parse_args()
    if args.demo:
        args.epochs, args.train_rows = 1, 6000

    splits = tfzoo.data.load_dataset("movielens", path=args.data)
    train, validation, test = splits.train, splits.validation, splits.test
    print(f"split: {splits.split}")
    if args.train_rows:
        train = train.take(np.arange(max(0, len(train) - args.train_rows), len(train)))  # time-ordered
    spec = train.spec.fit(train.features)
    item = [name for name in ITEM if name in spec.feature_names]  # title vectors only when present
    if "title_embedding" not in item:
        print("no derived/ title embeddings beside the ml-100k folder: the item token has no text vector")
    options = {
        "flow_feature": "gender",
        "token_features": {"user": USER, "item": item},
        "behaviour_sequences": {"history": HISTORY},
        "model_dim": 16 if args.demo else 32,
        "num_heads": 2 if args.demo else 4,
        "expert_units": (32,) if args.demo else (64,),
        "tower_units": (16,) if args.demo else (32,),
    }
    if args.table:
        grec_table.run_grid("movielens", (train, validation, test), spec, options, seeds=args.seeds,
                            epochs=args.epochs, batch_size=args.batch_size, out=args.json)
        return

    options.update(routing=args.routing, num_experts=args.experts, top_k=args.top_k)
    model = grec_table.train_variant(train, validation, spec, options, seed=args.seed, epochs=args.epochs,
                                     batch_size=args.batch_size, verbose=2)
    grec_table.print_report(f"grec {args.routing} {args.experts}/{args.top_k}", grec_table.score(model, test, spec))
    grec_table.export_and_check(model, spec, test, args.export_base, "grec_movielens")


if __name__ == "__main__":
    main()
