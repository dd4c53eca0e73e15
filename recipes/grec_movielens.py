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

# isort: off
import quiet_logs  # noqa: F401  (recipes/quiet_logs.py: TensorFlow quiet, before it loads)

# isort: on
import argparse

import grec_table

import tfzoo

USER = ["user_id", "occupation", "age_group", "zip_prefix"]
ITEM = ["item_id", "genres", "release_year", "title_embedding"]
HISTORY = ["history", "history_rating"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the ml-100k folder")
    grec_table.add_arguments(parser, "movielens")
    args = parser.parse_args()
    if args.demo:
        args.epochs, args.train_rows, args.batch_size = 1, 6000, 128

    upsampling = {"upsample_tasks": "gender"} if args.upsample_tasks else {}
    feature_names = tfzoo.data.load_dataset("movielens", path=args.data).train.spec.feature_names
    item = [name for name in ITEM if name in feature_names]  # title vectors only when present
    if "title_embedding" not in item:
        print("no derived/ title embeddings beside the ml-100k folder: the item token has no text vector")
    options = {
        "flow_feature": "gender",
        "token_features": {"user": USER, "item": item},
        "behaviour_sequences": {"history": HISTORY},
    }
    grec_table.run(args, "movielens", "movielens", upsampling, options)


if __name__ == "__main__":
    main()
