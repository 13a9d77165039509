"""The report's figures of what the layers did while each task trained (a study with
``track``): a layer x step heatmap of the similarity to the base on a fixed 0-1 scale, and
each layer's parameter change by step; with seeds, the mean over seeds and their range."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...finetuning.trajectory import Trajectory
from ..results import StudyResult
from .drawing import Drawn, pyplot
from .plots import short


def _common(trajectories: list[Trajectory]) -> tuple[list[int], dict, dict]:
    """The steps every run recorded, and each table over the runs on them: {key: [runs,
    steps, layers]}."""
    steps = sorted(set.intersection(*(set(t.steps) for t in trajectories)))

    def stacked(table: str) -> dict:
        first = getattr(trajectories[0], table)
        rows = [[t.steps.index(s) for s in steps] for t in trajectories]
        return {key: np.stack([getattr(t, table)[key][at] for t, at in zip(trajectories, rows, strict=True)])
                for key in first}

    return steps, stacked("values"), stacked("change")


def trajectory_figures(results: StudyResult, folder: Path) -> list[tuple[str, str]]:
    """Per tracked task: its first measure by layer and step (mean over seeds) and the
    parameter change of each layer by step (with the seeds' range)."""
    written = []
    for name, task in results.tasks.items():
        runs = task.trajectories()
        if not runs:
            continue
        plt = pyplot()
        drawn = Drawn()
        first = runs[0]
        measure = first.measures[0]
        steps, values, change = _common(runs)
        mean = values[measure].mean(axis=0)  # [steps, layers]
        figure, (heat, curves) = plt.subplots(1, 2, figsize=(11, 4.0))
        heat.set_gid(f"{name} {measure}")
        image = heat.imshow(mean.T, vmin=0, vmax=1, cmap="viridis", origin="lower", aspect="auto",
                            interpolation="nearest")
        every = max(1, len(steps) // 10)
        heat.set_xticks(range(0, len(steps), every), [str(s) for s in steps[::every]])
        heat.set_yticks(range(len(first.layers)), short(first.layers))
        heat.set_xlabel("optimizer step")
        heat.set_ylabel("layer")
        figure.colorbar(image, ax=heat, label=f"{measure.upper()} to the base (1: unchanged)")
        for i, step in enumerate(steps):
            for j, layer in enumerate(first.layers):
                drawn.cell(f"{name} {measure}", layer, str(step), mean[i, j])
        moved = change["total"]  # [runs, steps, layers]
        x = [str(s) for s in steps]
        for j, layer in enumerate(first.layers):
            seeds = moved[:, :, j]
            low, high = (seeds.min(axis=0), seeds.max(axis=0)) if len(runs) > 1 else (None, None)
            drawn.line(curves, f"{name} change", layer, x, moved[:, :, j].mean(axis=0), low, high,
                       color=plt.cm.viridis(j / max(1, len(first.layers) - 1)))
        curves.set_xticks(range(0, len(steps), every), x[::every])
        curves.set_xlabel("optimizer step")
        curves.set_ylabel("||W - W0|| / ||W0||")
        curves.set_ylim(bottom=0)
        curves.grid(alpha=0.3)
        curves.legend(fontsize=7, framealpha=0.6, loc="upper left")
        over = f", mean of {len(runs)} seeds" if len(runs) > 1 else ""
        figure.suptitle(f"{name} while it trained{over}", fontsize=10)
        figure.tight_layout()
        file = f"trajectory_{name}.png"
        drawn.save(figure, folder, file)
        band = f" The mean over {len(runs)} seeds; bands: their range." if len(runs) > 1 else ""
        written.append((file, (
            f"{name} while it trained: left, each layer's {measure.upper()} to the base model on the "
            f"tracking set ({first.n_inputs} inputs, {first.rows}) every {first.every} optimizer steps, on a "
            "fixed 0-1 scale (1: unchanged); right, each layer's parameter change from the base, "
            f"||W - W0|| / ||W0|| over its weights.{band}")))
    return written
