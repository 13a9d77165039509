"""A study's seeds: each task's runs with the Multi-Bootstrap of its metric over seeds and
eval examples, each seed's comparison with the base combined over seeds, and the tasks the
study file compares (``against``), paired by seed.

Every seed's comparison draws the same resamples of the input groups (``compare.draws``,
``compare.draw_seed``), and every metric the same resamples of the eval examples, so that
combining seeds and comparing procedures draw only the seeds (Sellam et al. 2021)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..compare.models import LayerComparison
from ..compare.seeds import across_seeds, between_procedures
from ..finetuning.seeds import stack_scores
from ..finetuning.task import ExampleScores
from ..similarity.bootstrap import compare_procedures, multibootstrap
from .config import StudyConfig

DEFAULT_LEVEL = 0.95


def level(config: StudyConfig) -> float:
    return config.compare.options.ci or DEFAULT_LEVEL


def _scores(record: dict) -> tuple[np.ndarray, np.ndarray, float]:
    """The runs' per-example shares of the headline metric: (num, den) [seeds, examples], scale."""
    loaded = [ExampleScores.from_dict(json.loads((Path(r["model_dir"]).parent / "scores.json").read_text()))
              for r in record["runs"]]
    return stack_scores(loaded, record["metric"], record["seeds"])


def metric_bootstrap(config: StudyConfig, record: dict) -> dict:
    """The Multi-Bootstrap of a task's headline metric over its seeds and eval examples."""
    num, den, scale = _scores(record)
    options = config.compare.options
    return multibootstrap(num, den, seeds=record["seeds"], scale=scale, draws=options.draws,
                          level=level(config), seed=options.draw_seed).to_dict()


def compare_seeds(config: StudyConfig, task: str, record: dict, ev,
                  stage: Callable[[str, dict], dict]) -> tuple[dict, list[LayerComparison]]:
    """Each seed's model compared with the base on evaluation set ``ev`` (``stage(name,
    {path, fingerprint})``: one cached stage per seed), and the comparisons combined: (the
    combined comparison's dict, each seed's)."""
    per_seed = []
    for entry in record["runs"]:
        model = {"path": entry["model_dir"], "fingerprint": entry["fingerprint"]}
        name = f"compare/{task}/seed-{entry['seed']}/{ev.name}"
        per_seed.append(LayerComparison.from_dict(stage(name, model)))
    combined = across_seeds(per_seed, record["seeds"], level(config))
    return combined.to_dict(), per_seed


def procedures(config: StudyConfig, tasks: dict, per_seed: dict) -> list[dict]:
    """Each task the study file compares with another (``against``): the difference of the
    headline metric and of every layer's similarity on every evaluation set, paired by seed."""
    out = []
    options = config.compare.options
    for spec in config.tasks:
        if spec.against is None:
            continue
        a, b = tasks[spec.against], tasks[spec.name]
        a_num, a_den, scale = _scores(a)
        b_num, b_den, _ = _scores(b)
        metric = compare_procedures((a_num, a_den), (b_num, b_den), a_seeds=a["seeds"], b_seeds=b["seeds"],
                                    scale=scale, draws=options.draws, level=level(config),
                                    seed=options.draw_seed)
        layers = {}
        for set_name, theirs in per_seed[spec.against].items():
            differences = between_procedures(theirs, a["seeds"], per_seed[spec.name][set_name], b["seeds"],
                                             level=level(config))
            layers[set_name] = {name: d.to_dict() for name, d in differences.items()}
        out.append({"task": spec.name, "against": spec.against, "metric": metric.to_dict(), "layers": layers})
    return out
