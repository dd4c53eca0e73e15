"""The figures of docs/benchmarks.md plot the numbers of the tables beside them."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
import doc_figures  # noqa: E402 (a bench script, imported by its path)

DOC = """# Title

## Section A

| model | income AUC | income AP |
|---|---|---|
| logistic regression | 0.9435 | 0.6017 |
| MMoE | 0.9485 +/- 0.0008 | 0.6301 +/- 0.0041 |

### Sub

| a | b |
| ---: | --- |
| 1,234 | **0.96** |
"""


def test_tables_are_read_with_the_headings_they_sit_under():
    first, second = doc_figures.markdown_tables(DOC)
    assert first.headings == ("Title", "Section A") and first.line == 5
    assert first.column("income AUC") == ["0.9435", "0.9485 +/- 0.0008"]
    assert second.headings == ("Title", "Section A", "Sub")
    assert [doc_figures.number(c) for c in second.rows[0]] == [1234.0, 0.96]
    assert doc_figures.mean_and_std("0.9485 +/- 0.0008") == (0.9485, 0.0008)
    assert doc_figures.numbers("0.76 / 0.69 / 1.39") == [0.76, 0.69, 1.39]


def test_a_moved_table_is_an_error_naming_the_section_and_columns(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(DOC)
    with pytest.raises(ValueError, match=r"benchmarks.md: no table under a heading containing 'Census-Income'"):
        doc_figures.draw(doc, tmp_path / "figures")


def _points(axis):
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in axis.get_lines()}


def test_every_figure_plots_its_table(tmp_path):
    figures = doc_figures.draw(doc_figures.DOC, tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(doc_figures.FIGURES)
    tables = doc_figures.markdown_tables(doc_figures.DOC.read_text())

    # Census: one row per model on each panel, the references without error bars.
    census = doc_figures.find_table(tables, section="Census-Income", columns=("model", "income AUC"))
    auc_axis = figures["bench_census_baselines.png"].axes[0]
    points = [line for line in auc_axis.get_lines() if line.get_marker() in ("o", "s")]  # not the error bars' caps
    plotted = sorted(np.concatenate([line.get_xdata() for line in points]))
    assert plotted == sorted(doc_figures.mean_and_std(c)[0] for c in census.column("income AUC"))

    # ANN: every index row but brute force is a point, at its (speed-up, recall).
    ann = _points(figures["bench_ann.png"].axes[0])
    fitted = doc_figures.find_table(tables, section="fitted to learned embeddings", columns=("run", "recall@10"))
    rows = [r for r in fitted.rows if "brute force" not in r[1]]
    runs = sorted({r[0] for r in rows})
    assert sum(len(ann[f"fitted 1M, run {run}"][0]) for run in runs) == len(rows)
    first = rows[0]
    x, y = ann[f"fitted 1M, run {first[0]}"]
    speedup = doc_figures.number(first[fitted.columns.index("speed-up batch 100")])
    assert (speedup, doc_figures.number(first[fitted.columns.index("recall@10")])) in zip(x, y)

    # Routing: a line per routing over the expert counts of the table's columns.
    routing = doc_figures.find_table(tables, section="GRec: inference cost", columns=("routing",))
    lines = _points(figures["bench_moe_routing.png"].axes[0])
    assert sorted(lines) == sorted(routing.column("routing"))
    assert lines["task"][0] == [8, 16, 32, 64]
