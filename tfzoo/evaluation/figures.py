"""The figures of run reports and docs (matplotlib, written as PNG files).

Each function draws one figure from plain numbers (a run's history, expert usage,
recall at several K, recall and latency of an index), writes it to `path` and returns
the `matplotlib.figure.Figure` (its axes hold the plotted data); none reads a run or a
model. Figures are made without pyplot (no global state, no display needed), and
matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100  # small committed PNGs: about 50-100 KB a figure


def _figure(width: float, height: float):
    """A matplotlib `Figure` outside pyplot's global state (nothing to close, no display)."""
    from matplotlib.figure import Figure  # noqa: PLC0415 (matplotlib only where a figure is drawn)

    return Figure(figsize=(width, height))


def _save(figure, path: str | Path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, bbox_inches="tight")
    return figure


def training_curves(
    history: Mapping[str, Sequence[float]],
    path: str | Path,
    *,
    best_epoch: int | None = None,
    title: str = "",
) -> Figure:
    """The run's history per epoch in up to three panels: the loss and each named loss
    term (training solid, validation dashed, one colour per term); the metrics per task
    (validation solid, training dashed); other training statistics (e.g. a mixture's
    expert usage and load). The restored best epoch is marked. `epoch_seconds` and the
    learning rate are left out."""
    skip = {"epoch_seconds", "lr", "learning_rate"}
    names = [k for k in history if k not in skip]
    base = lambda key: key.removeprefix("val_")  # noqa: E731
    losses = [k for k in dict.fromkeys(map(base, names)) if k.endswith("loss")]
    metrics = [k for k in dict.fromkeys(base(n) for n in names if n.startswith("val_")) if k not in losses]
    others = [n for n in names if not n.startswith("val_") and n not in losses and n not in metrics]
    panels = [
        ("loss terms (training solid, validation dashed)", losses, "", "val_"),
        ("metrics (validation solid, training dashed)", metrics, "val_", ""),
        ("training statistics", others, "", None),
    ]
    panels = [panel for panel in panels if panel[1]]
    figure = _figure(5.5 * len(panels), 4)
    axes = figure.subplots(1, len(panels), squeeze=False)
    for axis, (label, keys, solid, dashed) in zip(axes[0], panels):
        for number, key in enumerate(keys):
            color = f"C{number % 10}"
            for prefix, style in ((solid, "-"), (dashed, "--")):
                values = history.get(f"{prefix}{key}") if prefix is not None else None
                if values:
                    epochs = np.arange(1, len(values) + 1)
                    name = key if style == "-" else None
                    axis.plot(epochs, values, style, color=color, marker="o", markersize=3, label=name)
        if best_epoch:
            axis.axvline(best_epoch, color="grey", linestyle=":", linewidth=1, label=f"best epoch ({best_epoch})")
        plotted = [v for line in axis.get_lines() for v in line.get_ydata()]
        if plotted and min(plotted) > 0 and max(plotted) > 20 * min(plotted):
            axis.set_yscale("log")  # loss terms of very different sizes
        axis.set_xlabel("epoch")
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.set_title(label, fontsize=10)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def expert_usage_map(usage: Mapping[str, np.ndarray], path: str | Path, *, title: str) -> Figure:
    """A heat map of expert usage: one row per name (a task, or a mixture layer), one
    column per expert, each cell the row's share (each row sums to 1), printed in it."""
    names = list(usage)
    matrix = np.stack([np.asarray(usage[name], np.float64) for name in names])  # [rows, E]
    width = 1.0 + 0.55 * matrix.shape[1] + 0.08 * max(map(len, names))
    figure = _figure(width, 0.9 + 0.4 * len(names))
    axis = figure.subplots()
    image = axis.imshow(matrix, cmap="viridis", vmin=0.0, vmax=max(float(matrix.max()), 1e-9), aspect="auto")
    axis.set_xticks(range(matrix.shape[1]), [str(e) for e in range(matrix.shape[1])])
    axis.set_yticks(range(len(names)), names, fontsize=8)
    axis.set_xlabel("expert")
    threshold = matrix.max() / 2
    for (row, column), value in np.ndenumerate(matrix):
        color = "black" if value > threshold else "white"
        axis.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=7, color=color)
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04, label="share")
    axis.set_title(title, fontsize=10)
    return _save(figure, path)


def recall_at_k(
    reports: Mapping[str, Mapping[str, Mapping[str, float]]], path: str | Path, *, title: str = ""
) -> Figure:
    """Recall@K against K, one panel per user slice ("all", "low_degree", ...), one line
    per scorer; `reports` is {scorer: {slice: {"recall@K": value}}} (a retrieval report)."""
    slices = list(next(iter(reports.values())))
    figure = _figure(5.5 * len(slices), 4)
    axes = figure.subplots(1, len(slices), squeeze=False)
    for axis, slice_name in zip(axes[0], slices):
        ticks = set()
        for scorer, report in reports.items():
            points = sorted(
                (int(key.split("@")[1]), value)
                for key, value in report[slice_name].items()
                if key.startswith("recall@")
            )
            ks, values = zip(*points)
            ticks.update(ks)
            axis.plot(ks, values, marker="o", label=scorer)
        axis.set_xscale("log")
        axis.set_xticks(sorted(ticks), [str(k) for k in sorted(ticks)])
        axis.minorticks_off()
        axis.set_xlabel("K")
        axis.set_ylabel("Recall@K (test)")
        axis.set_title(f"{slice_name.replace('_', ' ')} users")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def recall_vs_latency(points: Mapping[str, Sequence[tuple[float, float]]], path: str | Path, *, title: str) -> Figure:
    """Recall against latency per series: `points` is {series: [(latency ms, recall), ...]}."""
    figure = _figure(6, 4)
    axis = figure.subplots()
    for series, pairs in points.items():
        latency, recall = zip(*pairs)
        axis.plot(latency, recall, marker="o", label=series)
    axis.set_xlabel("latency of one call (ms)")
    axis.set_ylabel("recall@10 against exact search")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return _save(figure, path)


def line_panels(
    panels: Mapping[str, Mapping[str, Sequence[float]]],
    path: str | Path,
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    reference: float | None = None,
) -> Figure:
    """One panel per entry of `panels` ({panel title: {series: values}}), a line per series
    over x = 1, 2, ... (e.g. a weight per training step), panels sharing the y axis;
    `reference` draws a horizontal line (e.g. the starting value)."""
    figure = _figure(4.5 * len(panels), 3.6)
    axes = figure.subplots(1, len(panels), squeeze=False, sharey=True)
    for axis, (panel, series) in zip(axes[0], panels.items()):
        for name, values in series.items():
            axis.plot(np.arange(1, len(values) + 1), values, label=name)
        if reference is not None:
            axis.axhline(reference, color="grey", linestyle=":", linewidth=1)
        axis.set_title(panel, fontsize=10)
        axis.set_xlabel(xlabel)
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    axes[0][0].legend(fontsize=8)
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def paired_differences(
    panels: Mapping[str, Mapping[str, tuple[float, float, float]]],
    path: str | Path,
    *,
    xlabel: str,
    title: str = "",
) -> Figure:
    """One panel per entry of `panels` ({panel title: {row: (difference, low, high)}}): each
    row's difference as a point with its interval as a horizontal bar, rows top to bottom
    in the given order, a vertical line at 0 (no difference); panels share the rows."""
    rows = list(dict.fromkeys(row for values in panels.values() for row in values))
    height = 0.9 + 0.32 * len(rows)
    figure = _figure(3.6 * len(panels), height)
    axes = figure.subplots(1, len(panels), squeeze=False, sharey=True)
    positions = {row: len(rows) - 1 - i for i, row in enumerate(rows)}  # the first row on top
    for axis, (panel, values) in zip(axes[0], panels.items()):
        y = [positions[row] for row in values]
        difference, low, high = (np.array([v[i] for v in values.values()]) for i in range(3))
        axis.errorbar(difference, y, xerr=[difference - low, high - difference], fmt="o", capsize=3)
        axis.axvline(0.0, color="grey", linestyle=":", linewidth=1)
        axis.set_title(panel, fontsize=10)
        axis.set_xlabel(xlabel)
        axis.grid(alpha=0.3, axis="x")
    axes[0][0].set_yticks(range(len(rows)), labels=rows[::-1])
    if title:  # above the panels' own titles, whatever the figure's height
        figure.suptitle(title, y=1.0 + 0.3 / height)
    return _save(figure, path)
