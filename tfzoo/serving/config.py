"""Which models to serve, from where, and which versions: TF Serving's model config.

Models come from a `ModelServerConfig` (text format, `models.config`) or, without one,
from the subdirectories of the model base path. A model's versions are the numeric
subdirectories of its base path that hold a SavedModel; its version policy picks the
ones to serve: `latest` (the N highest, default 1), `all`, or `specific` versions.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from pathlib import Path

from tensorflow_serving.config import file_system_storage_path_source_pb2, model_server_config_pb2

from tfzoo.export.models_config import MODELS_CONFIG_FILE, read_models_config

logger = logging.getLogger("tfzoo.serving")

VersionPolicy = file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """One model to serve: its name, base path, version policy and version labels."""

    name: str
    base_path: Path
    policy: VersionPolicy
    labels: tuple[tuple[str, int], ...] = ()

    @property
    def label_map(self) -> dict[str, int]:
        return dict(self.labels)

    def describe_policy(self) -> str:
        kind = self.policy.WhichOneof("policy_choice") or "latest"
        if kind == "latest":
            return f"latest {self.policy.latest.num_versions or 1}"
        if kind == "specific":
            return f"specific {list(self.policy.specific.versions)}"
        return "all"


def versions_on_disk(base_path: Path) -> list[int]:
    """Numeric subdirectories holding a SavedModel (others, e.g. `.tmp-*`, are not versions)."""
    if not base_path.is_dir():
        return []
    versions = []
    for child in base_path.iterdir():
        if (
            child.name.isdigit()
            and child.is_dir()
            and ((child / "saved_model.pb").exists() or (child / "saved_model.pbtxt").exists())
        ):
            versions.append(int(child.name))
    return sorted(versions)


def aspired_versions(policy: VersionPolicy, available: Iterable[int]) -> list[int]:
    """The versions `policy` serves among those `available` on disk."""
    available = sorted(set(available))
    kind = policy.WhichOneof("policy_choice") or "latest"
    if kind == "all":
        return available
    if kind == "specific":
        return [v for v in available if v in set(policy.specific.versions)]
    num = policy.latest.num_versions or 1
    return available[-num:]


def sources_from_config(
    config: model_server_config_pb2.ModelServerConfig, relative_to: Path, where: str = "model config"
) -> dict[str, ModelSource]:
    """`ModelSource`s of a `ModelServerConfig`; relative base paths are taken from `relative_to`."""
    sources = {}
    for entry in config.model_config_list.config:
        if not entry.name:
            raise ValueError(f"{where}: a model config entry has no name.")
        if not entry.base_path:
            raise ValueError(f"{where}: model {entry.name!r} has no base_path.")
        if entry.model_platform and entry.model_platform != "tensorflow":
            raise ValueError(
                f"{where}: model {entry.name!r} has platform {entry.model_platform!r}; "
                "tfzoo serve serves 'tensorflow' SavedModels only."
            )
        kind = entry.model_version_policy.WhichOneof("policy_choice")
        if kind == "specific" and not entry.model_version_policy.specific.versions:
            raise ValueError(f"{where}: model {entry.name!r} has a specific version policy with no versions.")
        if kind == "latest" and entry.model_version_policy.latest.num_versions < 0:
            raise ValueError(f"{where}: model {entry.name!r}: latest.num_versions must be >= 1.")
        base_path = Path(entry.base_path)
        if not base_path.is_absolute():
            base_path = relative_to / base_path
        sources[entry.name] = ModelSource(
            name=entry.name,
            base_path=base_path,
            policy=entry.model_version_policy,
            labels=tuple(sorted(entry.version_labels.items())),
        )
    return sources


def discover_sources(model_base_path: Path) -> dict[str, ModelSource]:
    """Without a config: every subdirectory holding numeric versions is a model (latest version)."""
    if not model_base_path.is_dir():
        raise FileNotFoundError(f"Model base path {model_base_path} is not a directory.")
    sources = {}
    for child in sorted(model_base_path.iterdir()):
        if child.is_dir() and not child.name.startswith(".") and versions_on_disk(child):
            sources[child.name] = ModelSource(child.name, child, VersionPolicy())
    return sources


class ModelSources:
    """Reads the models to serve, re-reading the config file when it changes.

    Args:
      model_base_path: directory of models; its `models.config`, if present, is the config.
      model_config_file: explicit config file (takes precedence).
    """

    def __init__(self, model_base_path: str | Path | None = None, model_config_file: str | Path | None = None):
        if model_base_path is None and model_config_file is None:
            raise ValueError("Give a model base path or a model config file.")
        self.model_base_path = Path(model_base_path) if model_base_path is not None else None
        self.model_config_file = Path(model_config_file) if model_config_file is not None else None
        self._override: model_server_config_pb2.ModelServerConfig | None = None
        self._cache_key = None
        self._cached: dict[str, ModelSource] = {}

    def config_file(self) -> Path | None:
        if self.model_config_file is not None:
            return self.model_config_file
        candidate = self.model_base_path / MODELS_CONFIG_FILE
        return candidate if candidate.exists() else None

    def set_config(self, config: model_server_config_pb2.ModelServerConfig) -> dict[str, ModelSource]:
        """Replaces the config (ModelService.HandleReloadConfigRequest); files are not read after this."""
        relative_to = self.model_base_path or self.model_config_file.parent
        sources = sources_from_config(config, relative_to, "reload config request")
        self._override = config
        self._cached = sources
        return sources

    def read(self) -> dict[str, ModelSource]:
        """The current sources (raises ValueError / FileNotFoundError naming the file on bad config)."""
        if self._override is not None:
            return self._cached
        path = self.config_file()
        if path is None:
            return discover_sources(self.model_base_path)
        if not path.exists():
            raise FileNotFoundError(f"Model config file {path} does not exist.")
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key != self._cache_key:
            self._cached = sources_from_config(read_models_config(path), path.parent.resolve(), str(path))
            self._cache_key = key
            logger.info(
                "model config %s: %s",
                path,
                ", ".join(f"{s.name} ({s.describe_policy()})" for s in self._cached.values()) or "no models",
            )
        return self._cached
