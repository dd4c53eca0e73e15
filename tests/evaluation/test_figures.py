"""Figures drawn from plain numbers, checked from what they plot."""

import matplotlib.image
import numpy as np

from tfzoo.evaluation.figures import line_panels, paired_differences


def test_line_panels_draw_one_line_per_series_in_each_panel(tmp_path):
    panels = {
        "seed 0": {"like": [1.0, 1.1, 1.3], "noise": [1.0, 0.8, 0.5]},
        "seed 1": {"like": [1.0, 0.9, 1.2], "noise": [1.0, 0.9, 0.7]},
    }
    figure = line_panels(panels, tmp_path / "lambda.png", xlabel="step", ylabel="lambda", reference=1.0)
    assert matplotlib.image.imread(tmp_path / "lambda.png").shape[1] > 600  # a real image, two panels wide
    assert [axis.get_title() for axis in figure.axes] == ["seed 0", "seed 1"]
    for axis, series in zip(figure.axes, panels.values()):
        lines = {line.get_label(): line for line in axis.get_lines() if not line.get_label().startswith("_")}
        assert set(lines) == set(series)
        for name, values in series.items():
            np.testing.assert_allclose(lines[name].get_ydata(), values)
            assert lines[name].get_xdata().tolist() == [1, 2, 3]
        # The reference line at 1.0 across the panel.
        assert any(set(line.get_ydata()) == {1.0} and line.get_label().startswith("_") for line in axis.get_lines())


def test_paired_differences_draw_each_interval_on_its_row_with_the_zero_line(tmp_path):
    panels = {
        "R@50": {
            "ES +cca": (0.009, 0.003, 0.015),
            "ES +mae": (0.006, -0.001, 0.012),
            "ENGB +cca": (-0.016, -0.023, -0.008),
        },
        "low R@100": {"ES +cca": (-0.006, -0.022, 0.009), "ENGB +cca": (-0.045, -0.064, -0.026)},
    }
    figure = paired_differences(panels, tmp_path / "d.png", xlabel="difference from retrieval")
    assert matplotlib.image.imread(tmp_path / "d.png").shape[1] > 500
    rows = [label.get_text() for label in figure.axes[0].get_yticklabels()]
    assert rows == ["ENGB +cca", "ES +mae", "ES +cca"]  # bottom to top: the first row on top
    at = {row: i for i, row in enumerate(rows)}
    for axis, (title, values) in zip(figure.axes, panels.items()):
        assert axis.get_title() == title
        points = next(line for line in axis.get_lines() if line.get_marker() == "o")
        assert points.get_ydata().tolist() == [at[row] for row in values]
        np.testing.assert_allclose(points.get_xdata(), [v[0] for v in values.values()])
        (bars,) = [c for c in axis.collections if len(c.get_segments()) == len(values)]
        ends = [(segment[0][0], segment[1][0]) for segment in bars.get_segments()]
        np.testing.assert_allclose(ends, [(v[1], v[2]) for v in values.values()])
        assert any(list(line.get_xdata()) == [0.0, 0.0] for line in axis.get_lines())  # no difference
