"""The figures beside the results tables of docs/benchmarks.md, drawn from those tables.

    python bench/doc_figures.py [--doc docs/benchmarks.md] [--out docs/figures]
    python bench/doc_figures.py --quick      # every figure, into ./doc_figures_quick

A table in docs/benchmarks.md is the record of a measurement (its command beside it), so
each figure reads the numbers from the table it illustrates instead of a second copy of
them: redraw after a bench updates a table, and the figure cannot drift from it. A table
that moved or changed its columns is a clear error naming the section and the columns.

Figures (PNG, small):

- `bench_census_baselines.png`: income AUC and AP of every model, mean and sample standard
  deviation over seeds, next to the logistic regression and the trees;
- `bench_streaming.png`: training throughput from files against the in-memory pipeline
  (each paired repeat and its median, the 0.8x target), and peak memory at 1M and 10M
  rows (the 1.1x flatness target);
- `bench_moe_routing.png`: float ops and throughput per example against the number of
  experts, a line per routing;
- `bench_ann.png`: recall@10 against the speed-up over brute force for batches of 100,
  on the random set and on the set fitted to learned embeddings, with the target.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
DPI = 100


@dataclasses.dataclass(frozen=True)
class Table:
    """A markdown table: the headings above it (outermost first), its columns and rows."""

    headings: tuple[str, ...]
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    line: int  # 1-based line of its header row in the document

    def column(self, name: str) -> list[str]:
        return [row[self.columns.index(name)] for row in self.rows]


def _cells(line: str) -> tuple[str, ...]:
    return tuple(cell.strip() for cell in line.strip().strip("|").split("|"))


def markdown_tables(text: str) -> list[Table]:
    """Every pipe table of `text` with the headings it sits under."""
    tables, headings = [], []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        heading = re.match(r"^(#+)\s+(.*)$", line)
        if heading:
            level = len(heading.group(1))
            headings = [*headings[: level - 1], heading.group(2).strip()]
        elif (
            line.lstrip().startswith("|")
            and index + 1 < len(lines)
            and re.match(r"^\s*\|[\s:|-]+\|\s*$", lines[index + 1])
        ):
            columns = _cells(line)
            rows = []
            index += 2
            while index < len(lines) and lines[index].lstrip().startswith("|"):
                rows.append(_cells(lines[index]))
                index += 1
            tables.append(Table(tuple(headings), columns, tuple(rows), line=index - len(rows) - 1))
            continue
        index += 1
    return tables


def find_table(
    tables: list[Table], *, section: str, columns: tuple[str, ...], which: int = -1, doc: Path = DOC
) -> Table:
    """The table under a heading containing `section` that has all of `columns`: the last
    of them, or the `which`-th."""
    found = [t for t in tables if any(section in h for h in t.headings) and set(columns) <= set(t.columns)]
    if not found:
        raise ValueError(
            f"{doc}: no table under a heading containing {section!r} with the columns {list(columns)}; "
            "a figure reads its numbers from the table it illustrates"
        )
    return found[which]


def number(cell: str) -> float:
    """The first number of a cell: '29,590' -> 29590, '**0.96**' -> 0.96, '3.2x' -> 3.2."""
    match = re.search(r"-?\d[\d,]*(?:\.\d+)?", cell.replace("*", ""))
    if match is None:
        raise ValueError(f"no number in the table cell {cell!r}")
    return float(match.group(0).replace(",", ""))


def numbers(cell: str, separator: str = "/") -> list[float]:
    """'0.76 / 0.69 / 1.39' -> [0.76, 0.69, 1.39]."""
    return [number(part) for part in cell.split(separator)]


def mean_and_std(cell: str) -> tuple[float, float]:
    """'0.9464 +/- 0.0018' -> (0.9464, 0.0018); a cell without a spread has 0."""
    parts = cell.split("+/-")
    return number(parts[0]), (number(parts[1]) if len(parts) > 1 else 0.0)


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # noqa: PLC0415 (matplotlib only where a figure is drawn)

    return Figure(figsize=(width, height))


def _save(figure, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, bbox_inches="tight")
    return figure


def census_baselines(tables: list[Table], path: Path):
    table = find_table(tables, section="Census-Income", columns=("model", "income AUC", "income AP"))
    models = table.column("model")
    figure = _figure(9, 0.9 + 0.35 * len(models))
    axes = figure.subplots(1, 2, sharey=True)
    y = np.arange(len(models))[::-1]
    for axis, metric in zip(axes, ("income AUC", "income AP")):
        values = [mean_and_std(cell) for cell in table.column(metric)]
        means, stds = np.array(values).T
        references = stds == 0  # the scikit-learn fits: deterministic, one value
        axis.errorbar(means[~references], y[~references], xerr=stds[~references], fmt="o", capsize=3, label="neural")
        axis.plot(means[references], y[references], "s", color="tab:red", label="scikit-learn reference")
        axis.set_xlabel(f"test {metric} (mean +/- std over seeds)")
        axis.grid(alpha=0.3, axis="x")
    axes[0].set_yticks(y, labels=models)
    figure.legend(*axes[0].get_legend_handles_labels(), loc="upper center", ncol=2, bbox_to_anchor=(0.5, -0.02))
    figure.suptitle("Census-Income: the multi-task models next to their references", y=1.02)
    return _save(figure, path)


def streaming(tables: list[Table], path: Path):
    repeats = find_table(
        tables, section="Streaming", columns=("source (1M rows, 32 shards)", "vs in memory, paired", "median")
    )
    runs = find_table(tables, section="Streaming", columns=("run", "source", "rows", "peak RSS"))
    figure = _figure(11, 3.8)
    left, right = figure.subplots(1, 2)
    sources = [s for s, r in zip(repeats.column("source (1M rows, 32 shards)"), repeats.column("median")) if r != "1"]
    paired = {
        source: numbers(cell)
        for source, cell in zip(repeats.column("source (1M rows, 32 shards)"), repeats.column("vs in memory, paired"))
        if source in sources
    }
    for position, source in enumerate(sources):
        ratios = paired[source]
        left.plot([position] * len(ratios), ratios, "o", color="tab:blue", alpha=0.6)
        left.plot([position], [np.median(ratios)], "_", color="black", markersize=30, markeredgewidth=2)
    left.axhline(0.8, color="tab:red", linestyle="--", linewidth=1, label="target 0.8x")
    left.axhline(1.0, color="grey", linestyle=":", linewidth=1)
    left.set_xticks(range(len(sources)), labels=sources)
    left.set_xlim(-0.5, len(sources) - 0.5)
    left.set_ylabel("training examples/s vs in memory (paired)")
    left.set_title("throughput: each repeat, and its median", fontsize=10)
    left.legend(fontsize=8)
    left.grid(alpha=0.3, axis="y")

    # Peak memory of the last run measured per source at 1M and 10M rows.
    latest = {}
    for run, source, rows, peak in zip(*(runs.column(c) for c in ("run", "source", "rows", "peak RSS"))):
        if "inflated" in peak or source == "in memory":
            continue
        latest.setdefault(source, {})[rows] = (number(run), number(peak))
    labels = sorted(latest)
    width = 0.38
    for offset, size in ((-width / 2, "1M"), (width / 2, "10M")):
        values = [latest[s][size][1] for s in labels]
        right.bar(np.arange(len(labels)) + offset, values, width, label=f"{size} rows")
    for position, source in enumerate(labels):
        growth = latest[source]["10M"][1] / latest[source]["1M"][1]
        top = max(latest[source]["1M"][1], latest[source]["10M"][1])
        right.annotate(f"10M / 1M: {growth:.2f}x", (position, top * 1.02), ha="center", va="bottom", fontsize=8)
    right.set_ylim(0, 1.25 * max(v[1] for sizes in latest.values() for v in sizes.values()))
    right.set_xticks(range(len(labels)), labels=labels)
    right.set_ylabel("peak RSS (MiB)")
    right.set_title("memory: 10x the rows (target: at most 1.1x)", fontsize=10)
    right.legend(fontsize=8, loc="lower right")
    right.grid(alpha=0.3, axis="y")
    return _save(figure, path)


def moe_routing(tables: list[Table], path: Path):
    table = find_table(tables, section="GRec: inference cost", columns=("routing", "E=8 MFLOP/ex"))
    experts = [int(number(c)) for c in table.columns if c.startswith("E=")]
    figure = _figure(11, 3.8)
    flops_axis, speed_axis = figure.subplots(1, 2)
    for row in table.rows:
        flops = [number(row[table.columns.index(f"E={e} MFLOP/ex")]) for e in experts]
        speed = [number(row[table.columns.index(f"E={e} MFLOP/ex") + 1]) for e in experts]
        flops_axis.plot(experts, flops, marker="o", label=row[0])
        speed_axis.plot(experts, speed, marker="o", label=row[0])
    for axis, label in ((flops_axis, "MFLOP per example"), (speed_axis, "examples/s")):
        axis.set_xscale("log", base=2)
        axis.set_xticks(experts, labels=[str(e) for e in experts])
        axis.minorticks_off()
        axis.set_xlabel("experts (top-4)")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    flops_axis.set_yscale("log")
    flops_axis.set_yticks([2, 4, 8, 16, 32], labels=["2", "4", "8", "16", "32"])
    flops_axis.minorticks_off()
    flops_axis.legend(fontsize=7)
    figure.suptitle("A mixture-of-experts layer's cost per routing", y=1.02)
    return _save(figure, path)


def _ann_series(table: Table, index_column: str, keep) -> dict[str, list[tuple[float, float]]]:
    series: dict[str, list[tuple[float, float]]] = {}
    runs = table.column("run") if "run" in table.columns else [""] * len(table.rows)
    for run, index, found, speedup in zip(
        runs, table.column(index_column), table.column("recall@10"), table.column("speed-up batch 100")
    ):
        name = keep(run, index)
        if name is not None and index != "brute force":
            series.setdefault(name, []).append((number(speedup), number(found)))
    return {name: sorted(points) for name, points in series.items()}


def ann(tables: list[Table], path: Path, *, target_recall: float = 0.95, target_speedup: float = 15.0):
    columns = ("index", "recall@10", "speed-up batch 100")
    random_set = find_table(tables, section="ScaNN vs brute force", columns=columns, which=0)
    fitted = find_table(tables, section="fitted to learned embeddings", columns=("run", *columns[1:]))
    fitted_index = next(c for c in fitted.columns if c.startswith("index"))

    def random_kind(_run, index):
        if index.startswith("library"):
            return "random 1M, ScaNN library, SOAR" if "SOAR" in index else "random 1M, ScaNN library"
        return "random 1M, tfzoo ScaNN export"

    series = {
        **_ann_series(random_set, "index", random_kind),
        **_ann_series(fitted, fitted_index, lambda run, _index: f"fitted 1M, run {run}"),
    }
    figure = _figure(7, 4.5)
    axis = figure.subplots()
    for name, points in series.items():
        speedups, recalls = zip(*points)
        # Points, not lines: a series mixes tree sizes and reordering depths.
        axis.plot(speedups, recalls, marker="o", linestyle="none", label=name)
    axis.axhline(target_recall, color="tab:red", linestyle="--", linewidth=1)
    axis.axvline(target_speedup, color="tab:red", linestyle="--", linewidth=1)
    axis.fill_between(
        [target_speedup, axis.get_xlim()[1] * 1.5], target_recall, 1.0, color="tab:red", alpha=0.08, label="target"
    )
    axis.set_xscale("log")
    axis.set_xlim(1, max(s for points in series.values() for s, _ in points) * 1.5)
    ticks = [t for t in (1, 2, 5, 10, target_speedup, 20, 50, 100) if t <= axis.get_xlim()[1]]
    axis.set_xticks(ticks, labels=[f"{t:g}x" for t in ticks])
    axis.minorticks_off()
    axis.set_ylim(min(r for points in series.values() for _, r in points) - 0.05, 1.0)
    axis.set_xlabel("speed-up over brute force, batches of 100 (same run)")
    axis.set_ylabel("recall@10")
    axis.set_title("ScaNN on 1M x 64 vectors: recall against speed", fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="lower left")
    return _save(figure, path)


FIGURES = {
    "bench_census_baselines.png": census_baselines,
    "bench_streaming.png": streaming,
    "bench_moe_routing.png": moe_routing,
    "bench_ann.png": ann,
}


def draw(doc: Path, out: Path) -> dict[str, object]:
    """Every figure of `FIGURES` from the tables of `doc`, into `out`: {file name: Figure}."""
    tables = markdown_tables(doc.read_text())
    return {name: function(tables, out / name) for name, function in FIGURES.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--doc", type=Path, default=DOC, help="the markdown holding the tables")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "figures", help="folder for the PNGs")
    parser.add_argument("--quick", action="store_true", help="draw into ./doc_figures_quick (checks that it runs)")
    args = parser.parse_args(argv)
    out = Path("doc_figures_quick") if args.quick else args.out
    for name in draw(args.doc, out):
        print(f"wrote {out / name}")


if __name__ == "__main__":
    main(sys.argv[1:])
