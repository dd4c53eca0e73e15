"""`tfzoo --version`, `tfzoo models` and `tfzoo datasets`: what exists, one line each."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata

import pytest

import tfzoo
from tfzoo import cli
from tfzoo.data.data_config import KINDS
from tfzoo.data.registry import DATASET_DESCRIPTIONS, DATASETS
from tfzoo.training.registry import TASKS, task_for


def test_version_names_the_zoo_and_its_stack(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and line.startswith(f"tfzoo {tfzoo.__version__} (")
    for package in cli.STACK:
        assert f"{package} {metadata.version(package)}" in line


def test_models_lists_every_model_with_its_summary_and_data(capsys):
    assert cli.main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines if not line.startswith(" ")]
    assert names == sorted(TASKS)
    for name in TASKS:
        task = task_for(name)
        at = next(i for i, line in enumerate(lines) if line.startswith(f"{name} "))
        assert lines[at].split(None, 1)[1] == task.model_class.__doc__.strip().splitlines()[0]
        assert f"datasets: {', '.join(task.accepted_datasets)}" in lines[at + 1]
        assert f"data configs: {', '.join(task.data_config_kinds)}" in lines[at + 1]
    assert "tfzoo pretrain supermoe;" in lines[lines.index(next(x for x in lines if x.startswith("supermoe_mcp"))) + 1]


def test_datasets_lists_every_dataset_and_the_data_config_kinds(capsys):
    assert sorted(DATASET_DESCRIPTIONS) == sorted(DATASETS)
    assert cli.main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name, description in DATASET_DESCRIPTIONS.items():
        assert f"{name:<20} {description}\n" in out
    assert f"--data-config FILE, of kind {', '.join(KINDS)}" in out


def test_tensorflow_is_quiet_unless_asked(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert cli.quiet_tensorflow(["train", "mmoe"]) == ["train", "mmoe"]
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == cli.QUIET_TF_CPP_LOG_LEVEL
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    # `--verbose` leaves TensorFlow's default; a `--verbose` after `--` is the launched command's.
    assert cli.quiet_tensorflow(["--verbose", "launch", "--", "tfzoo", "--verbose"]) == [
        "launch",
        "--",
        "tfzoo",
        "--verbose",
    ]
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")  # the user's own level is kept
    cli.quiet_tensorflow(["models"])
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"


def test_a_quiet_command_prints_no_tensorflow_log_line():
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "tfzoo.cli", "models"], capture_output=True, text=True, env=environment, timeout=300
    )
    assert result.returncode == 0 and "grec" in result.stdout
    # TensorFlow's C++ lines: "2026-01-01 10:00:00.123456: E path.cc:51] ..." or "W0000 00:00:... file.cc:1] ...".
    native = [line for line in result.stderr.splitlines() if re.match(r"^(\S+ \S+: [IWEF] |[IWEF]\d{4} )", line)]
    assert not native, native
