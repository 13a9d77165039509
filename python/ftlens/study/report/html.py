"""``build_report(run_dir)``: results.json -> PNG figures, each with the CSV of its numbers,
and one self-contained report.html (images inlined as base64): sanity flags first, then
the findings in sentences, then tables and figures. ``ftlens report RUN_DIR`` calls it."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from ..._util import files
from ...activations.models import model_label
from ...compare.display import similarity_text
from ..results import StudyResult
from . import plots, seeds
from .drawing import csv_name
from .findings import Finding, Flag, findings, flags, measures
from .plots import PLOTS
from .trajectories import trajectory_figures

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; max-width: 900px; }
.meta { color: #555; font-size: 0.9em; }
.flags { border: 2px solid #b22222; background: #fff4f4; padding: 0.5em 1em; margin: 1em 0; }
.flags h2 { margin-top: 0.3em; color: #b22222; border: none; }
.findings li { margin: 0.35em 0; }
.side { display: flex; gap: 1.5em; align-items: flex-start; flex-wrap: wrap; }
details { margin: 0.5em 0; } summary { cursor: pointer; color: #225; }
"""
FIGURES = (seeds.metric_figure, *PLOTS, trajectory_figures)
TITLES = {
    seeds.metric_figure: "Fine-tuning over seeds",
    trajectory_figures: "While fine-tuning ran",
    plots.similarity_by_layer: "Base vs fine-tuned, layer by layer",
    plots.heatmaps: None,
    plots.probes: "Probes",
    plots.ablations: "Ablations",
    plots.isotropy_by_layer: "Isotropy",
}
TOPICS = {
    "seeds": "Fine-tuning over seeds",
    "procedures": "The procedures compared",
    "similarity": "Which layers changed",
    "domain": "In-domain vs out-of-domain inputs",
    "probes": "What the probes lost or gained",
    "ablation": "Ablations",
    "isotropy": "Isotropy",
}


def build_report(run_dir) -> Path:
    """Draws every figure (PNG + CSV) from ``run_dir/results.json`` and writes
    ``run_dir/report.html``; returns the page's path."""
    run_dir = Path(run_dir)
    results = StudyResult.load(run_dir / "results.json")
    figures = {plot: plot(results, run_dir) for plot in FIGURES}
    page = _page(results, run_dir, figures)
    path = run_dir / "report.html"
    return files.atomic_write(path, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))


def figure_id(name: str) -> str:
    return "fig-" + Path(name).stem


def _figure(run_dir: Path, name: str, caption: str) -> str:
    data = base64.b64encode((run_dir / name).read_bytes()).decode("ascii")
    return (
        f'<figure id="{figure_id(name)}"><img src="data:image/png;base64,{data}" alt="{html.escape(name)}">'
        f'<figcaption>{html.escape(caption)} <a href="{html.escape(csv_name(name))}">The numbers '
        f"(CSV)</a>.</figcaption></figure>"
    )


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _collapsed(summary: str, content: str) -> str:
    return f"<details><summary>{html.escape(summary)}</summary>{content}</details>"


def _number(value, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{digits}f}"


def _with_bounds(value, bounds, i: int) -> str:
    """A similarity with its interval, in as many decimals as keep a value below 1 below 1."""
    cell = similarity_text(value)
    if bounds is not None:
        cell += f" [{similarity_text(bounds[0][i])}, {similarity_text(bounds[1][i])}]"
    return cell


# -- tables -----------------------------------------------------------------------------------
def finetuning_rows(results: StudyResult) -> list[list]:
    """Per task: its metric and its no-learning baseline, both in percent."""
    rows = []
    for name, task in results.tasks.items():
        value = task.as_percent(task.value)
        shown = _number(value, 2) if value is not None else "(checkpoint, not evaluated)"
        model = model_label(task.model_dir)
        if task.runs:
            s = seeds.spread(task)
            shown = (f"{s['mean']:.2f} (mean of {s['seeds']} seeds, SD {s['sd']:.2f}, {s['min']:.2f} to "
                     f"{s['max']:.2f}; interval [{s['low']:.2f}, {s['high']:.2f}])")
            model = f"{len(task.runs)} runs, seeds {', '.join(str(r['seed']) for r in task.runs)}"
        base = task.baseline
        baseline = f"{task.as_percent(base['value']):.2f} ({base['rule']})" if base else "-"
        rows.append([name, task.task, task.metric, shown, baseline, model])
    return rows


def summary_layers(n_layers: int) -> list[int]:
    return sorted({0, n_layers // 2, n_layers - 1})


def similarity_rows(results: StudyResult) -> tuple[list[str], list[list]]:
    """Per task, evaluation set and measure: the value at the embeddings, the middle layer and
    the top layer (named in the header), with the interval when there is one."""
    some = next(iter(next(iter(results.compare.values())).values()))
    shown = summary_layers(len(some.layers))
    header = ["task", "evaluation set", "domain", "measure", *(some.layers[i] for i in shown)]
    rows = []
    for measure in measures(results):
        for task, sets in results.compare.items():
            for set_name, result in sets.items():
                domain = "in" if results.in_domain(task, set_name) else "out"
                bounds = result.intervals.get(measure)
                rows.append(
                    [
                        task,
                        set_name,
                        domain,
                        measure.upper(),
                        *(_with_bounds(result.values[measure][i], bounds, i) for i in shown),
                    ]
                )
    return header, rows


def similarity_layer_tables(results: StudyResult) -> str:
    """Every similarity curve, layer by layer, one collapsible table per measure."""
    parts = []
    for measure in measures(results):
        curves = [
            (task, set_name, result)
            for task, sets in results.compare.items()
            for set_name, result in sets.items()
        ]
        layers = curves[0][2].layers
        header = ["layer", *(f"{task} on {set_name}" for task, set_name, _ in curves)]
        rows = [
            [layer, *(_with_bounds(r.values[measure][i], r.intervals.get(measure), i) for _, _, r in curves)]
            for i, layer in enumerate(layers)
        ]
        parts.append(_collapsed(f"{measure.upper()} at every layer (table)", _table(header, rows)))
    return "".join(parts)


def probe_rows(results: StudyResult) -> list[list]:
    """Per model, probe set and task: the best layer's score and the top layer's, in %."""
    rows = []
    for model, sets in (results.probes or {}).items():
        for set_name, result in sets.items():
            for j, task in enumerate(result.tasks):
                metric = result.main_metric(task)
                values = result.scores[metric][:, j]
                if not np.isfinite(values).any():
                    continue
                best = int(np.nanargmax(values))
                rows.append(
                    [
                        model,
                        set_name,
                        task,
                        metric,
                        f"{result.layers[best]}: {100 * values[best]:.1f}",
                        f"{100 * values[-1]:.1f}",
                    ]
                )
    return rows


def probe_layer_tables(results: StudyResult) -> str:
    parts = []
    for model, sets in (results.probes or {}).items():
        for set_name, result in sets.items():
            header = ["layer", *(f"{t} {result.main_metric(t)} (%)" for t in result.tasks)]
            has_selectivity = "selectivity" in result.scores
            if has_selectivity:
                header += [f"{t} selectivity (points)" for t in result.tasks]
            rows = []
            for i, layer in enumerate(result.layers):
                row = [
                    layer,
                    *(
                        _number(100 * result.scores[result.main_metric(t)][i, j], 1)
                        for j, t in enumerate(result.tasks)
                    ),
                ]
                if has_selectivity:
                    row += [
                        _number(100 * result.scores["selectivity"][i, j], 1) for j in range(len(result.tasks))
                    ]
                rows.append(row)
            parts.append(_collapsed(f"{model} on {set_name}, every layer (table)", _table(header, rows)))
    return "".join(parts)


def ablation_table(entry) -> str:
    r = entry.result
    rows = [[row["k"], f"{value:.2f}"] for row, value in zip(r.rows, r.percents(), strict=True)]
    if r.baseline is not None:
        rows.append(["no learning", f"{r.baseline_percent():.2f}"])
    return _table(["k", f"{r.metric} (%)"], rows)


def isotropy_layer_tables(results: StudyResult) -> str:
    parts = []
    for kind, task, detail, result in results.isotropy_details():
        header = ["layer"] + [
            f"{side} {label}" for _, label in plots.ISOTROPY_KEYS[:2] for side in ("base", task)
        ]
        rows = [
            [layer]
            + [
                _number(result.isotropy[side][key][i])
                for key, _ in plots.ISOTROPY_KEYS[:2]
                for side in ("base", "finetuned")
            ]
            for i, layer in enumerate(result.layers)
        ]
        parts.append(
            _collapsed(f"{kind} rows, {task} on {detail.set}, every layer (table)", _table(header, rows))
        )
    return "".join(parts)


# -- the page ---------------------------------------------------------------------------------
def _flags(found: list[Flag]) -> str:
    if not found:
        return ""
    items = "".join(f"<li>{html.escape(f.text)}</li>" for f in found)
    return f"<div class='flags' id='sanity'><h2>Sanity flags: read these first</h2><ul>{items}</ul></div>"


def _findings(found: list[Finding], drawn: set[str]) -> str:
    parts = [
        "<h2 id='findings'>Findings</h2>",
        "<p class='meta'>Each sentence is written from the results below, with its 95% intervals; "
        "the link opens its figure.</p>",
    ]
    for topic, title in TOPICS.items():
        chosen = [f for f in found if f.topic == topic]
        if not chosen:
            continue
        items = []
        for f in chosen:
            link = f" <a href='#{figure_id(f.figure)}'>(figure)</a>" if f.figure in drawn else ""
            items.append(f"<li>{html.escape(f.text)}{link}</li>")
        parts.append(f"<h3>{title}</h3><ul class='findings'>{''.join(items)}</ul>")
    return "".join(parts)


def _page(results: StudyResult, run_dir: Path, figures: dict) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in results.versions.items())
    stages = results.stages
    drawn = {name for written in figures.values() for name, _ in written}
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>ftlens study: {html.escape(results.study)}</title><style>{STYLE}</style></head><body>",
        f"<h1>What fine-tuning did to {html.escape(model_label(results.base))}: "
        f"study “{html.escape(results.study)}”</h1>",
        _flags(flags(results)),
        _findings(findings(results), drawn),
        "<h2>Fine-tuning</h2>",
        "<p>Every accuracy-like number in this report is in percent.</p>",
        _table(
            ["task", "kind", "metric", "value (%)", "no-learning baseline (%)", "model"],
            finetuning_rows(results),
        ),
    ]
    for plot, written in figures.items():
        title = TITLES[plot]
        if title and written:
            parts.append(f"<h2>{title}</h2>")
        if plot is seeds.metric_figure and results.procedures:
            parts += [_figure(run_dir, name, caption) for name, caption in written]
            parts += ["<p>Each task minus the task it is compared with, paired by seed: the difference of "
                      "the means over seeds, in points, with its 95% Multi-Bootstrap interval (seeds and "
                      "eval examples drawn together) and the p-value for no difference:</p>",
                      _table(["task", "against", "metric", "difference (points)", "p", "seeds"],
                             seeds.procedure_rows(results))]
            continue
        if plot is plots.similarity_by_layer:
            header, rows = similarity_rows(results)
            parts += [
                "<p>Similarity of each layer of the base model to the same layer of the fine-tuned model "
                "(1: unchanged), with 95% intervals:</p>",
                _table(header, rows),
                similarity_layer_tables(results),
            ]
        if plot is plots.probes and written:
            parts += [
                _table(
                    ["model", "probe set", "task", "metric", "best layer (%)", "top layer (%)"],
                    probe_rows(results),
                ),
                probe_layer_tables(results),
            ]
        if plot is plots.ablations:
            for entry, (name, caption) in zip(results.ablations, written, strict=True):
                parts.append(
                    f"<div class='side'>{_figure(run_dir, name, caption)}{ablation_table(entry)}</div>"
                )
            continue
        parts += [_figure(run_dir, name, caption) for name, caption in written]
        if plot is plots.isotropy_by_layer and written:
            parts.append(isotropy_layer_tables(results))
    parts += [
        "<h2>Stages</h2>",
        f"<p class='meta'>{versions}. The stages took {sum(s.seconds for s in stages) / 60:.1f} min when "
        "they "
        f"ran; the last run took {results.seconds / 60:.1f} min, reusing "
        f"{sum(s.status == 'reused' for s in stages)} of {len(stages)} stages.</p>",
        _table(["stage", "status", "seconds"], [[s.stage, s.status, f"{s.seconds:.1f}"] for s in stages]),
        "</body></html>",
    ]
    return "\n".join(parts)
