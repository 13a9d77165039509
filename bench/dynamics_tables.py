"""The tables of docs/DYNAMICS.md, from a run folder of a tracked study
(studies/merchant2020_seeds.yaml, studies/dynamics_rte.yaml).

    python bench/dynamics_tables.py RUN_DIR

Reads RUN_DIR/results.json: every task's runs and their trajectories. Prints, per task:
when each layer moved (the first recorded step by which its similarity to the base, and
its parameter change, reached half of their final change; mean over seeds), how early the
final shape across layers was there (the correlation over layers between each step's
change and the final one), and per run the early trajectory of the top layer beside the
run's final metric (do runs that end degenerate show it early?).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from ftlens.activations.capture import short_layer_names
from ftlens.finetuning.trajectory import Trajectory, stacked


def half_steps(steps: list[int], moved: np.ndarray) -> list[int | None]:
    """Per layer, the first step at which ``moved`` [steps, layers] (0 at the start) reached
    half its final value (None where it never moved)."""
    out = []
    for j in range(moved.shape[1]):
        final = moved[-1, j]
        if not final > 1e-9:
            out.append(None)
            continue
        out.append(next(s for s, v in zip(steps, moved[:, j], strict=True) if v >= final / 2))
    return out


def order_table(name: str, runs: list[Trajectory]) -> str:
    steps, values, change = stacked(runs)
    layers = short_layer_names(runs[0].layers)
    lines = [f"| {name}: half of the final change reached at step | {' | '.join(layers)} |",
             "|---|" + "---:|" * len(layers)]
    tables = {f"1 - {m.upper()}": 1 - values[m].mean(axis=0) for m in values}
    tables["parameter change"] = change["total"].mean(axis=0)
    for label, moved in tables.items():
        moved = moved - moved[0]  # from step 0 (a re-initialized layer starts away from the base)
        cells = ["-" if s is None else str(s) for s in half_steps(steps, moved)]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return "\n".join(lines)


def shape_table(name: str, runs: list[Trajectory]) -> str:
    """At each step, the Pearson correlation over layers of 1 - similarity with its final
    profile (mean over seeds): how early the final shape is there."""
    steps, values, _ = stacked(runs)
    header = " | ".join(f"r with the final profile ({m.upper()})" for m in values)
    lines = [f"| {name}: step | {header} |", "|---:|" + "---:|" * len(values)]
    for i, step in enumerate(steps[1:], start=1):
        cells = []
        for m in values:
            profile = 1 - values[m].mean(axis=0)
            now, final = profile[i], profile[-1]
            r = np.corrcoef(now, final)[0, 1] if now.std() > 0 and final.std() > 0 else np.nan
            cells.append(f"{r:.3f}")
        lines.append(f"| {step} | {' | '.join(cells)} |")
    return "\n".join(lines)


def runs_table(results: dict) -> str:
    """Per run: its final metric, whether it ended at or below the no-learning baseline,
    its top layer's similarity and parameter change at a quarter, half and all of
    training, and the top layer's lowest similarity on the way (and its step)."""
    lines = ["| task | seed | final metric | at or below baseline | top-layer similarity at 1/4, 1/2, end | "
             "lowest (step) | top-layer change at 1/4, 1/2, end |", "|---|---:|---:|---|---|---|---|"]
    for name, task in results["tasks"].items():
        baseline = (task.get("baseline") or {}).get("value")
        for run in task.get("runs") or []:
            if not run.get("trajectory"):
                continue
            t = Trajectory.from_dict(run["trajectory"])
            value = run["metrics"][f"eval_{task['metric']}"]
            at = [int(round(f * (len(t.steps) - 1))) for f in (0.25, 0.5, 1.0)]
            measure = t.measures[0]
            sims = ", ".join(f"{t.values[measure][i, -1]:.3f}" for i in at)
            moved = ", ".join(f"{t.change['total'][i, -1]:.4f}" for i in at)
            low = "yes" if baseline is not None and value <= baseline + 1e-12 else "no"
            top = t.values[measure][:, -1]
            lowest = f"{top.min():.3f} ({t.steps[int(top.argmin())]})"
            cells = [name, run["seed"], f"{value:.4f}", low, f"{measure} {sims}", lowest, moved]
            lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def main(run_dir: str) -> None:
    results = json.loads((Path(run_dir) / "results.json").read_text())
    for name, task in results["tasks"].items():
        found = [r.get("trajectory") for r in task.get("runs") or []] or [task.get("trajectory")]
        runs = [Trajectory.from_dict(t) for t in found if t]
        if not runs:
            continue
        print(f"### {name} ({len(runs)} run{'s' if len(runs) > 1 else ''})\n")
        print(order_table(name, runs) + "\n")
        print(shape_table(name, runs) + "\n")
    print("### Each run\n")
    print(runs_table(results))


if __name__ == "__main__":
    main(*sys.argv[1:])
