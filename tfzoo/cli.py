"""The `tfzoo` command: train, evaluate and export zoo models."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Sequence


def _option(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _parser() -> argparse.ArgumentParser:
    from tfzoo.data.registry import DATASETS
    from tfzoo.training.families import MODEL_FAMILIES

    parser = argparse.ArgumentParser(prog="tfzoo", description="Train, evaluate and export tfzoo recommenders.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model into a run directory")
    train.add_argument("model", choices=sorted(MODEL_FAMILIES))
    train.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    train.add_argument("--data", help="path of the dataset's files (for datasets not bundled with tfzoo)")
    train.add_argument("--tasks", help="comma-separated labels to train on (default: the dataset's)")
    train.add_argument("--epochs", type=int, default=5)
    train.add_argument("--batch-size", type=int, default=512)
    train.add_argument("--learning-rate", type=float, default=1e-3)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--option", type=_option, action="append", default=[], metavar="KEY=VALUE",
                       help="model hyper-parameter, e.g. --option num_experts=8 (value parsed as JSON)")
    train.add_argument("--out", required=True, help="run directory to create (or continue with --resume)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")

    evaluate = commands.add_parser("evaluate", help="exact AUC / AP of a run's latest checkpoint")
    evaluate.add_argument("--run", required=True)
    evaluate.add_argument("--split", default="test", choices=["train", "validation", "test"])

    export = commands.add_parser("export", help="export a run as a SavedModel in the TF Serving layout")
    export.add_argument("--run", required=True)
    export.add_argument("--to", default="savedmodels", help="model base path (default: savedmodels)")
    export.add_argument("--name", help="model name under the base path (default: MODEL_DATASET)")
    export.add_argument("--version", type=int, help="version number (default: next free)")
    return parser


def _train(args) -> int:
    from tfzoo.evaluation.report import format_task_table
    from tfzoo.training.config import RunConfig
    from tfzoo.training.families import family_for
    from tfzoo.training.run import train

    config = RunConfig(
        model=args.model, dataset=args.dataset, data_path=args.data,
        tasks=args.tasks.split(",") if args.tasks else None, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, seed=args.seed, model_options=dict(args.option),
    )
    metrics = train(config, args.out, resume=args.resume, verbose=1)
    print(f"\nsplit: {metrics['split']}")
    print(format_task_table([(f"{args.model} (validation)", metrics["validation"]), (f"{args.model} (test)", metrics["test"])],
                            metrics=family_for(args.model).metric_names))
    print(f"\nrun written to {args.out}")
    return 0


def _evaluate(args) -> int:
    from tfzoo.evaluation.report import format_task_table
    from tfzoo.training.families import family_for
    from tfzoo.training.run import evaluate

    report = evaluate(args.run, split=args.split)
    print(f"split: {report['split_description']}")
    print(format_task_table([(f"{Path(args.run).name} ({args.split})", report["tasks"])],
                            metrics=family_for(report["model"]).metric_names))
    (Path(args.run) / f"evaluation_{args.split}.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _export(args) -> int:
    from tfzoo.export.registry import export_model
    from tfzoo.training.run import load_run

    run = load_run(args.run)
    name = args.name or f"{run.config.model}_{run.config.dataset}"
    path = export_model(run.config.model, run.model, run.inputs, args.to, name, version=args.version)
    print(f"exported {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("absl").setLevel(logging.WARNING)
    logging.getLogger("tensorflow").propagate = False  # it has its own handler
    args = _parser().parse_args(argv)
    from tfzoo.data.errors import DataFormatError
    from tfzoo.training.callbacks import TrainingDivergedError

    handlers = {"train": _train, "evaluate": _evaluate, "export": _export}
    try:
        return handlers[args.command](args)
    except (TrainingDivergedError, DataFormatError, FileExistsError, FileNotFoundError, ValueError, KeyError) as error:
        print(f"tfzoo {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
