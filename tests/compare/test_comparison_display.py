"""LayerComparison.table(), .plot() and .csv(), as ProbeResult and AblationResult have:
the figure's values are the result's, on one 0-1 axis, and the CSV holds them exactly."""

import csv
import io

import numpy as np
from helpers.study import comparison


def test_table_names_every_layer_with_values_and_intervals():
    result = comparison({"rsa": [1.0, 0.99999, 0.9, 0.8, 0.5], "cka": [1.0, 0.98, 0.7, 0.6, 0.4]})
    lines = result.table().splitlines()
    assert lines[0].split() == ["layer", "rsa", "cka"]
    assert lines[2].split()[:2] == ["layer", "1"] and "0.99999" in lines[2]  # never rounded up to 1
    assert "0.500 [0.480, 0.520]" in lines[5]


def test_plot_shares_one_axis_and_draws_the_values(tmp_path):
    result = comparison({"rsa": [1.0, 0.99, 0.9, 0.8, -0.1], "cka": [1.0, 0.98, 0.7, 0.6, 0.4]})
    figure = result.plot(tmp_path / "s.png", tmp_path / "s.csv")
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    limits = {ax.get_ylim() for ax in figure.axes}
    assert len(limits) == 1 and limits.pop()[0] < -0.1  # a negative value stays on the axis
    for ax, name in zip(figure.axes, ("rsa", "cka"), strict=True):
        np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), result.values[name])
    rows = list(csv.DictReader(io.StringIO((tmp_path / "s.csv").read_text())))
    assert len(rows) == 10
    for row in rows:
        i = result.layers.index(row["base_layer"])
        assert row["finetuned_layer"] == row["base_layer"]
        assert float(row["value"]) == result.values[row["measure"]][i]
        assert float(row["low"]) == result.intervals[row["measure"]][0][i]


def test_all_pairs_show_as_heatmaps_and_blocks():
    result = comparison({"cka": np.eye(5) * 0.5}, pairs="all")
    result.intervals = {}
    assert result.table().splitlines()[0].split()[:2] == ["cka:", "base"]
    figure = result.plot()
    np.testing.assert_array_equal(figure.axes[0].get_images()[0].get_array(), result.values["cka"])
    assert len(result.csv().splitlines()) == 1 + 25
