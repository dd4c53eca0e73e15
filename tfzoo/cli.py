"""The `tfzoo` command: train, pre-train, evaluate, export, serve and query zoo models."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _option(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


class _OneLineErrors(argparse.ArgumentParser):
    """Usage errors in one line that names what was received and what is accepted; the
    usage itself is under `--help`."""

    _INVALID_CHOICE = re.compile(
        r"argument (?P<argument>\S+): invalid choice: (?P<value>.+) \(choose from (?P<choices>.*)\)"
    )

    def error(self, message: str):
        invalid = self._INVALID_CHOICE.fullmatch(message)
        if invalid:
            name = invalid["argument"].split("/")[-1].lstrip("-").replace("-", "_")
            choices = invalid["choices"].replace("'", "")
            message = f"unknown {name}. Received: {name}={invalid['value']}. Accepted: {choices}"
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `tfzoo` parser. The dataset and strategy names of `train` / `pretrain` are read
    (which imports the data package) only when `command` is one of them: the other commands
    start without it."""
    from tfzoo.training.registry import PRETRAINING, trained_models

    if command in ("train", "pretrain"):
        from tfzoo.data.registry import DATASETS
        from tfzoo.training.distribute import STRATEGIES
    else:
        DATASETS, STRATEGIES = None, None

    parser = _OneLineErrors(
        prog="tfzoo",
        description="Train, evaluate and export tfzoo recommenders.",
        formatter_class=argparse.RawDescriptionHelpFormatter,  # `--version` on one line
    )
    parser.add_argument("--version", action="version", version=_version())
    # Read before parsing (`quiet_tensorflow`, which must run before TensorFlow loads);
    # listed here for --help.
    parser.add_argument("--verbose", action="store_true", help="TensorFlow's C++ log lines too (default: quiet)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("models", help="list the zoo's models, what each is and what data it trains on")
    commands.add_parser("datasets", help="list the named datasets and the kinds of data config")

    train = commands.add_parser("train", help="train a model into a run directory")
    train.add_argument("model", choices=trained_models())
    _add_run_arguments(train, DATASETS, STRATEGIES)
    train.add_argument(
        "--init-from",
        metavar="RUN",
        help="start from the encoder of a pre-training run (`tfzoo pretrain MODEL`), e.g. supermoe",
    )

    pretrain = commands.add_parser(
        "pretrain",
        help="pre-train a model's encoder into a run directory (supermoe: masked channel prediction)",
        description="Writes a run like `tfzoo train`; `tfzoo train MODEL --init-from RUN` fine-tunes from it.",
    )
    pretrain.add_argument("model", choices=sorted(PRETRAINING))
    _add_run_arguments(pretrain, DATASETS, STRATEGIES)

    launch = commands.add_parser(
        "launch",
        help="run a command as a local tf.distribute cluster (workers, parameter servers, chief)",
        description="Starts the command after `--` once per task with its TF_CONFIG, on free 127.0.0.1 ports.",
    )
    launch.add_argument("--workers", type=int, required=True)
    launch.add_argument("--ps", type=int, default=0, help="parameter servers (adds a chief task that coordinates)")
    launch.add_argument("--timeout", type=float, default=3600.0, help="seconds before every task is stopped (exit 124)")
    launch.add_argument("--max-restarts", type=int, default=0, help="start the whole cluster again after a task fails")
    launch.add_argument(
        "task_command", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="the command every task runs"
    )

    evaluate = commands.add_parser(
        "evaluate",
        help="exact metrics of a run's best (or latest) checkpoint, beside the model's strong simple baselines",
    )
    evaluate.add_argument("--run", required=True)
    evaluate.add_argument("--split", default="test", choices=["train", "validation", "test"])

    report = commands.add_parser(
        "report",
        help="write a run's report: training curves, results beside the baselines, expert usage, Recall@K",
        description="Writes RUN/report/report.md and its PNG figures (`tfzoo train` does it at the end of a run).",
    )
    report.add_argument("--run", required=True)
    report.add_argument(
        "--export",
        action="append",
        default=[],
        metavar="VERSION_DIR",
        help="an export of the run (<base>/<name>/<version>) whose ANN index's recall against latency to plot "
        "(repeatable)",
    )

    export = commands.add_parser("export", help="export a run as a SavedModel in the TF Serving layout")
    export.add_argument("--run", required=True)
    export.add_argument("--to", default="savedmodels", help="model base path (default: savedmodels)")
    export.add_argument("--name", help="model name under the base path (default: MODEL_DATASET)")
    export.add_argument("--version", type=int, help="version number (default: next free)")
    export.add_argument(
        "--target-recall",
        type=float,
        help="retrieval models: search the fewest ANN index leaves that reach this recall@10, "
        "measured on a sample of the users (recorded in assets.extra/ann_index.json)",
    )
    export.add_argument(
        "--recall-latency",
        action="store_true",
        help="retrieval models: measure the ANN index's recall@10 and latency at every number of leaves searched, "
        "beside exact search (in assets.extra/ann_index.json; `tfzoo report --export` plots it)",
    )
    export.add_argument(
        "--no-fusion",
        action="store_true",
        help="retrieval models: serve the model's score alone, not fused with the heuristic "
        "the run chose on validation (metrics.json `fused`)",
    )

    data = commands.add_parser(
        "data",
        help="analyze a data config's files, or convert them to TFRecord shards, as Apache Beam pipelines",
        description="Beam pipeline options (--runner DataflowRunner --project ..., Flink, Spark) follow the "
        "command's own; the default runner is DirectRunner (this machine).",
    )
    data.add_argument("action", choices=("analyze", "convert"))
    data.add_argument("--data-config", required=True, metavar="FILE", help="a data config, or a shipped one's name")
    data.add_argument("--data", metavar="DIR", help="the folder of the config's files (shipped configs need it)")
    data.add_argument("--out", required=True, help="output folder (any path tf.io.gfile opens)")
    data.add_argument("--num-shards", type=int, default=32, help="convert: TFRecord files per split")
    data.add_argument(
        "--preprocess",
        action="store_true",
        help="convert: analyze first, then write the rows preprocessed by the fitted spec (model inputs), which "
        "training reads fastest",
    )
    data.add_argument("--on-bad-row", choices=("raise", "skip"), default="raise")

    _add_serving_parsers(commands)
    return parser


# The stack whose versions `tfzoo --version` reports beside the zoo's.
STACK = ("tensorflow", "tf-keras", "tensorflow-recommenders", "tensorflow-gnn", "scann")


def _version() -> str:
    """`tfzoo X (tensorflow Y, ...)`, from the installed packages' metadata (imports none)."""
    from importlib import metadata

    from tfzoo import __version__

    def installed(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    return f"tfzoo {__version__} (" + ", ".join(f"{p} {installed(p)}" for p in STACK) + ")"


def _models(args) -> int:
    from tfzoo.training.registry import PRETRAINING, TASKS, task_for

    pretrains = {pretraining: model for model, pretraining in PRETRAINING.items()}
    for name in sorted(TASKS):
        task = task_for(name)
        summary = (task.model_class.__doc__ or "").strip().splitlines()[0]
        command = f"pretrain {pretrains[name]}" if name in pretrains else f"train {name}"
        kinds = ", ".join(task.data_config_kinds) or "none"
        print(f"{name:<14} {summary}")
        print(f"{'':<14} tfzoo {command}; datasets: {', '.join(task.accepted_datasets)}; data configs: {kinds}")
    return 0


def _datasets(args) -> int:
    from tfzoo.data.data_config import KINDS, shipped_data_configs, shipped_description
    from tfzoo.data.registry import DATASET_DESCRIPTIONS, DATASETS

    print("named datasets (--dataset NAME, read into memory):")
    for name in DATASETS:
        print(f"{name:<20} {DATASET_DESCRIPTIONS[name]}")
    print("\ndata configs shipped with tfzoo (--data-config NAME --data DIR, streamed from the files):")
    for name in shipped_data_configs():
        print(f"{name:<20} {shipped_description(name)}")
    print(f"\nyour own files: --data-config FILE, of kind {', '.join(KINDS)} (docs/data.md)")
    return 0


def _add_run_arguments(parser, datasets, strategies) -> None:
    """The arguments of a training run (`tfzoo train` and `tfzoo pretrain`)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--data-config",
        metavar="FILE",
        help="your own data: a YAML or JSON file naming its files (CSV, TSV, Parquet, TFRecord), features, "
        "labels and split, streamed, never held in memory; or, with `kind: friend_graph`, a node table and an "
        "edge list (see docs/data.md); or the name of a config shipped with tfzoo (`tfzoo datasets`) with "
        "--data DIR",
    )
    source.add_argument("--dataset", choices=None if datasets is None else sorted(datasets), help="a named dataset")
    parser.add_argument(
        "--data",
        help="path of the dataset's files (for datasets not bundled with tfzoo); with --data-config, the folder "
        "its relative file patterns start from (default: the config's folder)",
    )
    parser.add_argument(
        "--on-bad-row",
        choices=("raise", "skip"),
        default="raise",
        help="with --data-config: stop at the first bad row, naming its file and line (default), or skip bad "
        "rows, counted per file and reported after each epoch",
    )
    parser.add_argument("--tasks", help="comma-separated labels to train on (default: the dataset's)")
    parser.add_argument(
        "--data-option",
        type=_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="option of the dataset's split, e.g. --data-option cold_start_share=0.1 (friend graphs), "
        "--data-option fold=2 (behaviour sequences: user-level cross-validation)",
    )
    parser.add_argument(
        "--epochs", type=int, help="most epochs (default: the model's, e.g. 5 for rankers, 12 for ssmtl)"
    )
    parser.add_argument("--batch-size", type=int, help="global batch size (default: the model's, e.g. 512; ssmtl 256)")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the data split (kept across --seed)")
    parser.add_argument(
        "--patience",
        type=int,
        help="stop after PATIENCE epochs without a better validation score and keep the best epoch "
        "(0: train every epoch, keep the last; default: the model's, 3 for rankers, 2 for ssmtl)",
    )
    parser.add_argument(
        "--lr-schedule",
        default="constant",
        choices=["constant", "cosine"],
        help="learning-rate schedule (cosine: decays to 0 over --epochs)",
    )
    parser.add_argument(
        "--precision",
        default="float32",
        choices=["float32", "mixed_bfloat16", "mixed_float16"],
        help="Keras dtype policy: mixed_* compute in 16 bits with float32 variables (GPUs and TPUs; "
        "routers, softmaxes, losses and outputs stay float32)",
    )
    parser.add_argument(
        "--option",
        type=_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model hyper-parameter, e.g. --option num_experts=8 (value parsed as JSON)",
    )
    parser.add_argument("--out", required=True, help="run directory to create (or continue with --resume)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument(
        "--no-report", action="store_true", help="do not write the run's report (RUN/report/) at the end"
    )
    parser.add_argument(
        "--strategy",
        default="default",
        choices=None if strategies is None else list(strategies),
        help="tf.distribute strategy (multi_worker / parameter_server read TF_CONFIG; see `tfzoo launch`)",
    )
    parser.add_argument(
        "--cpu-devices",
        type=int,
        metavar="N",
        help="split the CPU into N logical devices (replicas for --strategy mirrored without GPUs)",
    )
    parser.add_argument(
        "--backup-every",
        type=int,
        metavar="STEPS",
        help="back up the training state every STEPS steps (default: every epoch) for recovery",
    )
    parser.add_argument(
        "--min-shard-bytes",
        type=int,
        default=256 << 10,
        metavar="BYTES",
        help="under parameter_server, split variables of at least BYTES across the parameter servers",
    )


def _add_serving_parsers(commands) -> None:
    serve = commands.add_parser("serve", help="serve SavedModels over TF Serving's gRPC (and REST) API")
    serve.add_argument(
        "--model-base-path",
        required=True,
        help="directory of <model>/<version>/ SavedModels (its models.config, if any, says what to serve)",
    )
    serve.add_argument(
        "--model-config-file", help="text-format ModelServerConfig (default: <model-base-path>/models.config)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    serve.add_argument("--port", type=int, default=8500, help="gRPC port (0: any free port)")
    serve.add_argument("--rest-port", type=int, default=8501, help="REST port (0: no REST API, as in TF Serving)")
    serve.add_argument("--poll-seconds", type=float, default=1.0, help="file system poll interval (0: never)")
    serve.add_argument("--threads", type=int, default=16, help="worker threads per endpoint")
    serve.add_argument("--max-message-mb", type=float, default=64, help="largest request accepted, in MiB")
    serve.add_argument("--enable-batching", action="store_true", help="merge concurrent requests into batches")
    serve.add_argument(
        "--batching-parameters-file", help="TF Serving batching parameters (text format); implies batching"
    )
    serve.add_argument("--max-batch-size", type=int, help="batching: most rows per batch (default 64)")
    serve.add_argument("--batch-timeout-micros", type=int, help="batching: wait for more requests (default 1000)")
    serve.add_argument("--tls-cert", help="PEM certificate chain: serve over TLS")
    serve.add_argument("--tls-key", help="PEM private key of --tls-cert")
    serve.add_argument(
        "--custom-op-library",
        action="append",
        default=[],
        metavar="SO",
        help="op library to register when a graph needs unknown ops (ScaNN's is found automatically)",
    )

    query = commands.add_parser("query", help="call a served model over gRPC and print its outputs")
    query.add_argument("model")
    query.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help='an input (value as JSON: 42, "text", [1, 2]; bare words are strings); one row '
        "unless the value carries the batch dimension",
    )
    query.add_argument("--signature", default="serving_default")
    query.add_argument("--version", type=int)
    query.add_argument("--label", help="version label (instead of --version)")
    query.add_argument("--server", default="127.0.0.1:8500", help="gRPC target host:port")
    query.add_argument("--tls-ca", help="PEM CA certificate: connect over TLS")
    query.add_argument("--timeout", type=float, default=30.0)
    query.add_argument("--metadata", action="store_true", help="print the model's signatures and status instead")


def _train(args) -> int:
    from tfzoo.evaluation.fusion import fusion_label
    from tfzoo.evaluation.report import format_task_table
    from tfzoo.training.config import RunConfig
    from tfzoo.training.distribute import configure_cpu_devices
    from tfzoo.training.registry import PRETRAINING, task_for
    from tfzoo.training.run import train

    if args.cpu_devices:
        configure_cpu_devices(args.cpu_devices)  # before any TensorFlow op
    model = PRETRAINING[args.model] if args.command == "pretrain" else args.model
    data_config = None
    if args.data_config:
        from tfzoo.data.data_config import read_data_config

        data_config = read_data_config(args.data_config, data_root=args.data)
    config = RunConfig(
        model=model,
        dataset=data_config.name if data_config else args.dataset,
        data_config=data_config and data_config.run_record(),
        on_bad_row=args.on_bad_row,
        data_path=args.data,
        tasks=args.tasks.split(",") if args.tasks else None,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        split_seed=args.split_seed,
        model_options=dict(args.option),
        patience=args.patience,
        learning_rate_schedule=args.lr_schedule,
        data_options=dict(args.data_option),
        init_from=getattr(args, "init_from", None),
        precision=args.precision,
    )
    metrics = train(
        config,
        args.out,
        resume=args.resume,
        verbose=1,
        strategy=args.strategy,
        backup_every=args.backup_every,
        min_shard_bytes=args.min_shard_bytes,
        report=not args.no_report,
    )
    if not metrics:
        return 0  # a non-chief task of a cluster: the chief reports
    print(f"\nsplit: {metrics['split']}")
    if metrics.get("best_epoch"):
        print(
            f"best epoch: {metrics['best_epoch']} of {metrics['epochs_trained']} trained "
            f"({metrics['validation_metric']}, restored)"
        )
    rows = [(f"{model} (validation)", metrics["validation"]), (f"{model} (test)", metrics["test"])]
    if "fused" in metrics:
        rows.append((f"{fusion_label(model, metrics['fused'])} (test, served)", metrics["fused"]["test"]))
    rows += [(f"{name} (test)", report) for name, report in metrics.get("baselines", {}).get("test", {}).items()]
    print(format_task_table(rows, metrics=task_for(model).metric_names))
    print(f"\nrun written to {args.out}")
    if not args.no_report:
        print(f"report: {Path(args.out) / 'report' / 'report.md'}")
    if args.command == "pretrain":
        print(f"fine-tune from it: tfzoo train {args.model} --init-from {args.out} ...")
    return 0


def _evaluate(args) -> int:
    from tfzoo.evaluation.fusion import fusion_label
    from tfzoo.evaluation.report import format_task_table
    from tfzoo.training.registry import task_for
    from tfzoo.training.run import evaluate

    report = evaluate(args.run, split=args.split)
    print(f"split: {report['split_description']}")
    rows = [(f"{Path(args.run).name} ({args.split})", report["tasks"])]
    if "fused" in report:
        rows.append(
            (f"{fusion_label(Path(args.run).name, report['fused'])} ({args.split}, served)", report["fused"]["report"])
        )
    rows += [(f"{name} ({args.split})", baseline) for name, baseline in report["baselines"].items()]
    print(format_task_table(rows, metrics=task_for(report["model"]).metric_names))
    (Path(args.run) / f"evaluation_{args.split}.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _report(args) -> int:
    from tfzoo.training.run_report import write_report

    report = write_report(args.run, exports=args.export)
    print(f"report written to {report.path / 'report.md'}")
    return 0


def _export(args) -> int:
    from tfzoo.training.registry import task_for
    from tfzoo.training.run import load_run

    run = load_run(args.run, with_data=False)  # the run holds what the export needs
    name = args.name or f"{run.config.model}_{run.config.dataset}"
    options = {
        "target_recall": args.target_recall,
        "fusion": "none" if args.no_fusion else None,
        "recall_latency": args.recall_latency or None,
    }
    path = task_for(run.config.model).export(run, args.to, name, version=args.version, **options)
    print(f"exported {path}")
    return 0


def _serve(args) -> int:
    from tfzoo.serving import BatchingOptions, ModelServer, ServerOptions, read_batching_parameters

    batching = None
    if args.batching_parameters_file:
        batching = read_batching_parameters(args.batching_parameters_file)
    elif args.enable_batching or args.max_batch_size or args.batch_timeout_micros is not None:
        batching = BatchingOptions()
    if batching is not None and (args.max_batch_size or args.batch_timeout_micros is not None):
        import dataclasses

        overrides = {"max_batch_size": args.max_batch_size, "batch_timeout_micros": args.batch_timeout_micros}
        batching = dataclasses.replace(batching, **{k: v for k, v in overrides.items() if v is not None})
    options = ServerOptions(
        model_base_path=args.model_base_path,
        model_config_file=args.model_config_file,
        host=args.host,
        port=args.port,
        rest_port=args.rest_port or None,
        poll_seconds=args.poll_seconds,
        num_threads=args.threads,
        max_message_bytes=int(args.max_message_mb * 1024 * 1024),
        batching=batching,
        tls_cert_file=args.tls_cert,
        tls_key_file=args.tls_key,
        custom_op_libraries=args.custom_op_library,
    )
    server = ModelServer(options).start()
    rest = f", REST {server.rest_url}" if server.rest_port else ""
    print(
        f"tfzoo serve: gRPC {server.grpc_target}{rest}; models {server.manager.model_names()} (Ctrl-C stops)",
        flush=True,
    )
    server.wait()
    return 0


def _query_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare word is a string


def _query(args) -> int:
    import grpc
    import numpy as np

    from tfzoo.serving import Client

    root = Path(args.tls_ca).read_bytes() if args.tls_ca else None
    with Client(args.server, timeout=args.timeout, root_certificates=root) as client:
        try:
            metadata = client.metadata(args.model, version=args.version, label=args.label)
            if args.metadata:
                print(f"model {metadata.model} version {metadata.version}")
                for state in client.status(args.model):
                    print(f"  version {state.version}: {state.state} {state.error_code} {state.error_message}".rstrip())
                for signature in metadata.signatures.values():
                    print(f"signature {signature.name} ({signature.method_name})")
                    for direction, specs in (("in ", signature.inputs), ("out", signature.outputs)):
                        for spec in specs.values():
                            print(f"  {direction} {spec.key}: {spec.describe()}")
                return 0
            if args.signature not in metadata.signatures:
                raise KeyError(
                    f"model {args.model!r} has no signature {args.signature!r}; it has {sorted(metadata.signatures)}"
                )
            specs = metadata.signatures[args.signature].inputs
            inputs = {}
            for item in args.input:
                if "=" not in item:
                    raise ValueError(f"--input takes NAME=VALUE, got {item!r}")
                name, text = item.split("=", 1)
                if name not in specs:
                    raise KeyError(
                        f"signature {args.signature!r} has no input {name!r}; inputs: "
                        + ", ".join(f"{k} ({s.describe()})" for k, s in specs.items())
                    )
                spec = specs[name]
                value = np.asarray(
                    _query_value(text), dtype=object if spec.dtype.name == "string" else spec.dtype.as_numpy_dtype
                )
                if spec.shape.rank is not None and value.ndim == spec.shape.rank - 1:
                    value = value[np.newaxis]  # one row
                inputs[name] = value
            missing = [f"{k} ({s.describe()})" for k, s in specs.items() if k not in inputs]
            if missing:
                raise ValueError(f"missing --input for: {', '.join(missing)}")
            prediction = client.predict(
                args.model, inputs, signature=args.signature, version=args.version, label=args.label
            )
        except grpc.RpcError as error:
            print(f"tfzoo query: error: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    print(f"model {prediction.model} version {prediction.version} signature {prediction.signature}")
    for name, value in prediction.items():
        shown = [v.decode(errors="replace") if isinstance(v, bytes) else v for v in value.reshape(-1).tolist()]
        print(f"{name}: {np.asarray(shown, dtype=object).reshape(value.shape).tolist()}")
    return 0


def _launch(args) -> int:
    from tfzoo.training.launch import launch

    command = args.task_command[1:] if args.task_command[:1] == ["--"] else args.task_command
    return launch(command, workers=args.workers, ps=args.ps, timeout=args.timeout, max_restarts=args.max_restarts)


def _data(args) -> int:
    from tfzoo.data import beam_pipelines
    from tfzoo.data.data_config import read_data_config

    config = read_data_config(args.data_config, data_root=args.data)
    if config.kind != "rows":
        raise ValueError(
            f"{config.source}: `kind`: tfzoo data {args.action} reads configs of rows. Received: kind={config.kind!r}"
        )
    if args.preprocess and args.action != "convert":
        raise ValueError(f"--preprocess writes converted rows: it goes with `tfzoo data convert`, not {args.action}")
    options = {"on_bad_row": args.on_bad_row, "beam_args": args.beam_args}
    if args.action == "analyze":
        beam_pipelines.analyze(config, args.out, **options)
        spec, rows, _ = beam_pipelines.read_analysis(args.out)
        print(f"rows: {rows}; spec fitted on the training rows: {args.out}/{beam_pipelines.ANALYSIS_FILE}")
    elif args.preprocess:
        rows = beam_pipelines.convert_preprocessed(config, args.out, num_shards=args.num_shards, **options)
        print(f"rows: {rows}; spec fitted on the training rows: {args.out}/{beam_pipelines.ANALYSIS_FILE}")
        print(f"preprocessed rows (model inputs) and their data config: {args.out}/data.yaml")
    else:
        beam_pipelines.convert(config, args.out, num_shards=args.num_shards, **options)
        print(f"TFRecord shards and their data config: {args.out}/data.yaml")
    return 0


# TensorFlow's C++ log level where the user sets none (`TF_CPP_MIN_LOG_LEVEL`) and does not
# pass `--verbose`: fatal only. Level 2 (errors) would still print lines marked `E` on every
# machine without a GPU driver ("failed call to cuInit"), which are not errors of the run;
# the run's own errors reach the user as Python exceptions whatever the level.
QUIET_TF_CPP_LOG_LEVEL = "3"


def quiet_tensorflow(argv: list[str]) -> list[str]:
    """Before TensorFlow is imported: its C++ logs quiet unless the user set their level
    or passed `--verbose` (removed from `argv`, which is returned)."""
    # What follows `--` is another command's (`tfzoo launch ... -- tfzoo train --verbose`).
    end = argv.index("--") if "--" in argv else len(argv)
    own, rest = argv[:end], argv[end:]
    if "--verbose" not in own:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_TF_CPP_LOG_LEVEL)
    return [a for a in own if a != "--verbose"] + rest


def main(argv: Sequence[str] | None = None) -> int:
    argv = quiet_tensorflow(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("absl").setLevel(logging.WARNING)
    logging.getLogger("tensorflow").propagate = False  # it has its own handler
    parser = _parser(argv[0] if argv else None)
    if argv[:1] == ["data"]:  # what the command does not take are the Beam pipeline's options
        args, args.beam_args = parser.parse_known_args(argv)
    else:
        args = parser.parse_args(argv)
    handlers = {
        "train": _train,
        "pretrain": _train,
        "evaluate": _evaluate,
        "export": _export,
        "report": _report,
        "launch": _launch,
        "serve": _serve,
        "query": _query,
        "data": _data,
        "models": _models,
        "datasets": _datasets,
    }
    # Bad data (`DataFormatError`) is a ValueError; missing or existing runs are OSErrors.
    expected: tuple[type[Exception], ...] = (ValueError, KeyError, OSError)
    if args.command in ("train", "pretrain"):
        from tfzoo.training.callbacks import TrainingDivergedError

        expected += (TrainingDivergedError,)
    try:
        return handlers[args.command](args)
    except expected as error:
        print(f"tfzoo {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
