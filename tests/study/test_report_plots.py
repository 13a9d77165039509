"""The report's plot rules, one test each: similarity panels share one y-axis that includes
1 and follow the study's measures order; probes on 0-100% with transparent bands; the
no-learning baseline on ablations; the base model's isotropy measured on each model's own
set; a CSV next to every PNG, equal to the values drawn."""

import csv

import numpy as np
import pytest
from ftlens.study.report import build_report, drawing, plots
from helpers.study import synthetic_study


@pytest.fixture
def drawn(monkeypatch, tmp_path):
    """Builds the synthetic study's report; returns {png name: (figure, csv rows)}."""
    figures = {}
    save = drawing.Drawn.save

    def recording(self, figure, folder, name):
        save(self, figure, folder, name)
        with open(folder / drawing.csv_name(name), newline="") as f:
            figures[name] = (figure, list(csv.DictReader(f)))

    monkeypatch.setattr(drawing.Drawn, "save", recording)
    synthetic_study().save(tmp_path / "results.json")
    build_report(tmp_path)
    return figures


def _value(text: str) -> float:
    return float(text) if text else np.nan


def test_similarity_panels_share_one_axis_that_includes_one(drawn):
    for measure in ("rsa", "cka"):
        figure, _ = drawn[f"similarity_{measure}.png"]
        limits = {ax.get_ylim() for ax in figure.axes}
        assert len(limits) == 1, limits  # the learned and the unlearned task on one scale
        low, high = limits.pop()
        assert low <= 0.0 and 1.0 < high <= 1.05


def test_similarity_figures_follow_the_measures_order(tmp_path):
    for order in (("rsa", "cka"), ("cka", "rsa")):
        written = plots.similarity_by_layer(synthetic_study(order), tmp_path)
        assert [name for name, _ in written] == [f"similarity_{m}.png" for m in order]


def test_a_task_at_its_baseline_is_marked_on_its_panel(drawn):
    figure, _ = drawn["similarity_rsa.png"]
    titles = {ax.get_gid(): ax.get_title() for ax in figure.axes}
    assert "DID NOT LEARN" in titles["pair"] and "DID NOT LEARN" not in titles["parsing"]
    assert "80.0%" in titles["parsing"] and "53.0%" in titles["pair"]  # one unit: percent


def test_probes_on_a_fixed_percent_axis_with_transparent_bands(drawn):
    figure, _ = drawn["probes_sentences.png"]
    accuracy_axes = [ax for ax in figure.axes if ax.get_gid() and ax.get_gid().endswith("accuracy")]
    assert len(accuracy_axes) == 2
    for ax in accuracy_axes:
        assert ax.get_ylim() == (0.0, 100.0)
        assert ax.get_xlabel() == "layer" and ax.get_ylabel() == "accuracy (%)"
        bands = [c for c in ax.collections if c.get_alpha() is not None]
        assert bands and all(c.get_alpha() <= 0.3 for c in bands)
    for ax in figure.axes:
        if ax.get_gid() and ax.get_gid().endswith("selectivity"):
            low, high = ax.get_ylim()
            assert low <= -10 and high >= 10  # a point of selectivity is not drawn as a cliff
    legend = figure.axes[1].get_legend() or figure.axes[0].get_legend()
    assert legend.get_frame().get_alpha() < 1


def test_ablation_shows_the_no_learning_baseline(drawn):
    figure, rows = drawn["ablation_freeze_pair.png"]
    (ax,) = figure.axes
    flat = [line for line in ax.get_lines() if line.get_label().startswith("no learning")]
    assert len(flat) == 1 and flat[0].get_ydata()[0] == pytest.approx(52.0)
    assert ax.get_ylim() == (0.0, 100.0)
    assert [r["x"] for r in rows if r["series"] == "fine-tuned, by k"] == ["0", "2", "4"]


def test_base_isotropy_is_measured_on_each_models_own_set(drawn):
    study = synthetic_study()
    _, rows = drawn["isotropy_tokens.png"]
    for task, set_name in (("parsing", "sentences"), ("pair", "pairs")):
        result = study.detail[task].by_rows["tokens"]
        for series, side in ((f"base on {set_name}", "base"), (f"{task} on {set_name}", "finetuned")):
            drawn_values = [
                _value(r["value"]) for r in rows if r["panel"] == "mean_cosine" and r["series"] == series
            ]
            np.testing.assert_allclose(drawn_values, result.isotropy[side]["mean_cosine"], rtol=0, atol=0)


def test_every_png_has_a_csv_equal_to_the_values_drawn(drawn, tmp_path):
    assert set(drawn) == {p.name for p in tmp_path.glob("*.png")}
    for name, (figure, rows) in drawn.items():
        assert (tmp_path / drawing.csv_name(name)).is_file()
        checked = 0
        for ax in figure.axes:
            panel = ax.get_gid()
            for line in ax.get_lines():
                label = line.get_label()
                if label.startswith("_") or panel is None:
                    continue
                mine = [r for r in rows if r["panel"] == panel and r["series"] == label]
                assert mine, (name, panel, label)
                y = np.asarray(line.get_ydata(), dtype=np.float64)
                if len(mine) == 1 and mine[0]["x"] == "":  # a reference level across the panel
                    y = y[:1]
                np.testing.assert_allclose(
                    y, [_value(r["value"]) for r in mine], rtol=0, atol=0, err_msg=name
                )
                checked += 1
            for image in ax.get_images():
                cells = np.array([_value(r["value"]) for r in rows if r["panel"] == panel])
                np.testing.assert_array_equal(np.asarray(image.get_array()).ravel(), cells)
                checked += 1
        assert checked, name


def test_the_page_links_each_csv_and_states_one_unit(tmp_path):
    synthetic_study().save(tmp_path / "results.json")
    page = build_report(tmp_path).read_text()
    for png in tmp_path.glob("*.png"):
        assert f'href="{png.stem}.csv"' in page
    assert "80.00" in page and "53.00" in page  # LAS and accuracy, both in percent
    assert "<th>layer 2</th>" in page  # the summary names its middle layer
    assert page.count("<details>") >= 4  # every curve's numbers, layer by layer
