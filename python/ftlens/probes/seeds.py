"""Probes of several seeds' fine-tuned models, combined: each layer's probe accuracy with a
Multi-Bootstrap interval over seeds and eval inputs (Sellam et al. 2021), and one
procedure's probes compared with another's (or with the base model's), layer by layer.

The draws of the eval sentences are ``resample``'s. Every result draws the same resamples
of the inputs (``draw_seed``), so that combining seeds and comparing procedures draw only
the seeds."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..similarity.bootstrap import DRAWS, Difference, across, between, check_seed_labels
from .resample import METHOD, seed_draws, sentence_intervals
from .result import ProbeResult

SHARED = ("layers", "tasks", "rows", "eval_data")


def _check(results: Sequence[ProbeResult], seeds: Sequence, what: str) -> None:
    check_seed_labels(len(results), seeds, what, "probe result")
    lacking = [s for s, r in zip(seeds, results, strict=True) if "accuracy" not in r.by_input]
    if lacking:
        raise ValueError(f"{what}: the probe results of seeds {lacking} have no per-input counts (by_input), "
                         "which the bootstrap resamples: probe those stores again with this version")
    first = results[0]
    for seed, r in zip(seeds, results, strict=True):
        differ = [k for k in SHARED if getattr(r, k) != getattr(first, k)]
        if set(r.by_input) != set(first.by_input) or r.by_input["accuracy"].shape != \
                first.by_input["accuracy"].shape:
            differ.append("eval inputs or control tasks")
        if differ:
            raise ValueError(f"{what}: the probe result of seed {seed} differs from the first in {differ}: "
                             "seeds combine only when probed for the same tasks and layers on the same eval "
                             "inputs")


def probes_across_seeds(results: Sequence[ProbeResult], seeds: Sequence[int], level: float = 0.95,
                        draws: int = DRAWS, draw_seed: int = 0) -> ProbeResult:
    """Probe results of one procedure's seeds (the same probes on the same eval inputs)
    combined: accuracy, control_accuracy and selectivity are the mean over seeds with
    Multi-Bootstrap intervals at ``level`` over seeds and eval inputs (``draws`` draws from
    ``draw_seed``); every other metric is the mean over seeds. ``seed_scores`` keeps each
    seed's scores and ``seeds`` their seeds (in seed order); ``strength`` is None (each
    seed chose its own)."""
    _check(results, seeds, "probes_across_seeds")
    order = np.argsort(seeds)
    results, seeds = [results[i] for i in order], [int(seeds[i]) for i in order]
    first = results[0]
    seed_scores = {m: np.stack([r.scores[m] for r in results]) for m in first.scores
                   if all(m in r.scores for r in results)}
    with warnings.catch_warnings():  # a metric a task does not have is NaN for every seed
        warnings.simplefilter("ignore", RuntimeWarning)
        scores = {m: np.nanmean(v, axis=0) for m, v in seed_scores.items()}
    intervals = {}
    for metric, (full, drawn) in seed_draws([r.by_input for r in results], draws, draw_seed).items():
        result = across(full, drawn, seeds, _units(first), level, METHOD, draw_seed)
        scores[metric] = np.asarray(result.estimate)
        intervals[metric] = np.stack([result.low, result.high])
    return replace(first, model=f"{len(seeds)} seeds of {first.model}", scores=scores, strength=None,
                   by_input={}, seeds=seeds, seed_scores=seed_scores, intervals=intervals,
                   interval_method="multibootstrap", level=level)


def with_intervals(result: ProbeResult, level: float = 0.95, draws: int = DRAWS,
                   draw_seed: int = 0) -> ProbeResult:
    """One probe result (one model) with its intervals stored: accuracy, control accuracy
    and selectivity by the percentile bootstrap over its eval sentences
    (``interval_method`` "sentences"), so that they outlive its per-input counts."""
    _check([result], [0], "with_intervals")
    intervals = sentence_intervals(result.by_input, level, draws, draw_seed)
    return replace(result, intervals=intervals, interval_method="sentences", level=level)


def probes_between_procedures(a: Sequence[ProbeResult], a_seeds: Sequence, b: Sequence[ProbeResult],
                              b_seeds: Sequence, *, paired: bool | None = None, level: float = 0.95,
                              draws: int = DRAWS, draw_seed: int = 0) -> dict[str, Difference]:
    """Procedure b's probes minus procedure a's, per layer and task: {metric: Difference of
    arrays [L, T]} for accuracy (and control_accuracy, selectivity), on the same draws of
    the same eval inputs; paired by seed when both have the same seeds (default). The base
    model against fine-tuned seeds is a = [its result], a_seeds = [any label], paired=False."""
    _check([*a, *b], [*[("a", s) for s in a_seeds], *[("b", s) for s in b_seeds]],
           "probes_between_procedures")
    a_draws, b_draws = (seed_draws([r.by_input for r in side], draws, draw_seed) for side in (a, b))
    units = _units(a[0])
    return {metric: between((*a_draws[metric], list(a_seeds)), (*b_draws[metric], list(b_seeds)), units,
                            paired=paired, level=level, method=METHOD, seed=draw_seed)
            for metric in a_draws}


def _units(result: ProbeResult) -> int:
    return result.by_input["accuracy"].shape[-1]
