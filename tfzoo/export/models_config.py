"""`<export_base>/models.config`: TF Serving's model config file, kept up to date by exports.

The file is a text-format `tensorflow.serving.ModelServerConfig` with one
`model_config_list.config` entry per model (name, base_path, platform, version policy,
version labels): the file TF Serving reads with `--model_config_file`, and `tfzoo serve`
reads from the model base path. Each export adds its model (or refreshes its base path),
keeping every other entry and every hand-set policy or label as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

MODELS_CONFIG_FILE = "models.config"


def read_models_config(path: str | Path) -> model_server_config_pb2.ModelServerConfig:
    """Parses a text-format `ModelServerConfig`; errors name the file, line and column."""
    path = Path(path)
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(path.read_text(), config)
    except text_format.ParseError as error:
        raise ValueError(f"{path}: not a text-format tensorflow.serving.ModelServerConfig: {error}") from None
    if config.HasField("custom_model_config"):
        raise ValueError(f"{path}: custom_model_config is not supported; use model_config_list.")
    names = [c.name for c in config.model_config_list.config]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{path}: model names must be unique; repeated: {duplicates}")
    return config


def format_models_config(config: model_server_config_pb2.ModelServerConfig) -> str:
    return text_format.MessageToString(config)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    # Two exports into the same base path must not lose each other's entry.
    with open(directory / f".{MODELS_CONFIG_FILE}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_models_config(path: str | Path, config: model_server_config_pb2.ModelServerConfig) -> Path:
    """Writes `config` to `path` atomically (temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(format_models_config(config))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def add_to_models_config(export_base: str | Path, name: str, *, base_path: str | Path | None = None) -> Path:
    """Adds model `name` to `<export_base>/models.config` (creating the file if needed).

    Args:
      export_base: the model base path holding `<name>/<version>/`.
      name: the model name.
      base_path: the path TF Serving should read the model from; default the absolute
        path of `<export_base>/<name>` (for a container, mount the directory at the same
        path, or rewrite the prefix).

    Returns:
      The config file. An existing entry for `name` keeps its version policy and labels;
      only its base path is refreshed. Other entries are kept as they are.
    """
    export_base = Path(export_base)
    export_base.mkdir(parents=True, exist_ok=True)
    path = export_base / MODELS_CONFIG_FILE
    base_path = str(Path(base_path) if base_path is not None else (export_base / name).resolve())
    with _locked(export_base):
        config = read_models_config(path) if path.exists() else model_server_config_pb2.ModelServerConfig()
        entries = config.model_config_list.config
        entry = next((c for c in entries if c.name == name), None)
        if entry is None:
            entry = entries.add(name=name, model_platform="tensorflow")
        entry.base_path = base_path
        return write_models_config(path, config)
