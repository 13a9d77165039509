"""A ``LayerComparison`` shown: a text table, the figure (curves on a shared 0-1 axis, or
layer x layer heatmaps) and the CSV of the numbers behind both. Each function takes the
comparison (``result``) and reads its layers, values and intervals."""

from __future__ import annotations

import csv
import io

import numpy as np

from .._util import files


def similarity_text(value: float) -> str:
    """Three decimals, up to six where three would round a value near 1 to 1.000 (a
    change of 1e-5 is shown as such); "-" for NaN."""
    if value is None or not np.isfinite(value):
        return "-"
    for digits in range(3, 7):
        if round(float(value), digits) != 1.0:
            return f"{value:.{digits}f}"
    return f"{value:.3f}"  # within 5e-7 of 1: shown as 1


def table(result) -> str:
    """Layer by measure (pairs="diagonal", with intervals when there are); one layer x layer
    block per measure (pairs="all", base layers on rows)."""
    names = list(result.values)
    if result.pairs == "diagonal":
        header = ["layer", *names]
        rows = [header]
        for i, layer in enumerate(result.layers):
            cells = [layer]
            for name in names:
                cell = similarity_text(result.values[name][i])
                if name in result.intervals:
                    low, high = result.intervals[name]
                    cell += f" [{similarity_text(low[i])}, {similarity_text(high[i])}]"
                cells.append(cell)
            rows.append(cells)
        return _aligned(rows)
    blocks = []
    for name in names:
        rows = [[f"{name}: base \\ fine-tuned", *result.layers]]
        rows += [
            [layer, *(similarity_text(v) for v in result.values[name][i])]
            for i, layer in enumerate(result.layers)
        ]
        blocks.append(_aligned(rows))
    return "\n\n".join(blocks)


def _aligned(rows: list[list[str]]) -> str:
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows)


def csv_text(result) -> str:
    """``measure, base_layer, finetuned_layer, value, low, high``: one row per value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["measure", "base_layer", "finetuned_layer", "value", "low", "high"])
    for name, values in result.values.items():
        bounds = result.intervals.get(name)
        for index in np.ndindex(values.shape):
            i, j = (index[0], index[0]) if result.pairs == "diagonal" else index
            low, high = (bounds[0][index], bounds[1][index]) if bounds is not None else (None, None)
            writer.writerow(
                [
                    name,
                    result.layers[i],
                    result.layers[j],
                    *(
                        "" if v is None or not np.isfinite(v) else repr(float(v))
                        for v in (values[index], low, high)
                    ),
                ]
            )
    return out.getvalue()


def plot(result, path=None, csv_path=None):
    """The figure: one panel per measure, each layer's similarity on one shared axis from 0
    (lower if a value is negative) to 1 with its interval band (pairs="diagonal"), or a
    0-1 heatmap per measure (pairs="all"). Returns the matplotlib Figure; writes the PNG
    to ``path`` and the numbers to ``csv_path`` when given."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    names = list(result.values)
    ticks = ["emb" if n == "embeddings" else n.replace("layer", "").strip(" _") for n in result.layers]
    figure, axes = plt.subplots(
        1, len(names), figsize=(4.4 * len(names), 3.8), squeeze=False, sharey=result.pairs == "diagonal"
    )
    if result.pairs == "diagonal":
        found = [np.asarray(v, dtype=np.float64) for v in result.values.values()]
        found += [np.asarray(b[0], dtype=np.float64) for b in result.intervals.values()]
        finite = np.concatenate(found)
        lowest = min(0.0, float(np.nanmin(finite))) if np.isfinite(finite).any() else 0.0
    for ax, name in zip(axes[0], names, strict=True):
        x = np.arange(len(result.layers))
        if result.pairs == "diagonal":
            (line,) = ax.plot(x, result.values[name], marker="o", label=name)
            if name in result.intervals:
                low, high = result.intervals[name]
                ax.fill_between(x, low, high, color=line.get_color(), alpha=0.15, lw=0)
            ax.set_ylim(lowest - (0.05 if lowest < 0 else 0), 1.02)
            ax.axhline(1.0, color="gray", lw=0.8, ls=":")
            ax.set_xticks(x, ticks)
            ax.set_xlabel("layer")
            ax.set_ylabel("similarity, base vs fine-tuned (1: unchanged)")
            ax.grid(alpha=0.3)
        else:
            image = ax.imshow(result.values[name], vmin=0, vmax=1, cmap="viridis", origin="lower")
            ax.set_xticks(x, ticks)
            ax.set_yticks(x, ticks)
            ax.set_xlabel("fine-tuned layer")
            ax.set_ylabel("base layer")
            figure.colorbar(image, ax=ax)
        ax.set_title(name.upper(), fontsize=10)
    figure.tight_layout()
    if path is not None:
        files.atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=110, format="png"))
        plt.close(figure)
    if csv_path is not None:
        text = csv_text(result)
        files.atomic_write(csv_path, lambda tmp: open(tmp, "w", encoding="utf-8").write(text))
    return figure
