import json
import os
from pathlib import Path

from tfzoo.evaluation.report import reproducing_command

REPO = Path(__file__).resolve().parents[2]


def test_recorded_commands_name_no_machine_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    command = reproducing_command(
        str(tmp_path / "bench" / "ssmtl_ablation.py"),
        ["--data", "../shared/data", "--out", str(tmp_path / "docs" / "rows.jsonl"), f"--keep-runs={tmp_path}/runs"],
    )
    assert command == "python bench/ssmtl_ablation.py --data ../shared/data --out docs/rows.jsonl --keep-runs=runs"
    outside = reproducing_command("bench/x.py", ["--data", str(tmp_path.parent / "data")])
    assert outside == "python bench/x.py --data ../data" and os.sep + "tmp" not in outside


def test_committed_results_record_relative_commands():
    # Every results row says how it was made, runnable from the repository root anywhere.
    for path in sorted((REPO / "docs" / "results").glob("*.jsonl")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            command = json.loads(line).get("command", "")
            absolute = [token for token in command.split() if os.path.isabs(token.rpartition("=")[2])]
            assert not absolute, f"{path.name}:{number} records absolute paths {absolute}"
