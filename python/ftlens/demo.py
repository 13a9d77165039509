"""The built-in demo: a whole study on the packaged MiniLM and the generated corpus.

Fine-tunes MiniLM on dependency parsing and on sentence-pair classification, compares
base vs each fine-tuned model layer by layer (RSA and CKA with jackknife intervals) on
in-domain and out-of-domain sentences, probes every layer of all three models, runs one
freeze ablation, measures isotropy and writes the report. ``scale`` multiplies every data
size (1.0: the full demo, a few minutes on 2 CPU cores).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ._util.files import atomic_write, check_writable

if TYPE_CHECKING:
    from .study.results import StudyResult


def demo_study(scale: float = 1.0) -> dict:
    """The demo's study, as the mapping a YAML study file reads into."""

    def n(count: int) -> int:
        return max(12, int(round(count * scale)))

    def generated(kind: str, count: int, seed: int) -> dict:
        return {"generated": kind, "n": n(count), "seed": seed}

    return {
        "name": "demo",
        "base": "minilm",
        "tasks": {
            "parsing": {"task": "parsing", "train": generated("sentences", 600, 1),
                        "eval": generated("sentences", 150, 2),
                        "options": {"epochs": 2, "batch_size": 16, "head_learning_rate": 1e-3}},
            "pair": {"task": "pair", "train": generated("pairs", 900, 1), "eval": generated("pairs", 150, 2),
                     "options": {"epochs": 2, "batch_size": 16, "learning_rate": 5e-5}},
        },
        "evaluation": {
            "sentences": {"data": generated("sentences", 300, 3), "in_domain": ["parsing"]},
            "pairs": {"data": generated("pairs", 300, 3), "in_domain": ["pair"]},
        },
        "compare": {"measures": ["rsa", "cka"], "ci": 0.95, "ci_groups": 10},
        "probes": {"train": generated("sentences", 600, 4),
                   "eval": {"sentences": generated("sentences", 200, 5)},
                   "in_domain": ["sentences"], "tasks": ["upos", "deprel"]},
        "ablations": [{"kind": "freeze", "task": "pair", "ks": [0, 3, 6]}],
        "isotropy": {"rows": ["tokens", "cls"]},
    }


def run_demo(out_dir: str | Path = "demo_out", scale: float = 1.0, progress: bool = True) -> StudyResult:
    """Runs (or resumes) the demo study into ``out_dir``; prints a summary table and where
    the report is; returns the results (also ``out_dir/results.json``)."""
    import yaml

    from .study import parse_config, run_study

    out_dir = check_writable(out_dir)
    study = demo_study(scale)
    study["out"] = str(out_dir)
    atomic_write(out_dir / "study.yaml",
                 lambda tmp: Path(tmp).write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8"))
    results = run_study(parse_config(study, source="ftlens demo"), out_dir, progress=progress)
    print()
    print(summary(results))
    print(f"\nthe report: {out_dir / 'report.html'}; the study: {out_dir / 'study.yaml'} (a rerun reuses "
          "every finished stage)")
    return results


def summary(results: StudyResult) -> str:
    """Per task: its metric, and the first measure at the top layer on in-domain and
    out-of-domain sets (with intervals), and the probes' top-layer accuracy."""
    lines = []
    for name, task in results.tasks.items():
        value = task.metrics.get(f"eval_{task.metric}")
        lines.append(f"{name}: {task.metric} {value:.3f}" if value is not None else f"{name}: checkpoint")
        for set_name, result in results.compare[name].items():
            measure = next(m for m in ("rsa", "cka") if m in result.values)
            top = result.values[measure][-1]
            bounds = result.intervals.get(measure)
            interval = f" [{bounds[0][-1]:.3f}, {bounds[1][-1]:.3f}]" if bounds is not None else ""
            domain = "in-domain" if results.in_domain(name, set_name) else "out-of-domain"
            lines.append(f"  {measure} base vs fine-tuned, top layer, {set_name} ({domain}): "
                         f"{top:.3f}{interval}")
    for model, sets in (results.probes or {}).items():
        for set_name, result in sets.items():
            tasks = zip(result.tasks, result.accuracy[-1], strict=True)
            shown = ", ".join(f"{task} {100 * a:.1f}%" for task, a in tasks)
            lines.append(f"probes, top layer of {model} on {set_name}: {shown}")
    return "\n".join(lines)
