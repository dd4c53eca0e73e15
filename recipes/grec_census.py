"""GRec on Census-Income: (flow, use case) tasks with flows from the class of worker.

    python recipes/grec_census.py [--routing task_sentence] [--epochs 3] [--demo]
    python recipes/grec_census.py --table [--seeds 3] [--json results/grec_census.json]

Tasks are (flow, use case) pairs, as in the paper. Use cases: `income` (> 50K) and
`never_married`, the MMoE paper's pair. Flows: the `class_of_worker` column grouped into
four values (`tfzoo.data.readers.census.WORKER_FLOWS`): private, government (federal,
state, local), self-employed (incorporated or not) and no employer (not in universe,
never worked, without pay). The grouping gives four flows of clearly different
populations (and label rates) with none tiny, which is what a flow is in the paper: the
context a request comes from. `class_of_worker` itself stays a feature; the flow is
a task token. Row tokens: the Census columns grouped by theme (person, work,
household, residence; `CENSUS_TOKEN_GROUPS`), each through a wide & deep encoder.

Without `--table`: trains one GRec (default task-sentence routing, 8 experts, top-4),
reports exact test AUC / AP per use case and per (flow, use case), and exports it with
the GRec exporter (extracted per-task experts for task / task-sentence routing), checked
in a fresh TensorFlow-only process. With `--table`: the Table 1 grid (MMoE 4/4 and GRec
8/4 with token, sentence, task and task-sentence routing, `--seeds` seeds), as JSON and
a Markdown table. The bundled file (99,762 rows) is split 80/10/10 with seed 0.
"""

import argparse
from pathlib import Path

import numpy as np

import tfzoo
from tfzoo.data.readers.census import census_token_groups

import grec_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a Census-Income (KDD) file; default the bundled test split")
    parser.add_argument("--routing", default="task_sentence", choices=tfzoo.models.grec.ROUTINGS)
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--top-k", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--train-rows", type=int, help="train on a random subset of this many training rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--table", action="store_true", help="the Table 1 grid instead of one model")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path("results/grec_census.json"))
    parser.add_argument("--export-base", default="savedmodels")
    parser.add_argument("--demo", action="store_true", help="tiny model, 6,000 training rows, one epoch")
    args = parser.parse_args()
    if args.demo:
        args.epochs, args.train_rows = 1, 6000

    data = tfzoo.data.read_census_income(args.data, tasks=("income", "never_married"), with_flow=True)
    train, validation, test = tfzoo.data.random_split(data, (0.8, 0.1, 0.1), seed=0)
    if args.train_rows:
        train = train.take(np.random.default_rng(0).permutation(len(train))[:args.train_rows])
    spec = train.spec.fit(train.features)  # vocabularies and statistics: training rows only
    options = {
        "flow_feature": "flow",
        "token_features": census_token_groups(spec.feature_names),
        "model_dim": 16 if args.demo else 32,
        "num_heads": 2 if args.demo else 4,
        "expert_units": (32,) if args.demo else (64,),
        "tower_units": (16,) if args.demo else (32,),
    }
    if args.table:
        grec_table.run_grid("census", (train, validation, test), spec, options, seeds=args.seeds,
                            epochs=args.epochs, batch_size=args.batch_size, out=args.json)
        return

    options.update(routing=args.routing, num_experts=args.experts, top_k=args.top_k)
    model = grec_table.train_variant(train, validation, spec, options, seed=args.seed, epochs=args.epochs,
                                     batch_size=args.batch_size, verbose=2)
    grec_table.print_report(f"grec {args.routing} {args.experts}/{args.top_k}", grec_table.score(model, test, spec))
    grec_table.export_and_check(model, spec, test, args.export_base, "grec_census")


if __name__ == "__main__":
    main()
