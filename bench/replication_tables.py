"""The tables of docs/REPLICATION.md, from a run folder of studies/merchant2020.yaml.

    python bench/replication_tables.py RUN_DIR

Reads the stage records (RUN_DIR/stages/*.json), so it also works on a run still in
progress, and prints one Markdown table per claim of Merchant et al. (2020).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def records(run: Path) -> dict[str, dict]:
    out = {}
    for path in sorted((run / "stages").glob("*.json")):
        record = json.loads(path.read_text())
        out[record["stage"]] = record
    return out


def _layers(names: list[str]) -> list[str]:
    return ["emb" if n == "embeddings" else n.replace("layer", "").strip(" _") for n in names]


def _cell(values, bounds, i: int) -> str:
    value = values[i]
    if value is None:
        return "-"
    if bounds is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{bounds[0][i]:.3f}, {bounds[1][i]:.3f}]"


def similarity_table(stages: dict, measure: str) -> str:
    """Rows: task x evaluation set; columns: each layer's similarity (base vs fine-tuned)."""
    lines = []
    for name, record in stages.items():
        if not name.startswith("compare/"):
            continue
        _, task, set_name = name.split("/")
        result = record["result"]
        if not lines:
            layers = _layers(result["layers"])
            lines = [f"| task | set | {' | '.join(layers)} |", "|" + " --- |" * (len(layers) + 2)]
        bounds = (result.get("intervals") or {}).get(measure)
        cells = [_cell(result[measure], bounds, i) for i in range(len(result["layers"]))]
        lines.append(f"| {task} | {set_name} | {' | '.join(cells)} |")
    return "\n".join(lines)


def probe_table(stages: dict) -> str:
    """Rows: model x probe set x task; columns: accuracy per layer (%)."""
    lines = []
    for name, record in stages.items():
        if not name.startswith("probe/"):
            continue
        _, model, set_name = name.split("/")
        result = record["result"]
        if not lines:
            layers = _layers(result["layers"])
            lines = [f"| model | set | task | {' | '.join(layers)} |", "|" + " --- |" * (len(layers) + 3)]
        accuracy = np.array(result["scores"]["accuracy"], dtype=np.float64)
        for j, task in enumerate(result["tasks"]):
            lines.append(f"| {model} | {set_name} | {task} | "
                         + " | ".join(f"{100 * a:.1f}" for a in accuracy[:, j]) + " |")
    return "\n".join(lines)


def ablation_table(stages: dict) -> str:
    lines = ["| sweep | k | metric | value |", "| --- | --- | --- | --- |"]
    for name, record in stages.items():
        if name.startswith("ablate/"):
            result = record["result"]
            for row in result["rows"]:
                lines.append(f"| {name} | {row['k']} | {result['metric']} | {row['value']:.4g} |")
    return "\n".join(lines)


def seconds_table(stages: dict) -> str:
    lines = ["| stage | seconds |", "| --- | --- |"]
    lines += [f"| {name} | {record['seconds']:.0f} |" for name, record in stages.items()]
    return "\n".join(lines)


def main() -> None:
    run = Path(sys.argv[1])
    stages = records(run)
    for title, table in (("RSA (correlation RDM), base vs fine-tuned, 95% jackknife intervals",
                          similarity_table(stages, "rsa")),
                         ("Linear CKA, base vs fine-tuned", similarity_table(stages, "cka")),
                         ("Probe accuracy (%)", probe_table(stages)),
                         ("Freeze ablations", ablation_table(stages)),
                         ("Stage wall times", seconds_table(stages))):
        print(f"### {title}\n\n{table}\n")


if __name__ == "__main__":
    main()
