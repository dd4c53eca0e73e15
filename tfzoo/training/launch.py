"""A local cluster: one command started as N workers (+ parameter servers and a chief).

`tfzoo launch --workers 2 [--ps 2] -- tfzoo train ... --strategy multi_worker` starts every
task as a process on this machine, each with its `TF_CONFIG` (cluster on free 127.0.0.1
ports, its own task), prefixes each line of their output with the task's name, and waits:

- without parameter servers (multi_worker), the job succeeds when every worker exits 0;
- with parameter servers, the `chief` runs the training loop and the job ends with it;
  the `worker` and `ps` tasks serve until they are stopped.

A task that fails fails the job: the others are stopped (a synchronous worker would
otherwise wait for its dead peer forever), and with `max_restarts` the whole cluster is
started again, on fresh ports; training code that backs up its state (`tfzoo train`
does) continues from the last backup. `timeout` bounds the whole job.

Only the standard library is used here: the launcher never loads TensorFlow itself.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TextIO

logger = logging.getLogger("tfzoo.launch")

TIMED_OUT = 124


@dataclasses.dataclass(frozen=True)
class Task:
    type: str
    index: int

    @property
    def name(self) -> str:
        return f"{self.type}{self.index}"


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports free on `host` now (the sockets are held until all are picked)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def cluster_spec(workers: int, ps: int = 0, *, host: str = "127.0.0.1") -> dict[str, list[str]]:
    """A `TF_CONFIG` cluster on free ports: `worker`s, plus a `chief` and `ps` tasks with `ps` > 0."""
    if workers < 1:
        raise ValueError(f"`workers` must be >= 1. Received: workers={workers}")
    if ps < 0:
        raise ValueError(f"`ps` must be >= 0. Received: ps={ps}")
    ports = iter(free_ports(workers + ps + (1 if ps else 0), host))
    cluster = {"worker": [f"{host}:{next(ports)}" for _ in range(workers)]}
    if ps:
        cluster["chief"] = [f"{host}:{next(ports)}"]
        cluster["ps"] = [f"{host}:{next(ports)}" for _ in range(ps)]
    return cluster


def tasks_of(cluster: dict[str, list[str]]) -> list[Task]:
    return [Task(kind, i) for kind in ("chief", "worker", "ps") for i in range(len(cluster.get(kind, [])))]


def _pump(stream, prefix: str, sink: TextIO, lock: threading.Lock) -> None:
    for line in iter(stream.readline, ""):
        with lock:
            sink.write(f"[{prefix}] {line}" if line.endswith("\n") else f"[{prefix}] {line}\n")
            sink.flush()
    stream.close()


class LocalCluster:
    """The processes of one attempt of a launched job."""

    def __init__(self, command: Sequence[str], cluster: dict[str, list[str]], *, sink: TextIO, env: dict | None = None):
        self.cluster = cluster
        self.processes: dict[Task, subprocess.Popen] = {}
        self._threads: list[threading.Thread] = []
        lock = threading.Lock()
        for task in tasks_of(cluster):
            task_env = dict(os.environ if env is None else env)
            task_env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": task.type, "index": task.index}})
            process = subprocess.Popen(
                list(command),
                env=task_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                start_new_session=True,
            )
            self.processes[task] = process
            thread = threading.Thread(target=_pump, args=(process.stdout, task.name, sink, lock), daemon=True)
            thread.start()
            self._threads.append(thread)

    @property
    def coordinated(self) -> bool:
        """Parameter-server jobs: the chief's exit ends the job."""
        return "ps" in self.cluster

    def poll(self) -> tuple[bool, Task | None]:
        """(finished, failed task): checks every process once."""
        for task, process in self.processes.items():
            code = process.poll()
            if code not in (None, 0):
                return True, task
        if self.coordinated:
            chief = self.processes[Task("chief", 0)]
            return chief.poll() is not None, None
        return all(p.poll() is not None for p in self.processes.values()), None

    def stop(self, grace_seconds: float = 5.0) -> None:
        """Stops every process still running (SIGTERM, then SIGKILL) and drains their output."""
        for process in self.processes.values():
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        for process in self.processes.values():
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
        for thread in self._threads:
            thread.join(timeout=5)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def launch(
    command: Sequence[str],
    *,
    workers: int,
    ps: int = 0,
    timeout: float = 3600.0,
    max_restarts: int = 0,
    sink: TextIO | None = None,
    on_start: Callable[[LocalCluster], None] | None = None,
    poll_seconds: float = 0.2,
) -> int:
    """Runs `command` as a local cluster; returns 0 on success, else the failing task's code.

    `on_start(cluster)` is called after each attempt's processes start (tests use it to
    kill a task on purpose). Returns `TIMED_OUT` (124) when `timeout` seconds pass.
    """
    if not command:
        raise ValueError("`command` is empty: give the command to launch after `--`.")
    if max_restarts < 0:
        raise ValueError(f"`max_restarts` must be >= 0. Received: max_restarts={max_restarts}")
    sink = sink or sys.stdout
    deadline = time.monotonic() + timeout
    for attempt in range(max_restarts + 1):
        cluster = LocalCluster(command, cluster_spec(workers, ps), sink=sink)
        logger.info("attempt %d: started %s", attempt + 1, ", ".join(t.name for t in cluster.processes))
        if on_start is not None:
            on_start(cluster)
        failed = None
        try:
            while True:
                finished, failed = cluster.poll()
                if finished:
                    break
                if time.monotonic() > deadline:
                    logger.error("timed out after %.0f s; stopping every task", timeout)
                    return TIMED_OUT
                time.sleep(poll_seconds)
        finally:
            cluster.stop()
        if failed is None:
            return 0
        code = cluster.processes[failed].returncode
        logger.error("%s exited with code %d; stopped the other tasks", failed.name, code)
        if attempt == max_restarts:
            return code if code > 0 else 128 - code  # a signal -N reads as 128+N, like a shell
        logger.info("restarting the cluster (%d restart(s) left)", max_restarts - attempt)
    raise AssertionError("unreachable")
