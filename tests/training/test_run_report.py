"""What a finished run reads as: its report (`tfzoo report`: figures and `report.md`) and its
summary line (the closing table of `make demo`, `tfzoo.training.summary`)."""

import json
import re

import matplotlib.image
import numpy as np
import pytest

from tests.serving.helpers import TINY_OPTIONS
from tfzoo.cli import main
from tfzoo.evaluation.figures import training_curves as write_curves
from tfzoo.training import RunConfig, load_run, train
from tfzoo.training.run_report import expert_usage, write_report
from tfzoo.training.summary import SummaryRow, append_summary, format_summary, read_summary, run_summary


def image_size(path):
    """(height, width) of a PNG, read back: the file is a real image."""
    return matplotlib.image.imread(path).shape[:2]


@pytest.fixture(scope="module")
def grec_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("report") / "grec"
    options = {**TINY_OPTIONS["grec"], "routing": "task", "flow_feature": "cat_1"}
    config = RunConfig(model="grec", dataset="synthetic", epochs=2, batch_size=2048, model_options=options)
    metrics = train(config, directory, verbose=0, report=True)
    return directory, metrics


def series(axis) -> dict[str, np.ndarray]:
    """{label: y values} of the lines plotted in `axis` (markers of the best epoch left out)."""
    return {
        line.get_label(): np.asarray(line.get_ydata(), float)
        for line in axis.get_lines()
        if not line.get_label().startswith(("best epoch", "_"))
    }


def test_training_writes_curves_results_and_expert_usage(grec_run):
    directory, metrics = grec_run
    report = directory / "report"
    text = (report / "report.md").read_text()
    for figure in ("training_curves.png", "expert_usage.png"):
        assert f"]({figure})" in text
        height, width = image_size(report / figure)
        assert height > 200 and width > 300
    assert "Best epoch" in text and f"by `{metrics['validation_metric']}`" in text
    # The results table holds the model and every baseline the run reported.
    for name in ["grec", *metrics["baselines"]["test"]]:
        assert f"{name} (test)" in text
    assert "Recall@K" not in text  # a ranker has no retrieval figure


def test_the_curves_plot_every_loss_term_and_metric_of_the_history(tmp_path):
    history = {
        "loss": [1.0, 0.8, 0.7],
        "ctr_loss": [0.6, 0.5, 0.45],
        "ctr_auc": [0.6, 0.7, 0.72],
        "moe_max_load": [1.5, 1.2, 1.1],
        "val_loss": [0.9, 0.85, 0.86],
        "val_ctr_loss": [0.55, 0.5, 0.51],
        "val_ctr_auc": [0.65, 0.7, 0.69],
        "val_mean_auc": [0.65, 0.7, 0.69],
        "epoch_seconds": [3.0, 2.0, 2.0],
    }
    figure = write_curves(history, tmp_path / "curves.png", best_epoch=2)
    losses, metrics, statistics = figure.axes[:3]
    assert len(figure.axes) == 3 and image_size(tmp_path / "curves.png")[1] > 900
    assert set(series(losses)) == {"loss", "ctr_loss"}  # training solid; validation dashed, unlabelled
    solid = [line for line in losses.get_lines() if line.get_linestyle() == "-"]
    dashed = [line for line in losses.get_lines() if line.get_linestyle() == "--"]
    assert len(solid) == len(dashed) == 2
    np.testing.assert_allclose(sorted(line.get_ydata()[0] for line in dashed), [0.55, 0.9])
    assert set(series(metrics)) == {"ctr_auc", "mean_auc"}  # validation solid
    np.testing.assert_allclose(series(metrics)["mean_auc"], history["val_mean_auc"])
    assert list(series(statistics)) == ["moe_max_load"]  # epoch_seconds is not a curve of the model
    assert all(line.get_xdata().tolist() == [1, 2, 3] for line in losses.get_lines()[:4])
    assert any(line.get_label() == "best epoch (2)" for line in metrics.get_lines())


def test_the_command_line_writes_the_report_of_a_run(grec_run, capsys):
    directory, _ = grec_run
    (directory / "report" / "expert_usage.png").unlink()
    assert main(["report", "--run", str(directory)]) == 0
    assert capsys.readouterr().out.strip() == f"report written to {directory / 'report' / 'report.md'}"
    assert image_size(directory / "report" / "expert_usage.png")[0] > 200


def test_task_routing_uses_the_same_top_k_experts_for_every_row_of_a_task(grec_run):
    directory, _ = grec_run
    run = load_run(directory)
    usage = expert_usage(run)
    model = run.model
    flows = dict(model.flows())
    assert usage and set(usage) <= {f"{flow}/{task}" for flow in [*flows.values()] for task in model.tasks} | {
        f"oov{f}/{task}" for f in range(model.num_flows) for task in model.tasks
    }
    for shares in usage.values():
        # Task routing does not look at the row: k experts at 1 / k each, the others unused.
        np.testing.assert_allclose(np.sort(shares)[::-1], [0.5, 0.5, 0.0, 0.0], atol=1e-6)
    # The heat map shows these shares: one row per task, one column per expert.
    axis = write_report(directory, run=run).figures["expert_usage.png"].axes[0]
    np.testing.assert_allclose(axis.images[0].get_array(), np.stack(list(usage.values())), atol=1e-6)
    assert [tick.get_text() for tick in axis.get_yticklabels()] == list(usage)


@pytest.fixture(scope="module")
def mmoe_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mmoe") / "run"
    config = RunConfig(model="mmoe", dataset="synthetic", epochs=1, batch_size=2048, model_options=TINY_OPTIONS["mmoe"])
    return directory, train(config, directory, verbose=0)


def test_multi_gate_mixtures_are_mapped_per_task(mmoe_run):
    run = load_run(mmoe_run[0])
    usage = expert_usage(run)
    assert list(usage) == list(run.model.tasks)  # one gate per task
    for shares in usage.values():
        assert shares.shape == (3,) and shares.sum() == pytest.approx(1.0, abs=1e-5) and (shares > 0).all()
    # Different gates, different mixtures (an untrained gate would be near uniform for all).
    rows = np.stack(list(usage.values()))
    assert np.abs(rows - rows.mean(axis=0)).max() > 1e-3


def test_a_retrieval_report_plots_recall_at_k_and_the_index_sweep(tmp_path):
    # A run's and an export's files as `tfzoo train ssmtl` and `tfzoo export --recall-latency` write them.
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"run": {"model": "ssmtl", "dataset": "twitch"}}))
    report = {s: {"recall@10": 0.1, "recall@50": 0.3, "recall@100": 0.4} for s in ("all", "low_degree")}
    heuristic = {s: {"recall@10": 0.2, "recall@50": 0.35, "recall@100": 0.45} for s in ("all", "low_degree")}
    metrics = {
        "split": "per-user friendship split",
        "best_epoch": 2,
        "epochs_trained": 3,
        "validation_metric": "val_recall@50",
        "test": report,
        "baselines": {"test": {"adamic_adar": heuristic}},
    }
    (run / "metrics.json").write_text(json.dumps(metrics))
    history = {"loss": [3.0, 2.0, 1.9], "retrieval_loss": [2.9, 1.9, 1.8], "val_recall@50": [0.2, 0.3, 0.29]}
    (run / "history.json").write_text(json.dumps(history))
    export = tmp_path / "savedmodels" / "ssmtl_twitch" / "4"
    (export / "assets.extra").mkdir(parents=True)
    sweep = {
        "queries": 100,
        "scann": [
            {"leaves_to_search": n, "recall": r, "latency_ms": ms} for n, r, ms in [(1, 0.6, 0.2), (5, 0.95, 0.6)]
        ],
        "brute_force_latency_ms": 3.0,
    }
    (export / "assets.extra" / "ann_index.json").write_text(json.dumps({"kind": "scann", "recall_latency": sweep}))

    written = write_report(run, exports=[export], with_model=False)
    text = (run / "report" / "report.md").read_text()
    for figure in ("training_curves.png", "recall_at_k.png", "ann_ssmtl_twitch_4.png"):
        assert f"]({figure})" in text and image_size(run / "report" / figure)[0] > 200
    assert set(written.figures) == {"training_curves.png", "recall_at_k.png", "ann_ssmtl_twitch_4.png"}
    assert "Best epoch 2 of 3 by `val_recall@50`" in text
    assert "expert" not in text.lower()  # no mixture in a friend-retrieval model
    # Recall@K: a panel per slice, a line per scorer, the reports' values at K = 10, 50, 100.
    everyone, low = written.figures["recall_at_k.png"].axes
    assert (everyone.get_title(), low.get_title()) == ("all users", "low degree users")
    assert set(series(everyone)) == {"ssmtl", "adamic_adar"}
    np.testing.assert_allclose(series(low)["adamic_adar"], [0.2, 0.35, 0.45])
    assert everyone.get_lines()[0].get_xdata().tolist() == [10, 50, 100]
    # The index sweep: recall against latency, and exact search at recall 1.
    (sweep_axis,) = written.figures["ann_ssmtl_twitch_4.png"].axes
    lines = {line.get_label(): line for line in sweep_axis.get_lines()}
    assert lines["ScaNN (leaves searched)"].get_xdata().tolist() == [0.2, 0.6]
    assert lines["ScaNN (leaves searched)"].get_ydata().tolist() == [0.6, 0.95]
    assert lines["exact (brute force)"].get_xdata().tolist() == [3.0]


def test_a_report_needs_a_finished_run(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"run": {"model": "mmoe", "dataset": "census"}}))
    with pytest.raises(FileNotFoundError, match="metrics.json not found: the run in .* has not finished"):
        write_report(tmp_path, with_model=False)


def test_a_runs_summary_line_holds_its_mean_test_auc_beside_its_best_baseline(mmoe_run, tmp_path):
    directory, metrics = mmoe_run
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


def test_a_retrieval_summary_line_names_the_served_fusion_and_its_recall(tmp_path):
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


def test_a_summary_of_an_unfinished_run_names_it(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"run": {"model": "mmoe", "dataset": "census"}}))
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}/metrics.json not found: the run in .* has not finished"):
        run_summary(tmp_path)
