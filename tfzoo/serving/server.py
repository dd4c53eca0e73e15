"""`ModelServer`: the gRPC and REST endpoints over one `ModelManager`."""

from __future__ import annotations

import dataclasses
import logging
import signal
import ssl
import threading
from collections.abc import Sequence
from concurrent import futures
from pathlib import Path

import grpc

from tfzoo.serving.batching import BatchingOptions
from tfzoo.serving.config import ModelSources
from tfzoo.serving.grpc_service import add_services
from tfzoo.serving.manager import ModelManager
from tfzoo.serving.rest import RestServer
from tfzoo.serving.service import ServingCore
from tfzoo.serving.tensors import DEFAULT_MAX_MESSAGE_BYTES

logger = logging.getLogger("tfzoo.serving")


@dataclasses.dataclass
class ServerOptions:
    """How `ModelServer` runs.

    Attributes:
      model_base_path: directory of models (`<name>/<version>/`); its `models.config`, if
        present, says which models and versions to serve, else every model directory is
        served at its latest version.
      model_config_file: a `ModelServerConfig` text file (overrides the one in the base path).
      host: interface to bind; loopback by default, so nothing is exposed by accident.
      port: gRPC port (0: any free port).
      rest_port: REST port (0: any free port; None: no REST API).
      poll_seconds: how often the file system and config are polled for changes (0: never).
      num_threads: worker threads of each endpoint (concurrent requests).
      max_message_bytes: largest request accepted (gRPC: RESOURCE_EXHAUSTED; REST: 413).
      batching: server-side batching (None: off).
      tls_cert_file, tls_key_file: serve both endpoints over TLS with this certificate chain
        and private key (PEM).
      custom_op_libraries: op libraries (.so) to register when a graph needs unknown ops
        (ScaNN's are found automatically).
    """

    model_base_path: str | Path | None = None
    model_config_file: str | Path | None = None
    host: str = "127.0.0.1"
    port: int = 8500
    rest_port: int | None = 8501
    poll_seconds: float = 1.0
    num_threads: int = 16
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    batching: BatchingOptions | None = None
    tls_cert_file: str | Path | None = None
    tls_key_file: str | Path | None = None
    custom_op_libraries: Sequence[str | Path] = ()

    def __post_init__(self):
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("TLS needs both a certificate file and a key file.")
        if self.num_threads < 1:
            raise ValueError(f"`num_threads` must be >= 1. Received: num_threads={self.num_threads}")
        if self.max_message_bytes < 1:
            raise ValueError(f"`max_message_bytes` must be >= 1. Received: max_message_bytes={self.max_message_bytes}")


class ModelServer:
    """Loads the models, then answers TF Serving's gRPC API (and REST API) until stopped.

    ```python
    with ModelServer(ServerOptions(model_base_path="savedmodels", port=0, rest_port=0)) as server:
        client = Client(server.grpc_target)
    ```
    `start()` returns once the models are loaded and both endpoints listen.
    """

    def __init__(self, options: ServerOptions):
        self.options = options
        self.manager = ModelManager(
            ModelSources(options.model_base_path, options.model_config_file),
            poll_seconds=options.poll_seconds,
            batching=options.batching,
            custom_op_libraries=options.custom_op_libraries,
        )
        self.core = ServingCore(self.manager)
        self._grpc: grpc.Server | None = None
        self._rest: RestServer | None = None
        self.grpc_port: int | None = None
        self.rest_port: int | None = None
        self._stopped = threading.Event()

    @property
    def grpc_target(self) -> str:
        return f"{self.options.host}:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        scheme = "https" if self.options.tls_cert_file else "http"
        return f"{scheme}://{self.options.host}:{self.rest_port}"

    @property
    def tls(self) -> bool:
        return self.options.tls_cert_file is not None

    def start(self) -> ModelServer:
        options = self.options
        self.manager.start()
        message_options = [
            ("grpc.max_receive_message_length", options.max_message_bytes),
            ("grpc.max_send_message_length", options.max_message_bytes),
            # Without this, a second server on a taken port would bind too and split the traffic.
            ("grpc.so_reuseport", 0),
        ]
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=options.num_threads, thread_name_prefix="tfzoo-grpc"),
            options=message_options,
        )
        add_services(self._grpc, self.core)
        address = f"{options.host}:{options.port}"
        try:
            if self.tls:
                credentials = grpc.ssl_server_credentials(
                    [(Path(options.tls_key_file).read_bytes(), Path(options.tls_cert_file).read_bytes())]
                )
                self.grpc_port = self._grpc.add_secure_port(address, credentials)
            else:
                self.grpc_port = self._grpc.add_insecure_port(address)
        except RuntimeError:  # grpcio raises where older versions returned port 0
            self.grpc_port = 0
        if self.grpc_port == 0:
            self.manager.stop()
            raise OSError(f"Cannot listen for gRPC on {address} (in use?).")
        self._grpc.start()
        if options.rest_port is not None:
            context = None
            if self.tls:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(options.tls_cert_file, options.tls_key_file)
            try:
                self._rest = RestServer(
                    self.core,
                    options.host,
                    options.rest_port,
                    max_body_bytes=options.max_message_bytes,
                    ssl_context=context,
                )
            except OSError:
                self.stop()
                raise
            self._rest.start()
            self.rest_port = self._rest.port
        logger.info(
            "serving %s on gRPC %s%s",
            self.manager.model_names(),
            self.grpc_target,
            f" and REST {self.rest_url}" if self._rest else "",
        )
        return self

    def stop(self, grace: float = 2.0) -> None:
        """Stops accepting requests, lets in-flight ones finish (up to `grace` s), unloads."""
        if self._rest is not None:
            self._rest.stop()
            self._rest = None
        if self._grpc is not None:
            self._grpc.stop(grace).wait()
            self._grpc = None
        self.manager.stop()
        self._stopped.set()

    def wait(self) -> None:
        """Blocks until `stop()`, or SIGINT / SIGTERM (then stops), when run from the main thread."""
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: threading.Thread(target=self.stop, daemon=True).start())
        while not self._stopped.wait(0.5):
            pass

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
