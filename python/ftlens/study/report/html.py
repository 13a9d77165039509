"""``build_report(run_dir)``: results.json -> PNG plots + one self-contained report.html
(images inlined as base64, short captions, tables). ``ftlens report RUN_DIR`` calls it."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from ..._util import files
from ...similarity import registry
from ..results import StudyResult
from . import plots
from .plots import PLOTS

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; max-width: 900px; }
.meta { color: #555; font-size: 0.9em; }
"""


def build_report(run_dir) -> Path:
    """Draws every plot from ``run_dir/results.json`` and writes ``run_dir/report.html``;
    returns the page's path."""
    run_dir = Path(run_dir)
    results = StudyResult.load(run_dir / "results.json")
    figures = []
    for plot in PLOTS:
        figures += [(plot, name, caption) for name, caption in plot(results, run_dir)]
    page = _page(results, run_dir, figures)
    path = run_dir / "report.html"
    return files.atomic_write(path, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))


def _figure(run_dir: Path, name: str, caption: str) -> str:
    data = base64.b64encode((run_dir / name).read_bytes()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(name)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _number(value, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{digits}f}"


def finetuning_rows(results: StudyResult) -> list[list]:
    rows = []
    for name, task in results.tasks.items():
        value = task.metrics.get(f"eval_{task.metric}")
        shown = _number(value, 4) if value is not None else "(checkpoint, not evaluated)"
        rows.append([name, task.task, task.metric, shown, task.model_dir])
    return rows


def similarity_rows(results: StudyResult) -> list[list]:
    """Per task and evaluation set: each measure at the embeddings, the middle and the top
    layer, with the interval when there is one."""
    rows = []
    for task, sets in results.compare.items():
        for set_name, result in sets.items():
            if result.pairs != "diagonal":
                continue
            domain = "in" if results.in_domain(task, set_name) else "out"
            for measure in (m for m in registry.MEASURES if m in result.values):
                values, bounds = result.values[measure], result.intervals.get(measure)
                cells = []
                for layer in (0, len(values) // 2, len(values) - 1):
                    cell = _number(values[layer])
                    if bounds is not None:
                        cell += f" [{_number(bounds[0][layer])}, {_number(bounds[1][layer])}]"
                    cells.append(cell)
                rows.append([task, set_name, domain, measure, *cells])
    return rows


def probe_rows(results: StudyResult) -> list[list]:
    """Per model, probe set and task: the best layer's accuracy and the top layer's."""
    rows = []
    for model, sets in (results.probes or {}).items():
        for set_name, result in sets.items():
            for j, task in enumerate(result.tasks):
                metric = result.main_metric(task)
                values = result.scores[metric][:, j]
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


def _page(results: StudyResult, run_dir: Path, figures: list[tuple]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in results.versions.items())
    stages = results.stages
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>ftlens study: {html.escape(results.study)}</title><style>{STYLE}</style></head><body>",
        f"<h1>What fine-tuning did to {html.escape(results.base)}: "
        f"study “{html.escape(results.study)}”</h1>",
        f"<p class='meta'>{versions}. The stages took "
        f"{sum(s.seconds for s in stages) / 60:.1f} min when they ran; the last run took "
        f"{results.seconds / 60:.1f} min, reusing "
        f"{sum(s.status == 'reused' for s in stages)} of {len(stages)} stages.</p>",
        "<h2>Fine-tuning</h2>",
        _table(["task", "kind", "metric", "value", "model"], finetuning_rows(results)),
        "<h2>Base vs fine-tuned, layer by layer</h2>",
        "<p>Similarity of each layer of the base model to the same layer of the fine-tuned model (1: "
        "unchanged). Values at the embeddings, the middle layer and the top layer, with their "
        "intervals:</p>",
        _table(
            ["task", "evaluation set", "domain", "measure", "embeddings", "middle", "top"],
            similarity_rows(results),
        ),
    ]
    # every plot in PLOTS' order, under its section's title (None: the first section's)
    titles = {plots.probes: "Probes", plots.ablations: "Ablations", plots.isotropy_by_layer: "Isotropy"}
    sections = {plot: titles.get(plot) for plot in PLOTS}
    shown = set()
    for section, title in sections.items():
        chosen = [f for f in figures if f[0] == section]
        if title and chosen and title not in shown:
            parts.append(f"<h2>{title}</h2>")
            shown.add(title)
            if section is plots.probes:
                parts.append(
                    _table(
                        ["model", "probe set", "task", "metric", "best layer (%)", "top layer (%)"],
                        probe_rows(results),
                    )
                )
        parts += [_figure(run_dir, name, caption) for _, name, caption in chosen]
    parts += [
        "<h2>Stages</h2>",
        _table(
            ["stage", "status", "seconds"],
            [[s.stage, s.status, f"{s.seconds:.1f}"] for s in stages],
        ),
        "</body></html>",
    ]
    return "\n".join(parts)
