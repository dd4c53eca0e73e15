"""The models being served: loading, warm-up, version swaps and unloading.

A poll (at start, then every `poll_seconds`) reads the model sources, lists each model's
versions on disk and applies its version policy. New versions are loaded and warmed up
(`assets.extra/tf_serving_warmup_requests`) before they are listed as available; versions
that the policy no longer wants are unloaded only once an aspired version is available,
so a model never goes dark because its new version failed to load. A request resolves
its version once and holds that object to the end, so a swap never fails it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import grpc
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.config import model_server_config_pb2

from tfzoo.export.warmup import read_warmup_requests
from tfzoo.serving.batching import BatchingOptions
from tfzoo.serving.config import ModelSource, ModelSources, aspired_versions, versions_on_disk
from tfzoo.serving.errors import ServingError, invalid_argument, not_found
from tfzoo.serving.inference import replay_warmup
from tfzoo.serving.servable import ServableVersion

logger = logging.getLogger("tfzoo.serving")

State = get_model_status_pb2.ModelVersionStatus.State


@dataclasses.dataclass
class VersionStatus:
    """What GetModelStatus reports for one version."""

    version: int
    state: int = State.START
    error: ServingError | None = None


@dataclasses.dataclass
class _Model:
    source: ModelSource
    statuses: dict[int, VersionStatus] = dataclasses.field(default_factory=dict)
    # Replaced, never mutated, so a reader needs no lock to use a snapshot of it.
    available: dict[int, ServableVersion] = dataclasses.field(default_factory=dict)
    source_error: str | None = None


class ModelManager:
    """Serves the versions that the model sources and their policies ask for.

    Args:
      sources: where the models come from (`ModelSources`).
      poll_seconds: seconds between polls of the file system (0: poll only on `poll()`).
      batching: server-side batching options for every model (None: off).
      custom_op_libraries: op libraries to register when a graph needs unknown ops.
    """

    def __init__(
        self,
        sources: ModelSources,
        *,
        poll_seconds: float = 1.0,
        batching: BatchingOptions | None = None,
        custom_op_libraries: Sequence[str | Path] = (),
    ):
        self.sources = sources
        self.poll_seconds = poll_seconds
        self.batching = batching
        self.custom_op_libraries = tuple(custom_op_libraries)
        self._models: dict[str, _Model] = {}
        self._lock = threading.RLock()  # guards _models and the statuses in it
        self._poll_lock = threading.Lock()  # one poll at a time (poller thread, reload requests)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.config_error: str | None = None

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Loads what the sources ask for (blocking, like TF Serving), then polls in the background.

        Raises:
          ValueError, FileNotFoundError: the model config or base path is unusable (later
            polls only log such errors and keep serving).
        """
        self.poll(strict=True)
        if self.poll_seconds > 0:
            self._thread = threading.Thread(target=self._poll_loop, name="tfzoo-model-poller", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            models = list(self._models.values())
        for model in models:
            for servable in model.available.values():
                servable.close()

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception:  # the poller must survive anything the file system throws at it
                logger.exception("model poll failed")

    # --- polling --------------------------------------------------------------------

    def poll(self, *, strict: bool = False) -> None:
        """One pass: re-read the config if it changed, then load / unload per policy."""
        with self._poll_lock:
            try:
                sources = self.sources.read()
                self.config_error = None
            except (ValueError, FileNotFoundError, OSError) as error:
                if strict:
                    raise
                # A broken config edit must not unload what is being served: keep going with the last one.
                if str(error) != self.config_error:
                    logger.error("model config: %s (keeping the models already loaded)", error)
                self.config_error = str(error)
                return
            self._apply(sources)

    def reload_config(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        """ModelService.HandleReloadConfigRequest: serve exactly `config`'s models, now."""
        with self._poll_lock:
            try:
                sources = self.sources.set_config(config)
            except ValueError as error:
                raise invalid_argument(str(error)) from None
            self._apply(sources)

    def _apply(self, sources: dict[str, ModelSource]) -> None:
        with self._lock:
            removed = [name for name in self._models if name not in sources]
        for name in removed:
            self._unload_model(name)
        for name, source in sources.items():
            with self._lock:
                model = self._models.setdefault(name, _Model(source))
                model.source = source
            self._sync_model(model)

    def _sync_model(self, model: _Model) -> None:
        source = model.source
        if not source.base_path.is_dir():
            message = f"base path {source.base_path} of model {source.name!r} does not exist"
            if model.source_error != message:
                logger.error("%s", message)
            model.source_error = message
            return
        model.source_error = None
        aspired = aspired_versions(source.policy, versions_on_disk(source.base_path))
        for version in aspired:
            with self._lock:
                status = model.statuses.get(version)
            # Failed versions stay failed (state END with an error) until removed from disk.
            if status is None or status.state == State.END and status.error is None:
                self._load(model, version)
        with self._lock:
            serving_aspired = any(v in model.available for v in aspired)
            stale = [v for v in model.available if v not in aspired]
            forgotten = [
                v
                for v, s in model.statuses.items()
                if v not in aspired and v not in model.available and s.error is not None
            ]
        if serving_aspired:
            for version in stale:
                self._unload(model, version)
        elif stale and aspired:
            logger.warning(
                "%s: keeping versions %s while no aspired version %s is available", source.name, stale, aspired
            )
        with self._lock:
            for version in forgotten:  # a failed version removed from disk may come back and be retried
                if version not in versions_on_disk(source.base_path):
                    del model.statuses[version]

    def _load(self, model: _Model, version: int) -> None:
        name = model.source.name
        path = model.source.base_path / str(version)
        status = VersionStatus(version, State.LOADING)
        with self._lock:
            model.statuses[version] = status
        started = time.perf_counter()
        servable = ServableVersion(
            name, version, path, batching=self.batching, custom_op_libraries=self.custom_op_libraries
        )
        try:
            servable.load()
            warmed = replay_warmup(servable, read_warmup_requests(path))
        except ServingError as error:
            self._fail(model, status, servable, ServingError(error.code, f"{name}/{version}: {error.message}"))
            return
        except Exception as error:  # a bad SavedModel must not take the server down
            self._fail(model, status, servable, ServingError(grpc.StatusCode.UNKNOWN, f"{name}/{version}: {error}"))
            return
        with self._lock:
            model.available = {**model.available, version: servable}
            status.state = State.AVAILABLE
        logger.info(
            "%s/%d available (signatures %s, %d warm-up requests, %.1f s)",
            name,
            version,
            sorted(servable.signatures),
            warmed,
            time.perf_counter() - started,
        )

    def _fail(self, model: _Model, status: VersionStatus, servable: ServableVersion, error: ServingError) -> None:
        servable.close()
        with self._lock:
            status.state = State.END
            status.error = error
        logger.error("failed to load %s", error.message)

    def _unload(self, model: _Model, version: int) -> None:
        with self._lock:
            servable = model.available.get(version)
            if servable is None:
                return
            model.statuses[version].state = State.UNLOADING
            model.available = {v: s for v, s in model.available.items() if v != version}
        servable.close()
        with self._lock:
            model.statuses[version].state = State.END
        logger.info("%s/%d unloaded", model.source.name, version)

    def _unload_model(self, name: str) -> None:
        with self._lock:
            model = self._models.get(name)
        if model is None:
            return
        for version in list(model.available):
            self._unload(model, version)
        with self._lock:
            del self._models[name]
        logger.info("model %s removed from the config: unloaded", name)

    # --- requests -------------------------------------------------------------------

    def model_names(self) -> list[str]:
        with self._lock:
            return sorted(self._models)

    def _model(self, name: str, request: str) -> _Model:
        if not name:
            raise invalid_argument("Missing model name in request.")
        with self._lock:
            model = self._models.get(name)
        if model is None:
            raise not_found(f"Servable not found for request: {request}; the server has models {self.model_names()}.")
        return model

    def resolve_version(self, name: str, version: int | None = None, label: str | None = None) -> int | None:
        """The version a request means: `version`, the version of `label`, or None (latest)."""
        if version is not None and label:
            raise invalid_argument(
                f"Both model version ({version}) and model version label ({label}) cannot be supplied."
            )
        if not label:
            return version
        model = self._model(name, f"Label({name}, {label})")
        labels = model.source.label_map
        if label not in labels:
            raise not_found(
                f"Unrecognized servable version label: {label}; model {name!r} has labels {sorted(labels)}."
            )
        return labels[label]

    def servable(self, name: str, version: int | None = None, label: str | None = None) -> ServableVersion:
        """The loaded version a request should use (NOT_FOUND if there is none)."""
        version = self.resolve_version(name, version, label)
        request = f"Latest({name})" if version is None else f"Specific({name}, {version})"
        available = self._model(name, request).available  # a snapshot: swaps do not affect it
        if version is None:
            if not available:
                raise not_found(f"Servable not found for request: {request}; no version of {name!r} is available.")
            return available[max(available)]
        if version not in available:
            raise not_found(f"Servable not found for request: {request}; available versions: {sorted(available)}.")
        return available[version]

    def version_statuses(self, name: str, version: int | None = None, label: str | None = None) -> list[VersionStatus]:
        version = self.resolve_version(name, version, label)
        model = self._model(name, f"Latest({name})")
        with self._lock:
            statuses = sorted((dataclasses.replace(s) for s in model.statuses.values()), key=lambda s: s.version)
        if version is not None:
            statuses = [s for s in statuses if s.version == version]
            if not statuses:
                raise not_found(f"Could not find version {version} of model {name}.")
        if not statuses:
            reason = model.source_error or f"no versions under {model.source.base_path}"
            raise not_found(f"Could not find any versions of model {name} ({reason}).")
        return statuses
