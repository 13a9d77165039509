"""The study's figures, each drawn from its ``StudyResult`` alone, each a PNG with a CSV of
the numbers behind it (``panel, series, x, value, low, high``: one row per point drawn).
Every function takes the results and a folder and returns [(PNG name, caption)].

Rules, each tested: similarity panels share one y-axis that includes 1 and follow the
study's measures order; probes are drawn on 0-100% with transparent bands; ablations show
the no-learning baseline; the base model's isotropy is measured on each model's own set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...activations.capture import short_layer_names
from ...activations.models import model_label
from ...compare.models import LayerComparison
from ...probes.result import PROPORTIONS
from ...similarity import registry
from ..results import StudyResult
from .drawing import Drawn, as_array, pyplot
from .findings import did_not_learn, measures

ISOTROPY_KEYS = (
    ("mean_cosine", "mean cosine between rows"),
    ("effective_rank", "effective rank"),
    ("top_k_variance_share", "top-k dimensions' share of variance"),
    ("dim_mean_abs_max", "largest |mean| of a dimension"),
)
SELECTIVITY_SPAN = 10.0  # points: the least range of a selectivity panel, either side of 0


short = short_layer_names  # tick labels: "emb", "1", "2", ...


# -- base vs fine-tuned ------------------------------------------------------------------------
def similarity_range(results: StudyResult, names: list[str]) -> tuple[float, float]:
    """One y range for every similarity panel: from 0 (lower when a value or bound is
    negative) to just above 1, so equal changes look equal in every panel."""
    lowest = 0.0
    for sets in results.compare.values():
        for result in sets.values():
            for measure in names:
                found = [as_array(result.values[measure])]
                found += [as_array(v) for v in result.seed_values.get(measure, [])]
                if measure in result.intervals:
                    found.append(as_array(result.intervals[measure][0]))
                finite = np.concatenate(found)
                finite = finite[np.isfinite(finite)]
                if finite.size:
                    lowest = min(lowest, float(finite.min()))
    return (lowest - 0.05 if lowest < 0 else 0.0), 1.02


def _task_title(results: StudyResult, task: str, failed: set[str]) -> str:
    outcome = results.tasks[task]
    title = task
    if outcome.value is not None:
        over = f", mean of {len(outcome.runs)} seeds" if outcome.runs else ""
        title += f" ({outcome.metric} {outcome.as_percent(outcome.value):.1f}%{over})"
    return title + ("\nDID NOT LEARN: at its baseline" if task in failed else "")


def similarity_by_layer(results: StudyResult, folder: Path) -> list[tuple[str, str]]:
    """One figure per measure, in the study's order: a panel per task on one shared y-axis,
    a line per evaluation set (solid in-domain, dashed out-of-domain) with its band."""
    plt = pyplot()
    written = []
    compare = results.compare
    tasks = list(compare)
    first = compare[tasks[0]][next(iter(compare[tasks[0]]))]
    if first.pairs != "diagonal":
        return written
    names = measures(results)
    low, high = similarity_range(results, names)
    failed = did_not_learn(results)
    for measure in names:
        drawn = Drawn()
        figure, axes = plt.subplots(
            1, len(tasks), figsize=(4.6 * len(tasks), 3.9), squeeze=False, sharey=True
        )
        for ax, task in zip(axes[0], tasks, strict=True):
            shown = []  # the sets' lines (each seed's thin line stays out of the legend)
            for set_name, result in compare[task].items():
                in_domain = results.in_domain(task, set_name)
                bounds = result.intervals.get(measure)
                series = f"{set_name} ({'in' if in_domain else 'out of'} domain)"
                line = drawn.line(
                    ax,
                    task,
                    series + (f", mean of {len(result.seeds)} seeds" if result.seeds else ""),
                    result.layers,
                    result.values[measure],
                    *(bounds if bounds is not None else (None, None)),
                    marker="o",
                    ls="-" if in_domain else "--",
                )
                shown.append(line)
                for seed, values in zip(result.seeds, result.seed_values.get(measure, []), strict=False):
                    drawn.line(ax, task, f"{set_name}, seed {seed}", result.layers, values,
                               color=line.get_color(), lw=0.7, alpha=0.45, ls=line.get_linestyle())
            ax.set_xticks(np.arange(len(result.layers)), short(result.layers))
            ax.set_xlabel("layer")
            ax.set_ylim(low, high)
            ax.axhline(1.0, color="gray", lw=0.8, ls=":")
            ax.set_title(
                _task_title(results, task, failed),
                fontsize=9,
                color="firebrick" if task in failed else "black",
            )
            ax.grid(alpha=0.3)
            ax.legend(handles=shown, fontsize=7, framealpha=0.6, loc="lower left")
        axes[0][0].set_ylabel(f"{measure.upper()}, base vs fine-tuned (1: unchanged)")
        name = f"similarity_{measure}.png"
        drawn.save(figure, folder, name)
        band = _band_text(first)
        written.append(
            (
                name,
                f"{_described(measure, first)}, base vs fine-tuned model, layer by layer, on "
                f"every evaluation set (solid: in-domain for the task, dashed: out-of-domain); "
                f"every panel on the same axis.{band}",
            )
        )
    return written


def _band_text(result: LayerComparison) -> str:
    if result.interval_method == "multibootstrap":
        return (f" Bands: {result.ci:.0%} Multi-Bootstrap intervals over {len(result.seeds)} seeds and "
                f"{result.ci_groups} groups of inputs (normal, around the mean over seeds: resampling biases "
                "these measures upward); thin lines: each seed.")
    if result.ci:
        return f" Bands: {result.ci:.0%} jackknife intervals over {result.ci_groups} groups of inputs."
    return " No intervals (set compare.ci)."


def _described(measure: str, result: LayerComparison) -> str:
    if measure == "rsa":
        return (
            f"RSA (Pearson correlation of the two models' {result.rdm}-distance RDMs over all pairs of rows)"
        )
    return registry.MEASURES[measure].summary


def heatmaps(results: StudyResult, folder: Path) -> list[tuple[str, str]]:
    """Layer x layer CKA of base (rows) vs fine-tuned (columns) per task, on 0-1."""
    rows = results.compare_rows
    plt = pyplot()
    written = []
    for task, detail in results.detail.items():
        result = detail.by_rows.get(rows)
        if result is None:
            continue
        drawn = Drawn()
        matrix = np.asarray(result.values["cka"], dtype=np.float64)
        labels = short(result.layers)
        figure, ax = plt.subplots(figsize=(5.2, 4.4))
        ax.set_gid(task)
        image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis", origin="lower")
        ticks = range(len(labels))
        ax.set_xticks(ticks, labels)
        ax.set_yticks(ticks, labels)
        ax.set_xlabel(f"fine-tuned ({task}) layer")
        ax.set_ylabel("base layer")
        for i in ticks:
            for j in ticks:
                drawn.cell(task, f"base {result.layers[i]}", f"fine-tuned {result.layers[j]}", matrix[i, j])
                if np.isfinite(matrix[i, j]):
                    ax.text(
                        j,
                        i,
                        f"{matrix[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if matrix[i, j] < 0.6 else "black",
                    )
        figure.colorbar(image, ax=ax, label="linear CKA")
        ax.set_title(f"{task}: CKA on {detail.set}")
        name = f"heatmap_{task}.png"
        drawn.save(figure, folder, name)
        written.append(
            (
                name,
                f"Linear CKA between every layer of the base model (rows) and of the model "
                f"fine-tuned on {task} (columns), on {detail.set} ({rows}); the diagonal is the "
                "similarity curve.",
            )
        )
    return written


def isotropy_by_layer(results: StudyResult, folder: Path) -> list[tuple[str, str]]:
    """Per rows kind: isotropy by layer of each fine-tuned model and of the base model on the
    same set (one base line per detail set: each model is compared on its own inputs)."""
    plt = pyplot()
    written = []
    for kind in results.isotropy_rows:
        models = {task: d for task, d in results.detail.items() if kind in d.by_rows}
        if not models:
            continue
        sets = list(dict.fromkeys(d.set for d in models.values()))
        styles = ["-", "--", "-.", ":"]
        drawn = Drawn()
        figure, axes = plt.subplots(
            1, len(ISOTROPY_KEYS), figsize=(4 * len(ISOTROPY_KEYS), 3.6), squeeze=False
        )
        for ax, (key, label) in zip(axes[0], ISOTROPY_KEYS, strict=True):
            for s, set_name in enumerate(sets):
                style = styles[s % len(styles)]
                on_set = {task: d.by_rows[kind] for task, d in models.items() if d.set == set_name}
                some = next(iter(on_set.values()))
                suffix = f" on {set_name}" if len(sets) > 1 else ""
                # the base model on this set (black), then each model fine-tuned and measured on it
                lines = [("base", some.isotropy["base"][key], {"color": "black"})]
                lines += [(task, r.isotropy["finetuned"][key], {}) for task, r in on_set.items()]
                for series, values, color in lines:
                    drawn.line(ax, key, f"{series}{suffix}", some.layers, values, marker="o", ls=style,
                               **color)
            ax.set_xticks(np.arange(len(some.layers)), short(some.layers))
            ax.set_xlabel("layer")
            ax.set_title(label, fontsize=9)
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=7, framealpha=0.6)
        name = f"isotropy_{kind}.png"
        drawn.save(figure, folder, name)
        written.append(
            (
                name,
                f"Isotropy of the {kind} rows by layer: each fine-tuned model and the base model "
                f"on the same inputs (its task's detail set: {', '.join(sets)}). A mean cosine near "
                "1 and a low effective rank mean an anisotropic space, dominated by a few "
                "directions.",
            )
        )
    return written


def probes(results: StudyResult, folder: Path) -> list[tuple[str, str]]:
    """Per probe eval set: accuracy (%) by layer on a 0-100 axis with its bands, base
    vs each fine-tuned model, a panel per task; selectivity (points) below."""
    plt = pyplot()
    written = []
    by_model = results.probes or {}
    if not by_model:
        return written
    sets = list(next(iter(by_model.values())))
    for set_name in sets:
        drawn = Drawn()
        some = by_model["base"][set_name] if "base" in by_model else next(iter(by_model.values()))[set_name]
        tasks = some.tasks
        has_selectivity = any(r[set_name].selectivity is not None for r in by_model.values())
        n_rows = 2 if has_selectivity else 1
        figure, axes = plt.subplots(
            n_rows, len(tasks), figsize=(4.2 * len(tasks), 3.3 * n_rows), squeeze=False
        )
        for j, task in enumerate(tasks):
            metric = some.main_metric(task)
            shown = []  # the models' lines (each seed's thin line stays out of the legend)
            for model, per_set in by_model.items():
                result = per_set[set_name]
                style = dict(color="black") if model == "base" else {}
                values = 100 * result.scores[metric][:, j]
                bounds = (None, None)
                if metric in PROPORTIONS and result.n_eval.get(task):
                    bounds = tuple(100 * b[:, j] for b in result.interval(metric))
                series = model + (f", mean of {len(result.seeds)} seeds" if result.seeds else "")
                line = drawn.line(
                    axes[0][j], f"{task} {metric}", series, result.layers, values, *bounds, marker="o",
                    **style,
                )
                shown.append(line)
                each = result.seed_scores.get(metric, [])
                for seed, seed_values in zip(result.seeds or [], each, strict=False):
                    drawn.line(axes[0][j], f"{task} {metric}", f"{model}, seed {seed}", result.layers,
                               100 * seed_values[:, j], color=line.get_color(), lw=0.7, alpha=0.45)
                if has_selectivity and result.selectivity is not None:
                    drawn.line(
                        axes[1][j],
                        f"{task} selectivity",
                        model,
                        result.layers,
                        100 * result.selectivity[:, j],
                        marker="o",
                        color=line.get_color(),
                    )
            axes[0][j].set_title(f"{task} ({metric})", fontsize=9)
            axes[0][j].set_ylim(0, 100)
            axes[0][j].set_ylabel(f"{metric} (%)")
            for row in range(n_rows):
                axes[row][j].set_xticks(np.arange(len(some.layers)), short(some.layers))
                axes[row][j].set_xlabel("layer")
                axes[row][j].grid(alpha=0.3)
            if has_selectivity:
                axes[1][j].set_ylim(*selectivity_range(by_model, set_name, j))
                axes[1][j].axhline(0.0, color="gray", lw=0.8)
                axes[1][j].set_title(f"{task} selectivity (task - control)", fontsize=9)
                axes[1][j].set_ylabel("points")
            axes[0][j].legend(handles=shown, fontsize=7, framealpha=0.6, loc="lower right")
        name = f"probes_{set_name}.png"
        drawn.save(figure, folder, name)
        domain = " (in-domain)" if set_name in results.probe_in_domain else ""
        written.append(
            (
                name,
                f"Probe accuracy by layer on {set_name}{domain}, the base model (black) vs each "
                f"fine-tuned model, on a 0-100% axis; {_probe_bands(by_model, set_name)} Below: "
                "selectivity, accuracy minus that of a control task (points).",
            )
        )
    return written


def _probe_bands(by_model: dict, set_name: str) -> str:
    results = [r[set_name] for r in by_model.values()]
    seeded = [r for r in results if r.seeds]
    level = next((r.level for r in results if r.level is not None), 0.95)
    if any(r.interval_method == "sentences" for r in results):
        text = f"bands are {level:.0%} bootstrap intervals over the eval sentences"
    else:
        text = "bands are 95% Wilson intervals over the eval rows"
    if not seeded:
        return text + "."
    return (f"{text}, and for a task with seeds (the mean over its {len(seeded[0].seeds)} seeds) the "
            f"{seeded[0].level:.0%} Multi-Bootstrap interval over seeds and eval sentences; thin lines: each "
            "seed.")


def selectivity_range(by_model: dict, set_name: str, j: int) -> tuple[float, float]:
    """At least -10 to +10 points, wider where a value lies outside: a difference of a
    point or two is not drawn as a cliff."""
    values = [100 * r[set_name].selectivity[:, j] for r in by_model.values()
              if r[set_name].selectivity is not None]
    finite = np.concatenate(values)
    finite = finite[np.isfinite(finite)]
    low = min(-SELECTIVITY_SPAN, float(finite.min()) - 1) if finite.size else -SELECTIVITY_SPAN
    high = max(SELECTIVITY_SPAN, float(finite.max()) + 1) if finite.size else SELECTIVITY_SPAN
    return low, high


def ablation_name(entry) -> str:
    r = entry.result
    return f"ablation_{r.kind}_{entry.name}" + (f"_{r.side}" if r.side else "") + ".png"


def ablations(results: StudyResult, folder: Path) -> list[tuple[str, str]]:
    """Per ablation: the metric (%) by k on 0-100 with the no-learning baseline."""
    plt = pyplot()
    written = []
    for entry in results.ablations:
        r = entry.result
        drawn = Drawn()
        figure, ax = plt.subplots(figsize=(6, 3.8))
        r.plot(axes=ax)
        ax.set_title(f"{r.kind} ablation of {entry.name}, {model_label(r.base)}")
        ax.set_gid(entry.name)
        for row, value in zip(r.rows, r.percents(), strict=True):
            drawn.cell(entry.name, r.series(), str(row["k"]), value)
        scale = 1 if r.percent else 100
        for i, seed in enumerate(r.seeds):
            for row in r.rows:
                drawn.cell(entry.name, f"seed {seed}", str(row["k"]), row["values"][i] * scale)
        if r.baseline is not None:
            drawn.cell(entry.name, f"no learning: {r.baseline['rule']}", "", r.baseline_percent())
        name = ablation_name(entry)
        drawn.save(figure, folder, name)
        base = f" Dotted: the no-learning baseline ({r.baseline['rule']})." if r.baseline is not None else ""
        written.append((name, f"{r.kind} ablation of {entry.name}: {r.metric} (%) by k.{base}"))
    return written


PLOTS = (similarity_by_layer, heatmaps, probes, ablations, isotropy_by_layer)
