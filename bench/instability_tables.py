"""The tables of docs/INSTABILITY.md, from a run folder of studies/zhang2021.yaml.

    python bench/instability_tables.py RUN_DIR

Reads the seeds' run folders (RUN_DIR/finetune/<procedure>-<digest>/seed-<s>/), so it
also works while the fine-tuning is in progress (``ftlens run --finetune-only``), and
RUN_DIR/results.json for the paired comparisons and the layers once the study has run.
Prints one Markdown table per question: the metric over seeds per procedure, the paired
comparisons with BERT's Adam, and the top layers' similarity per procedure.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from ftlens.data import read_pairs
from ftlens.finetuning.task import ExampleScores
from ftlens.similarity.bootstrap import multibootstrap


def _runs(run: Path) -> dict[str, list[Path]]:
    """Procedure name -> its finished seed folders, in seed order."""
    out = {}
    for folder in sorted((run / "finetune").iterdir()):
        seeds = sorted((p for p in folder.glob("seed-*") if (p / "metrics.json").is_file()),
                       key=lambda p: int(p.name.split("-")[1]))
        if seeds:
            out[folder.name.rsplit("-", 1)[0]] = seeds
    return out


def _minutes(seed: Path) -> float:
    """A run's wall time: the seconds its metrics record (of the call that finished it: a
    resumed run counts the time since its resume); for a run without them, from its first
    file to its last (a run restarted in a later session counts the pause too)."""
    seconds = json.loads((seed / "metrics.json").read_text()).get("seconds")
    if seconds is None:
        seconds = (seed / "metrics.json").stat().st_mtime - (seed / "options.json").stat().st_mtime
    return seconds / 60


def metric_table(run: Path, majority: float) -> str:
    lines = ["| procedure | seeds | mean ± SD (%) | min | max | degenerate (≤ majority) | "
             "Multi-Bootstrap 95% | min per run |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, seeds in _runs(run).items():
        scores = [ExampleScores.from_dict(json.loads((s / "scores.json").read_text())) for s in seeds]
        values = 100 * np.array([s.metrics["accuracy"] for s in scores])
        numbers = [int(s.name.split("-")[1]) for s in seeds]
        interval = multibootstrap(np.stack([s.num["accuracy"] for s in scores]), seeds=numbers, scale=100.0)
        degenerate = int((values <= 100 * majority + 1e-9).sum())
        sd = values.std(ddof=1) if len(values) > 1 else 0.0
        minutes = np.median([_minutes(s) for s in seeds])
        lines.append(f"| {name} | {len(seeds)} | {values.mean():.1f} ± {sd:.1f} | {values.min():.1f} | "
                     f"{values.max():.1f} | {degenerate} of {len(seeds)} | "
                     f"[{interval.low:.1f}, {interval.high:.1f}] | {minutes:.1f} |")
    return "\n".join(lines)


def comparison_table(results: dict) -> str:
    lines = ["| procedure | minus | difference (points) | 95% interval | p | paired seeds |",
             "|---|---|---:|---:|---:|---:|"]
    for p in results.get("procedures", []):
        d = p["metric"]
        lines.append(f"| {p['task']} | {p['against']} | {100 * d['estimate']:+.1f} | "
                     f"[{100 * d['low']:+.1f}, {100 * d['high']:+.1f}] | {d['p']:.3g} | {d['a']['seeds']} |")
    return "\n".join(lines)


def layer_table(results: dict, measure: str) -> str:
    lines = None
    for task, sets in results["compare"].items():
        for set_name, c in sets.items():
            if lines is None:
                names = [n.replace("layer", "").strip(" _") if n != "embeddings" else "emb"
                         for n in c["layers"]]
                lines = [f"| procedure ({set_name}, {measure}) | " + " | ".join(names) + " |",
                         "|---|" + "---:|" * len(names)]
            low, high = c["intervals"][measure]
            cells = [f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in zip(c[measure], low, high, strict=True)]
            lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines or [])


def main(run_dir: str) -> None:
    run = Path(run_dir)
    labels = [p.label for p in read_pairs(Path(os.environ["FTLENS_DATA_DIR"]) / "glue_rte" / "dev.tsv")]
    majority = Counter(labels).most_common(1)[0][1] / len(labels)
    print(f"RTE dev: {len(labels)} pairs, majority class {100 * majority:.1f}%\n")
    print(metric_table(run, majority))
    if (run / "results.json").is_file():
        results = json.loads((run / "results.json").read_text())
        print()
        print(comparison_table(results))
        for measure in ("rsa", "cka"):
            print()
            print(layer_table(results, measure))


if __name__ == "__main__":
    main(*sys.argv[1:])
