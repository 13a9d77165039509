"""The seed tables of docs/REPLICATION.md, from a run folder of studies/merchant2020_seeds.yaml.

    python bench/replication_seed_tables.py RUN_DIR

Reads RUN_DIR/results.json (the study over seeds: every interval is a Multi-Bootstrap over
the seeds and the eval inputs) and, for the differences between two tasks on the same
sentences, each seed's comparison in RUN_DIR/stages. Prints one Markdown table per claim.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np
from ftlens.compare.models import LayerComparison
from ftlens.compare.seeds import between_procedures
from replication_tables import _layers, records


def _interval(value: float, low: float, high: float, scale: float = 1.0, digits: int = 3) -> str:
    return f"{scale * value:.{digits}f} [{scale * low:.{digits}f}, {scale * high:.{digits}f}]"


def _signed(value: float, low: float, high: float, scale: float, digits: int) -> str:
    v, lo, hi = (round(scale * x, digits) + 0.0 for x in (value, low, high))  # + 0.0: no "-0.000"
    return f"{v:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def metric_table(results: dict) -> str:
    lines = ["| task | metric | each seed | mean ± SD | Multi-Bootstrap 95% |",
             "| --- | --- | --- | --- | --- |"]
    for name, task in results["tasks"].items():
        scale = 1 if task["metric"] in ("las", "uas", "f1", "exact_match") else 100
        values = scale * np.array([r["metrics"][f"eval_{task['metric']}"] for r in task["runs"]])
        b = task["bootstrap"]
        lines.append(f"| {name} | {task['metric']} | {', '.join(f'{v:.1f}' for v in values)} | "
                     f"{values.mean():.1f} ± {values.std(ddof=1):.1f} | "
                     f"{_interval(b['estimate'], b['low'], b['high'], scale, 1)} |")
    return "\n".join(lines)


def similarity_table(results: dict, measure: str) -> str:
    """Rows: task x set; columns: each layer's mean over seeds with its interval."""
    lines = []
    for task, sets in results["compare"].items():
        for set_name, c in sets.items():
            if not lines:
                layers = _layers(c["layers"])
                lines = [f"| task | set | {' | '.join(layers)} |", "|" + " --- |" * (len(layers) + 2)]
            low, high = c["intervals"][measure]
            cells = [_interval(v, lo, hi) for v, lo, hi in zip(c[measure], low, high, strict=True)]
            lines.append(f"| {task} | {set_name} | {' | '.join(cells)} |")
    return "\n".join(lines)


def _per_seed(stages: dict, task: str, set_name: str) -> tuple[list[LayerComparison], list[int]]:
    found = sorted((int(name.split("/")[2][len("seed-"):]), LayerComparison.from_dict(r["result"]))
                   for name, r in stages.items()
                   if name.startswith(f"compare/{task}/seed-") and name.endswith(f"/{set_name}"))
    return [c for _, c in found], [s for s, _ in found]


def task_difference_table(results: dict, stages: dict, measure: str) -> str:
    """Each pair of tasks on each set: b minus a per layer (unpaired: the tasks' seeds are
    different runs), on the same draws of the same input groups."""
    tasks = list(results["compare"])
    lines = []
    for a, b in itertools.combinations(tasks, 2):
        for set_name in results["compare"][a]:
            a_runs, a_seeds = _per_seed(stages, a, set_name)
            b_runs, b_seeds = _per_seed(stages, b, set_name)
            d = between_procedures(a_runs, a_seeds, b_runs, b_seeds, paired=False)[measure]
            if not lines:
                layers = _layers(a_runs[0].layers)
                lines = [f"| {measure.upper()} difference | set | {' | '.join(layers)} |",
                         "|" + " --- |" * (len(layers) + 2)]
            cells = [_signed(e, lo, hi, 1, 3) for e, lo, hi in zip(d.estimate, d.low, d.high, strict=True)]
            lines.append(f"| {b} minus {a} | {set_name} | {' | '.join(cells)} |")
    return "\n".join(lines)


def probe_table(results: dict) -> str:
    """Rows: model x set x task: accuracy per layer (%), and for a task with seeds its change
    from the base (points) with its interval."""
    lines = []
    for model, sets in results["probes"].items():
        for set_name, p in sets.items():
            accuracy = np.array(p["scores"]["accuracy"], dtype=np.float64)
            if not lines:
                layers = _layers(p["layers"])
                lines = [f"| model | set | task | {' | '.join(layers)} |", "|" + " --- |" * (len(layers) + 3)]
            change = ((results.get("probe_changes") or {}).get(model) or {}).get(set_name, {}).get("accuracy")
            for j, task in enumerate(p["tasks"]):
                lines.append(f"| {model} | {set_name} | {task} | "
                             + " | ".join(f"{100 * a:.1f}" for a in accuracy[:, j]) + " |")
                if change is not None:
                    e, lo, hi = (np.array(change[k], dtype=np.float64)[:, j] for k in ("estimate", "low",
                                                                                        "high"))
                    cells = [_signed(x, y, z, 100, 1) for x, y, z in zip(e, lo, hi, strict=True)]
                    lines.append(f"| {model} minus base | {set_name} | {task} | {' | '.join(cells)} |")
    return "\n".join(lines)


def ablation_table(results: dict) -> str:
    lines = ["| sweep | k | metric | each seed | mean [Multi-Bootstrap 95%] |",
             "| --- | --- | --- | --- | --- |"]
    for a in results["ablations"]:
        scale = 1 if a["percent"] else 100
        for row in a["rows"]:
            b = row["bootstrap"]
            seeds = ", ".join(f"{scale * v:.1f}" for v in row["values"])
            lines.append(f"| {a['kind']} {a['name']} | {row['k']} | {a['metric']} | {seeds} | "
                         f"{_interval(b['estimate'], b['low'], b['high'], scale, 1)} |")
    return "\n".join(lines)


def main() -> None:
    run = Path(sys.argv[1])
    results = json.loads((run / "results.json").read_text())
    stages = records(run)
    for title, table in (("Task metrics over seeds", metric_table(results)),
                         ("RSA, base vs fine-tuned, mean over seeds [Multi-Bootstrap 95%]",
                          similarity_table(results, "rsa")),
                         ("Linear CKA, base vs fine-tuned", similarity_table(results, "cka")),
                         ("RSA, one task minus another on the same sentences",
                          task_difference_table(results, stages, "rsa")),
                         ("Probe accuracy (%) and the change from the base (points)", probe_table(results)),
                         ("Freeze ablations over seeds", ablation_table(results))):
        print(f"### {title}\n\n{table}\n")


if __name__ == "__main__":
    main()
