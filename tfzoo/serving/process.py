"""`tfzoo serve` in a process of its own, as production runs it: started, awaited, stopped.

For benchmarks and tests that must not share the client's interpreter (the GIL, the
TensorFlow runtime) with the server.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

# The line `tfzoo serve` prints once every model is loaded and the ports are open.
READY_PREFIX = "tfzoo serve: gRPC"
_READY = re.compile(r"^tfzoo serve: gRPC (?P<grpc>\S+?)(?:, REST (?P<rest>\S+))?; models")


class ServerProcess:
    """A running `python -m tfzoo.cli serve ARGS...`; a context manager that stops it.

    Attributes:
      process: the `subprocess.Popen`.
      grpc_target: `host:port` of its gRPC API.
      rest_url: `http(s)://host:port` of its REST API, or None without one.
      lines: its output so far (stdout and stderr), for error messages.
    """

    def __init__(self, serve_args: Sequence[str], *, timeout: float = 300.0, env: dict[str, str] | None = None):
        """Starts the server and waits until it serves.

        Args:
          serve_args: arguments after `tfzoo serve` (`--model-base-path`, `--port 0`, ...).
          timeout: seconds to wait for the ready line.
          env: extra environment variables.

        Raises:
          RuntimeError: it exited or did not get ready in time; the message holds its output.
        """
        source_root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (source_root, os.environ.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tfzoo.cli", "serve", *serve_args],
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": path, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.grpc_target = ""
        self.rest_url: str | None = None
        ready = threading.Event()

        def read() -> None:
            for line in self.process.stdout:
                self.lines.append(line)
                match = _READY.match(line)
                if match:
                    self.grpc_target, self.rest_url = match["grpc"], match["rest"]
                    ready.set()
            ready.set()  # the process ended

        threading.Thread(target=read, name="tfzoo-serve-output", daemon=True).start()
        if not ready.wait(timeout) or not self.grpc_target:
            self.stop()
            raise RuntimeError(f"tfzoo serve {' '.join(serve_args)} did not start:\n" + "".join(self.lines))

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (a graceful stop), then SIGKILL after `timeout` seconds; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        return self.process.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
