"""The study's PNG plots, each drawn from its ``StudyResult`` alone. Every function takes the
results and a folder and returns [(file name, caption)] of what it wrote."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..._util import files
from ...compare.models import LayerComparison
from ...probes.result import PROPORTIONS
from ...similarity import registry
from ..results import StudyResult

ISOTROPY_KEYS = (
    ("mean_cosine", "mean cosine between rows"),
    ("effective_rank", "effective rank"),
    ("top_k_variance_share", "top-k dimensions' share of variance"),
    ("dim_mean_abs_max", "largest |mean| of a dimension"),
)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> None:
    figure.tight_layout()
    files.atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=110, format="png"))
    _pyplot().close(figure)


def _array(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _short(layers: list[str]) -> list[str]:
    return ["emb" if name == "embeddings" else name.replace("layer", "").strip(" _") for name in layers]


def similarity_by_layer(results: StudyResult, folder: Path) -> list[tuple[str, str]]:
    """One figure per measure: a panel per task, a line per evaluation set (solid in-domain,
    dashed out-of-domain) with its interval band."""
    plt = _pyplot()
    written = []
    compare = results.compare
    tasks = list(compare)
    first = compare[tasks[0]][next(iter(compare[tasks[0]]))]
    if first.pairs != "diagonal":
        return written
    measures = [m for m in registry.MEASURES if m in first.values]
    for measure in measures:
        figure, axes = plt.subplots(1, len(tasks), figsize=(4.6 * len(tasks), 3.8), squeeze=False)
        for ax, task in zip(axes[0], tasks, strict=True):
            for set_name, result in compare[task].items():
                x = np.arange(len(result.layers))
                in_domain = results.in_domain(task, set_name)
                (line,) = ax.plot(
                    x,
                    result.values[measure],
                    marker="o",
                    ls="-" if in_domain else "--",
                    label=f"{set_name} ({'in' if in_domain else 'out of'} domain)",
                )
                bounds = result.intervals.get(measure)
                if bounds is not None:
                    ax.fill_between(x, bounds[0], bounds[1], color=line.get_color(), alpha=0.2, lw=0)
            ax.set_xticks(x, _short(result.layers))
            ax.set_xlabel("layer")
            ax.set_ylabel(f"{measure} (base vs fine-tuned)")
            ax.set_title(f"{task}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        name = f"similarity_{measure}.png"
        _save(figure, folder / name)
        level = first.ci
        band = (
            f" Bands: {level:.0%} jackknife intervals over {first.ci_groups} groups of inputs."
            if level
            else ""
        )
        written.append(
            (
                name,
                f"{_described(measure, first)}, base vs fine-tuned model, layer by layer, "
                f"on every evaluation set (solid: in-domain for the task, dashed: out-of-domain)."
                f"{band}",
            )
        )
    return written


def _described(measure: str, result: LayerComparison) -> str:
    if measure == "rsa":
        return (f"RSA (Pearson correlation of the two models' {result.rdm}-distance RDMs over all "
                "pairs of rows)")
    return registry.MEASURES[measure].summary


def heatmaps(results: StudyResult, folder: Path) -> list[tuple[str, str]]:
    """Layer x layer CKA of base (rows) vs fine-tuned (columns) per task."""
    rows = results.compare_rows
    plt = _pyplot()
    written = []
    for task, detail in results.detail.items():
        result = detail.by_rows.get(rows)
        if result is None:
            continue
        matrix = result.values["cka"]
        labels = _short(result.layers)
        figure, ax = plt.subplots(figsize=(5.2, 4.4))
        image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis", origin="lower")
        ticks = range(len(labels))
        ax.set_xticks(ticks, labels)
        ax.set_yticks(ticks, labels)
        ax.set_xlabel(f"fine-tuned ({task}) layer")
        ax.set_ylabel("base layer")
        for i in ticks:
            for j in ticks:
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
        _save(figure, folder / name)
        written.append(
            (
                name,
                f"Linear CKA between every layer of the base model (rows) and of the model "
                f"fine-tuned on {task} (columns), on {detail.set} ({rows}); the diagonal is "
                "the similarity curve.",
            )
        )
    return written


def isotropy_by_layer(results: StudyResult, folder: Path) -> list[tuple[str, str]]:
    """Per rows kind: isotropy diagnostics by layer, base vs each fine-tuned model."""
    plt = _pyplot()
    written = []
    for kind in results.isotropy_rows:
        models = {task: d.by_rows[kind] for task, d in results.detail.items() if kind in d.by_rows}
        if not models:
            continue
        figure, axes = plt.subplots(
            1, len(ISOTROPY_KEYS), figsize=(4 * len(ISOTROPY_KEYS), 3.4), squeeze=False
        )
        for ax, (key, label) in zip(axes[0], ISOTROPY_KEYS, strict=True):
            some = next(iter(models.values()))
            x = np.arange(len(some.layers))
            ax.plot(x, _array(some.isotropy["base"][key]), marker="o", color="black", label="base")
            for task, result in models.items():
                ax.plot(x, _array(result.isotropy["finetuned"][key]), marker="o", label=task)
            ax.set_xticks(x, _short(some.layers))
            ax.set_xlabel("layer")
            ax.set_title(label, fontsize=9)
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=7)
        name = f"isotropy_{kind}.png"
        _save(figure, folder / name)
        written.append(
            (
                name,
                f"Isotropy of the {kind} rows by layer, base vs each fine-tuned model (each on "
                "its task's detail set): a mean cosine near 1 and a low effective rank mean an "
                "anisotropic space, dominated by a few directions.",
            )
        )
    return written


def probes(results: StudyResult, folder: Path) -> list[tuple[str, str]]:
    """Per probe eval set: accuracy by layer (95% Wilson bands) for base vs each fine-tuned
    model, one panel per probe task, and selectivity below."""
    plt = _pyplot()
    written = []
    by_model = results.probes or {}
    if not by_model:
        return written
    sets = list(next(iter(by_model.values())))
    for set_name in sets:
        some = by_model["base"][set_name]
        tasks = some.tasks
        has_selectivity = any(r[set_name].selectivity is not None for r in by_model.values())
        n_rows = 2 if has_selectivity else 1
        figure, axes = plt.subplots(
            n_rows, len(tasks), figsize=(4.2 * len(tasks), 3.2 * n_rows), squeeze=False
        )
        for j, task in enumerate(tasks):
            for model, per_set in by_model.items():
                result = per_set[set_name]
                x = np.arange(len(result.layers))
                metric = result.main_metric(task)
                style = dict(color="black") if model == "base" else {}
                (line,) = axes[0][j].plot(x, result.scores[metric][:, j], marker="o", label=model, **style)
                if metric in PROPORTIONS and result.n_eval.get(task):
                    low, high = result.interval(metric)
                    axes[0][j].fill_between(x, low[:, j], high[:, j], color=line.get_color(), alpha=0.2, lw=0)
                if has_selectivity and result.selectivity is not None:
                    axes[1][j].plot(
                        x, result.selectivity[:, j], marker="o", label=model, color=line.get_color()
                    )
            axes[0][j].set_title(f"{task} ({metric})", fontsize=9)
            for row in range(n_rows):
                axes[row][j].set_xticks(x, _short(result.layers))
                axes[row][j].grid(alpha=0.3)
            if has_selectivity:
                axes[1][j].set_title(f"{task} selectivity (task - control)", fontsize=9)
                axes[1][j].set_xlabel("layer")
        axes[0][0].legend(fontsize=7)
        name = f"probes_{set_name}.png"
        _save(figure, folder / name)
        domain = "in-domain" if set_name in results.probe_in_domain else ""
        written.append(
            (
                name,
                f"Probe accuracy by layer on {set_name}{f' ({domain})' if domain else ''}, the "
                "base model (black) vs each fine-tuned model; bands are 95% Wilson intervals. "
                "Below: selectivity, accuracy minus that of a control task.",
            )
        )
    return written


def ablations(results: StudyResult, folder: Path) -> list[tuple[str, str]]:
    written = []
    for entry in results.ablations:
        result = entry.result
        name = f"ablation_{result.kind}_{entry.name}" + (f"_{result.side}" if result.side else "") + ".png"
        result.plot(folder / name)
        written.append((name, f"{result.kind} ablation on {entry.name}: {result.metric} by k."))
    return written


PLOTS = (similarity_by_layer, heatmaps, probes, ablations, isotropy_by_layer)
