"""The report's figures of what the layers did while each task trained (a study with
``track``): ``finetuning.trajectory.plot_trajectories`` per task (with seeds, the mean over
seeds and their range), and the CSV of the numbers it draws."""

from __future__ import annotations

from pathlib import Path

from ...finetuning.trajectory import plot_trajectories, stacked
from ..results import StudyResult
from .drawing import Drawn


def trajectory_figures(results: StudyResult, folder: Path) -> list[tuple[str, str]]:
    """Per tracked task: its first measure by layer and step (mean over seeds) and the
    parameter change of each layer by step (with the seeds' range)."""
    written = []
    for name, task in results.tasks.items():
        runs = task.trajectories()
        if not runs:
            continue
        first = runs[0]
        measure = first.measures[0]
        steps, values, change = stacked(runs)
        drawn = Drawn()
        mean, moved = values[measure].mean(axis=0), change["total"]
        for i, step in enumerate(steps):
            for j, layer in enumerate(first.layers):
                drawn.cell(f"{name} {measure}", layer, str(step), mean[i, j])
        several = len(runs) > 1
        for j, layer in enumerate(first.layers):
            for i, step in enumerate(steps):
                seeds = moved[:, i, j]
                drawn.rows.append((f"{name} change", layer, str(step), seeds.mean(),
                                   seeds.min() if several else None, seeds.max() if several else None))
        file = f"trajectory_{name}.png"
        drawn.save(plot_trajectories(runs, title=name, measure=measure), folder, file)
        band = f" The mean over {len(runs)} seeds; bands: their range." if several else ""
        written.append((file, (
            f"{name} while it trained: left, each layer's {measure.upper()} to the base model on the "
            f"tracking set ({first.n_inputs} inputs, {first.rows}) every {first.every} optimizer steps, on a "
            "fixed 0-1 scale (1: unchanged); right, each layer's parameter change from the base, "
            f"||W - W0|| / ||W0|| over its weights.{band}")))
    return written
