"""A study's seeds: each task's runs with the Multi-Bootstrap of its metric over seeds and
eval examples, each seed's comparison with the base and each seed's probes combined over
seeds, and the tasks the study file compares (``against``), paired by seed.

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
from ..probes import ProbeResult, probes_across_seeds, probes_between_procedures, with_intervals
from ..similarity.bootstrap import DRAWS, compare_procedures, multibootstrap
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


BASE_SEED = -1  # the base model's probes, as one "seed" of their own: never paired with a fine-tuning seed


def probe_seeds(config: StudyConfig, seeds: list[int], per_seed: list[dict], base: dict) -> tuple[dict, dict]:
    """A task's probes over its seeds (``per_seed``: each seed's {set: ProbeResult dict}) and
    the base model's ({set: ProbeResult dict}): ({set: the combined result's dict}, {set:
    {metric: the change from the base, a Difference dict}}), both Multi-Bootstraps over
    seeds and eval inputs."""
    options = config.compare.options
    combined, changes = {}, {}
    for set_name, base_result in base.items():
        results = [ProbeResult.from_dict(r[set_name]) for r in per_seed]
        combined[set_name] = probes_across_seeds(results, seeds, level(config), options.draws,
                                                 options.draw_seed).to_dict()
        differences = probes_between_procedures([ProbeResult.from_dict(base_result)], [BASE_SEED], results,
                                                seeds, paired=False, level=level(config), draws=options.draws,
                                                draw_seed=options.draw_seed)
        changes[set_name] = {metric: d.to_dict() for metric, d in differences.items()}
    return combined, changes


def probe_single(config: StudyConfig, tuned: dict, base: dict | None) -> tuple[dict, dict | None]:
    """One model's probes ({set: ProbeResult dict}) with their intervals stored (the
    bootstrap over the eval sentences), and, with the base's (None for the base itself),
    the change from the base per set, paired over the same drawn sentences."""
    options = config.compare.options
    draws = options.draws or DRAWS
    results = {s: ProbeResult.from_dict(r) for s, r in tuned.items()}
    shown = {s: with_intervals(r, level(config), draws, options.draw_seed).to_dict()
             for s, r in results.items()}
    if base is None:
        return shown, None
    changes = {}
    for set_name, result in results.items():
        base_result = ProbeResult.from_dict(base[set_name])
        differences = probes_between_procedures([base_result], [BASE_SEED], [result], [0], paired=False,
                                                level=level(config), draws=draws, draw_seed=options.draw_seed)
        changes[set_name] = {metric: d.to_dict() for metric, d in differences.items()}
    return shown, changes
