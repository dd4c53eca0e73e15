"""Every script in bench/ has a `--quick` mode (tiny sizes, generated or bundled data) that
runs here, in this process, so that a benchmark broken by a change fails a test instead of
the next measurement.

`make test` imports every script and runs the quick modes that cost a few seconds; the
others train or trace real models (15-60 s of CPU each, about 6 minutes together on 2
cores: more than the suite's CI budget holds) and are marked `bench_heavy`: `make
bench-check` runs every quick mode.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import tensorflow as tf

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(path.stem for path in BENCH.glob("*.py"))
# CPU seconds of each heavier quick mode, imports included, measured one at a time on
# 2 cores: a tfzoo run costs about 15 s of tracing and data at any size.
HEAVY = {
    "census_baselines": 20,
    "census_gap": 28,
    "export_time": 30,
    "grec_capacity": 25,
    "sampler_trace": 26,
    "scaling": 45,
    "serving": 30,
    "ssmtl_ablation": 51,
    "ssmtl_step": 29,
    "streaming": 30,
    "supermoe_task_weights": 26,
    "train_throughput": 64,
}

pytestmark = pytest.mark.timeout(600)


def _bench_module(script: str, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # the scripts import their siblings by name
    monkeypatch.delitem(sys.modules, script, raising=False)
    return importlib.import_module(script)


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_imports_and_offers_a_quick_mode(script, monkeypatch, capsys):
    module = _bench_module(script, monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    assert "--quick" in capsys.readouterr().out, f"bench/{script}.py has no --quick mode"


@pytest.mark.parametrize(
    "script", [pytest.param(s, marks=pytest.mark.bench_heavy) if s in HEAVY else s for s in SCRIPTS]
)
def test_quick_mode_runs_and_reports(script, tmp_path, monkeypatch, capsys):
    module = _bench_module(script, monkeypatch)
    monkeypatch.chdir(tmp_path)  # whatever a script writes by default lands here
    module.main(["--quick"])
    # The script measured something and said so, and left the process as it found it.
    assert capsys.readouterr().out.strip(), f"bench/{script}.py --quick printed nothing"
    assert tf.keras.mixed_precision.global_policy().name == "float32"
