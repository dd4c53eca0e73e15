"""The closing summary of `make demo` and the recipes, read from finished runs."""

import json
import re

import numpy as np
import pytest

from tfzoo.training import RunConfig, train
from tfzoo.training.summary import SummaryRow, append_summary, format_summary, read_summary, run_summary


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("summary") / "run"
    config = RunConfig(
        model="mmoe",
        dataset="synthetic",
        epochs=1,
        batch_size=2048,
        model_options={"num_experts": 2, "expert_units": [8], "tower_units": [4]},
    )
    return directory, train(config, directory, verbose=0)


def test_a_runs_line_holds_its_mean_test_auc_beside_its_best_baseline(tiny_run, tmp_path):
    directory, metrics = tiny_run
    row = run_summary(directory, export="savedmodels/mmoe_synthetic/3", checks={"fresh process": True}, seconds=12.4)
    assert (row.model, row.dataset) == ("mmoe", "synthetic")
    assert row.metric == f"test AUC (mean of {len(metrics['test'])} tasks)"
    assert row.value == pytest.approx(np.mean([m["auc"] for m in metrics["test"].values()]))
    baselines = {name: np.mean([m["auc"] for m in r.values()]) for name, r in metrics["baselines"]["test"].items()}
    assert len(baselines) >= 2  # logistic regression and boosted trees at least
    assert row.baseline == max(baselines, key=baselines.get)
    assert row.baseline_value == pytest.approx(max(baselines.values()))

    # Recipes in their own processes hand their lines over as JSON lines.
    file = tmp_path / "summary.jsonl"
    append_summary(file, row)
    append_summary(file, row.with_check("gRPC", False))
    assert read_summary(file) == [row, row.with_check("gRPC", False)]

    lines = format_summary(read_summary(file)).splitlines()
    assert lines[0].split()[:4] == ["model", "dataset", "test", "metric"] and set(lines[1]) <= {"-", " "}
    assert len(lines) == 4
    cells = lines[2].split("  ")
    lead = f"{row.value - row.baseline_value:+.4f}"
    for expected in ("mmoe", f"{row.value:.4f}", row.baseline, lead, "savedmodels/mmoe_synthetic/3", "12 s"):
        assert expected in [c.strip() for c in cells], (expected, cells)
    assert re.search(r"  fresh process ok +12 s$", lines[2]), lines[2]
    assert "fresh process ok, gRPC FAILED" in lines[3]


def test_a_retrieval_line_names_the_served_fusion_and_its_recall(tmp_path):
    # The run's files as `tfzoo train ssmtl` writes them (only the keys a summary reads).
    config = {"run": {"model": "ssmtl", "dataset": "twitch", "data_config": None}}
    report = {"all": {"recall@50": 0.30}, "low_degree": {"recall@50": 0.20}}
    fused = {"heuristic": "adamic_adar", "weight": 8.0, "popularity_weight": 0.0, "test": {"all": {"recall@50": 0.52}}}
    baselines = {"popularity": {"all": {"recall@50": 0.17}}, "adamic_adar": {"all": {"recall@50": 0.48}}}
    metrics = {"test": report, "fused": fused, "baselines": {"test": baselines}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))

    row = run_summary(tmp_path)
    assert row == SummaryRow(
        model="ssmtl + 8 x log(1 + adamic_adar) (served)",
        dataset="twitch",
        metric="test Recall@50 (all users)",
        value=0.52,
        baseline="adamic_adar",
        baseline_value=0.48,
    )
    line = format_summary([row]).splitlines()[2]
    assert re.search(r"  0\.5200  adamic_adar +0\.4800  \+0\.0400  - +- +-$", line), line  # no export, checks, time


def test_an_unfinished_run_is_named(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"run": {"model": "mmoe", "dataset": "census"}}))
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}/metrics.json not found: the run in .* has not finished"):
        run_summary(tmp_path)
