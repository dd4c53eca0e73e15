"""Figures drawn from plain numbers, checked from what they plot."""

import matplotlib.image
import numpy as np

from tfzoo.evaluation.figures import line_panels


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
