"""Serve every exported model, query each of its signatures over gRPC, print, stop.

    python recipes/serve_and_query.py --model-base-path savedmodels
    python recipes/serve_and_query.py --demo            # exports a tiny model first if needed

The server (`tfzoo.serving.ModelServer`) starts on free loopback ports; each request is
built from the signature's metadata (GetModelMetadata) and the version's warm-up records
(realistic rows synthesised from the feature spec at export), and sent with
`tfzoo.serving.Client`, as any TF Serving client would.
"""

from __future__ import annotations

# isort: off
import quiet_logs  # noqa: F401  (recipes/quiet_logs.py: TensorFlow quiet, before it loads)

# isort: on
import argparse
import sys
import time
from pathlib import Path
from typing import NamedTuple

import grpc
import numpy as np
import tensorflow as tf

import tfzoo  # noqa: F401  (Keras 2 before TensorFlow is touched)
from tfzoo.export import read_warmup_requests
from tfzoo.serving import Client, ModelServer, ServerOptions, example_inputs


def _export_demo_model(base: Path) -> None:
    from tfzoo.data import make_dataset, make_multi_scenario_data
    from tfzoo.export import export_saved_model
    from tfzoo.models import MMoE

    data = make_multi_scenario_data(2000, seed=0)
    spec = data.spec.fit(data.features)
    model = MMoE(feature_spec=spec, num_experts=2, expert_units=[16], tower_units=[8])
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    model.fit(make_dataset(data, spec, batch_size=256, shuffle=True, seed=0), epochs=1, verbose=0)
    print(f"exported {export_saved_model(model, spec, base, 'mmoe_synthetic')}")


def _show(value: np.ndarray, limit: int = 6) -> str:
    flat = value.reshape(-1)[:limit].tolist()
    flat = [
        v.decode(errors="replace") if isinstance(v, bytes) else round(v, 4) if isinstance(v, float) else v for v in flat
    ]
    more = " ..." if value.size > limit else ""
    return f"{list(value.shape)} {flat}{more}"


class Exchange(NamedTuple):
    """One signature's request and answer over gRPC."""

    version: int  # the version that answered
    path: Path  # its directory
    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]


def serve_and_query(model_base_path: str | Path, *, batch_size: int = 2) -> dict[str, dict[str, Exchange]]:
    """Starts a server on `model_base_path`, queries every signature of every model, stops it.

    Returns {model: {signature: Exchange}}.
    """
    answers: dict[str, dict[str, Exchange]] = {}
    started = time.perf_counter()
    with ModelServer(ServerOptions(model_base_path=model_base_path, port=0, rest_port=None, poll_seconds=0)) as server:
        print(
            f"server up on {server.grpc_target} in {time.perf_counter() - started:.1f} s: {server.manager.model_names()}"
        )
        with Client(server.grpc_target) as client:
            for model in server.manager.model_names():
                try:
                    metadata = client.metadata(model)
                except grpc.RpcError as error:  # e.g. its version failed to load: say so, go on
                    print(f"\n{model}: not available: {error.code().name}: {error.details()}")
                    continue
                version_dir = server.manager.servable(model).path
                warmup = read_warmup_requests(version_dir)
                print(f"\n{model} version {metadata.version} ({len(warmup)} warm-up records)")
                answers[model] = {}
                for name, signature in metadata.signatures.items():
                    if signature.method_name != "tensorflow/serving/predict":
                        print(f"  {name}: {signature.method_name} (not queried)")
                        continue
                    inputs = example_inputs(signature, warmup, batch_size=batch_size)
                    prediction = client.predict(model, inputs, signature=name)
                    answers[model][name] = Exchange(prediction.version, Path(version_dir), inputs, dict(prediction))
                    print(f"  {name}: {len(inputs)} inputs -> version {prediction.version}")
                    for key, value in prediction.items():
                        print(f"    {key}: {_show(value)}")
    print("\nserver stopped")
    return answers


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-base-path", default="savedmodels")
    parser.add_argument("--batch-size", type=int, default=2, help="rows per request")
    parser.add_argument("--demo", action="store_true", help="export a tiny model first if the base path has none")
    args = parser.parse_args(argv)
    base = Path(args.model_base_path)
    has_models = base.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in base.iterdir())
    if not has_models:
        if not args.demo:
            print(f"{base} holds no exported models; export one (tfzoo export) or pass --demo", file=sys.stderr)
            return 1
        _export_demo_model(base)
    answers = serve_and_query(base, batch_size=args.batch_size)
    return 0 if answers else 1


if __name__ == "__main__":
    sys.exit(main())
