"""The local cluster launcher, on small Python commands (no TensorFlow in the tasks)."""

import io
import sys
import time

import pytest

from tfzoo.training.launch import TIMED_OUT, Task, cluster_spec, launch, tasks_of

pytestmark = pytest.mark.timeout(240)

PRINT_TASK = (
    "import json, os; c = json.loads(os.environ['TF_CONFIG']); "
    "print(c['task']['type'], c['task']['index'], len(c['cluster']['worker']), flush=True)"
)


def test_cluster_spec_has_free_distinct_loopback_ports():
    cluster = cluster_spec(2, 2)
    addresses = cluster["worker"] + cluster["chief"] + cluster["ps"]
    assert len(set(addresses)) == 5
    assert all(a.startswith("127.0.0.1:") for a in addresses)
    assert tasks_of(cluster) == [Task("chief", 0), Task("worker", 0), Task("worker", 1), Task("ps", 0), Task("ps", 1)]
    assert "chief" not in cluster_spec(2) and "ps" not in cluster_spec(2)


def test_every_task_gets_its_tf_config_and_prefixed_output():
    out = io.StringIO()
    assert launch([sys.executable, "-c", PRINT_TASK], workers=3, sink=out, timeout=60) == 0
    lines = sorted(out.getvalue().splitlines())
    assert lines == ["[worker0] worker 0 3", "[worker1] worker 1 3", "[worker2] worker 2 3"]


def test_a_failing_task_stops_the_others_and_fails_the_job():
    # worker 1 fails at once; worker 0 would run for 60 s: the launcher must stop it.
    script = (
        "import json, os, sys, time; i = json.loads(os.environ['TF_CONFIG'])['task']['index']; "
        "sys.exit(3) if i == 1 else time.sleep(60)"
    )
    started = time.monotonic()
    assert launch([sys.executable, "-c", script], workers=2, sink=io.StringIO(), timeout=60) == 3
    assert time.monotonic() - started < 30


def test_restarts_the_cluster_after_a_failure(tmp_path):
    # Fails on the first attempt only (a marker file records it), like a recovered job.
    marker = tmp_path / "attempted"
    script = (
        f"import pathlib, sys; m = pathlib.Path({str(marker)!r}); "
        "first = not m.exists(); m.touch(); sys.exit(1 if first else 0)"
    )
    assert launch([sys.executable, "-c", script], workers=1, sink=io.StringIO(), timeout=60) == 1
    marker.unlink()
    assert launch([sys.executable, "-c", script], workers=1, max_restarts=1, sink=io.StringIO(), timeout=60) == 0


def test_parameter_server_jobs_end_with_the_chief():
    # workers and ps serve forever; the job ends (successfully) when the chief exits.
    script = (
        "import json, os, time; t = json.loads(os.environ['TF_CONFIG'])['task']['type']; "
        "print('done', flush=True) if t == 'chief' else time.sleep(120)"
    )
    out = io.StringIO()
    assert launch([sys.executable, "-c", script], workers=2, ps=1, sink=out, timeout=60) == 0
    assert "[chief0] done" in out.getvalue()


def test_timeout_stops_every_task():
    started = time.monotonic()
    assert (
        launch([sys.executable, "-c", "import time; time.sleep(60)"], workers=2, sink=io.StringIO(), timeout=2)
        == TIMED_OUT
    )
    assert time.monotonic() - started < 20


def test_a_killed_task_reads_as_128_plus_signal():
    script = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    assert launch([sys.executable, "-c", script], workers=1, sink=io.StringIO(), timeout=60) == 137


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="Received: workers=0"):
        cluster_spec(0)
    with pytest.raises(ValueError, match="command"):
        launch([], workers=1)
    with pytest.raises(ValueError, match="Received: max_restarts=-1"):
        launch(["true"], workers=1, max_restarts=-1)
