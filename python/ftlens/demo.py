"""The built-in demo: a whole study on the packaged MiniLM.

Fine-tunes MiniLM on dependency parsing and on sentence-pair classification (the
generated corpus), compares base vs each fine-tuned model layer by layer (RSA and CKA with
jackknife intervals) on in-domain and out-of-domain sentences, probes every layer of all
three models for UPOS and dependency labels, runs one freeze ablation (its k = 0 is the
fine-tuned model itself, not trained again), measures isotropy and writes the report.

The probes read a slice of UD English EWT when ``FTLENS_DATA_DIR`` holds it, else the
generated corpus with words whose tags depend on their context, so that they do not
saturate. ``scale`` multiplies every data size (1.0: the full demo, about 3 minutes on 2
CPU cores).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ._util.files import atomic_write, check_writable

if TYPE_CHECKING:
    from .study.results import StudyResult

EWT = ("ud_en_ewt", "en_ewt-ud-train.conllu", "en_ewt-ud-dev.conllu")


def ewt_files(data_dir: str | os.PathLike | None = None) -> tuple[Path, Path] | None:
    """UD EWT's train and dev files under ``data_dir`` (default: ``$FTLENS_DATA_DIR``), or
    None when they are not there."""
    data_dir = data_dir or os.environ.get("FTLENS_DATA_DIR")
    if not data_dir:
        return None
    folder = Path(data_dir).resolve() / EWT[0]
    train, dev = folder / EWT[1], folder / EWT[2]
    return (train, dev) if train.is_file() and dev.is_file() else None


def demo_study(scale: float = 1.0, data_dir: str | os.PathLike | None = None) -> dict:
    """The demo's study, as the mapping a YAML study file reads into."""

    def n(count: int) -> int:
        return max(12, int(round(count * scale)))

    def generated(kind: str, count: int, seed: int) -> dict:
        return {"generated": kind, "n": n(count), "seed": seed}

    ewt = ewt_files(data_dir)
    if ewt is not None:
        probe_data = {
            "train": {"path": str(ewt[0]), "limit": n(250)},
            "eval": {"ewt": {"path": str(ewt[1]), "limit": n(125)}},
            "in_domain": ["ewt"],
        }
    else:
        probe_data = {
            "train": generated("ambiguous-sentences", 400, 4),
            "eval": {"sentences": generated("ambiguous-sentences", 150, 5)},
            "in_domain": ["sentences"],
        }
    return {
        "name": "demo",
        "base": "minilm",
        "tasks": {
            "parsing": {
                "task": "parsing",
                "train": generated("sentences", 600, 1),
                "eval": generated("sentences", 150, 2),
                "options": {"epochs": 2, "batch_size": 16, "head_learning_rate": 1e-3},
            },
            "pair": {
                "task": "pair",
                "train": generated("pairs", 600, 1),
                "eval": generated("pairs", 150, 2),
                "options": {"epochs": 2, "batch_size": 16, "learning_rate": 5e-5},
            },
        },
        "evaluation": {
            "sentences": {"data": generated("sentences", 300, 3), "in_domain": ["parsing"]},
            "pairs": {"data": generated("pairs", 300, 3), "in_domain": ["pair"]},
        },
        "compare": {"measures": ["rsa", "cka"], "ci": 0.95, "ci_groups": 10},
        "probes": {**probe_data, "tasks": ["upos", "deprel"]},
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
    atomic_write(
        out_dir / "study.yaml",
        lambda tmp: Path(tmp).write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8"),
    )
    results = run_study(parse_config(study, source="ftlens demo"), out_dir, progress=progress)
    print()
    print(summary(results))
    print(
        f"\nthe report: {out_dir / 'report.html'}; the study: {out_dir / 'study.yaml'} (a rerun reuses "
        "every finished stage)"
    )
    return results


def summary(results: StudyResult) -> str:
    """Per task: its metric (%) against its no-learning baseline, and the study's first
    measure at the top layer on each evaluation set (with intervals); the probes' lowest and
    top-layer accuracy; then the sanity flags, if any."""
    from .study.report.findings import flags, measures

    first = measures(results)[0]
    lines = []
    for name, task in results.tasks.items():
        if task.value is None:
            lines.append(f"{name}: checkpoint")
        else:
            base = (
                f" (no-learning baseline {task.as_percent(task.baseline['value']):.1f}%)"
                if task.baseline
                else ""
            )
            lines.append(f"{name}: {task.metric} {task.as_percent(task.value):.1f}%{base}")
        for set_name, result in results.compare[name].items():
            top = result.values[first][-1]
            bounds = result.intervals.get(first)
            interval = f" [{bounds[0][-1]:.3f}, {bounds[1][-1]:.3f}]" if bounds is not None else ""
            domain = "in-domain" if results.in_domain(name, set_name) else "out-of-domain"
            lines.append(
                f"  {first} base vs fine-tuned, top layer, {set_name} ({domain}): {top:.3f}{interval}"
            )
    for model, sets in (results.probes or {}).items():
        for set_name, result in sets.items():
            shown = ", ".join(
                f"{task} {100 * result.accuracy[:, j].min():.1f}-{100 * result.accuracy[-1, j]:.1f}%"
                for j, task in enumerate(result.tasks)
            )
            lines.append(f"probes of {model} on {set_name} (lowest layer - top layer): {shown}")
    for flag in flags(results):
        lines.append(f"SANITY FLAG: {flag.text}")
    return "\n".join(lines)
