"""Probes of several seeds' fine-tuned models, combined: each layer's probe accuracy with a
Multi-Bootstrap interval over seeds and eval inputs (Sellam et al. 2021), and one
procedure's probes compared with another's (or with the base model's), layer by layer.

A probe's accuracy on any multiset of eval inputs (sentences) is the rows right over the
rows scored, summed over it (``ProbeResult.by_input``), so every draw of inputs is a GEMM
and nothing is probed again. Every result draws the same resamples of the inputs
(``draw_seed``), so that combining seeds and comparing procedures draw only the seeds.
Selectivity is drawn as accuracy minus control accuracy on the same draw."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..similarity.bootstrap import DRAWS, Difference, across, between, draw
from .result import PROPORTIONS, ProbeResult

METHOD = "percentile"  # accuracy is a ratio of sums: its draws are not biased by duplicated inputs
SHARED = ("layers", "tasks", "rows", "eval_data")


def _check(results: Sequence[ProbeResult], seeds: Sequence, what: str) -> None:
    if not results:
        raise ValueError(f"{what}: no probe result given")
    if len(seeds) != len(results) or len(set(seeds)) != len(seeds):
        raise ValueError(f"{what}: give one distinct seed per probe result, got seeds {list(seeds)} for "
                         f"{len(results)} results")
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


def _seed_draws(results: Sequence[ProbeResult], draws: int, draw_seed: int) -> dict[str, tuple]:
    """{metric: (each seed's value on all inputs [S, L, T], on each draw's inputs [S, D, L, T])}
    for accuracy (and control_accuracy, selectivity where there are control tasks)."""
    n_inputs = results[0].by_input["accuracy"].shape[-1]
    weights = draw(n_inputs, 1, draws, draw_seed).unit_counts  # [D, inputs]
    out = {}
    for metric in (m for m in PROPORTIONS if m in results[0].by_input):
        right = np.stack([r.by_input[metric] for r in results])  # [S, L, T, inputs]
        scored = np.stack([r.by_input[f"{metric}_rows"] for r in results])  # [S, T, inputs]
        with np.errstate(invalid="ignore", divide="ignore"):  # a task without rows (structural): NaN
            full = right.sum(-1) / scored.sum(-1)[:, None, :]
            drawn = np.einsum("sltn,dn->sdlt", right, weights) / np.einsum("stn,dn->sdt", scored,
                                                                          weights)[:, :, None, :]
        out[metric] = (full, drawn)
    if "control_accuracy" in out:
        (a_full, a_drawn), (c_full, c_drawn) = out["accuracy"], out["control_accuracy"]
        out["selectivity"] = (a_full - c_full, a_drawn - c_drawn)
    return out


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
    for metric, (full, drawn) in _seed_draws(results, draws, draw_seed).items():
        result = across(full, drawn, seeds, _units(first), level, METHOD, draw_seed)
        scores[metric] = np.asarray(result.estimate)
        intervals[metric] = np.stack([result.low, result.high])
    return replace(first, model=f"{len(seeds)} seeds of {first.model}", scores=scores, strength=None,
                   by_input={}, seeds=seeds, seed_scores=seed_scores, intervals=intervals,
                   interval_method="multibootstrap", level=level)


def probes_between_procedures(a: Sequence[ProbeResult], a_seeds: Sequence, b: Sequence[ProbeResult],
                              b_seeds: Sequence, *, paired: bool | None = None, level: float = 0.95,
                              draws: int = DRAWS, draw_seed: int = 0) -> dict[str, Difference]:
    """Procedure b's probes minus procedure a's, per layer and task: {metric: Difference of
    arrays [L, T]} for accuracy (and control_accuracy, selectivity), on the same draws of
    the same eval inputs; paired by seed when both have the same seeds (default). The base
    model against fine-tuned seeds is a = [its result], a_seeds = [any label], paired=False."""
    _check([*a, *b], [*[("a", s) for s in a_seeds], *[("b", s) for s in b_seeds]],
           "probes_between_procedures")
    a_draws, b_draws = _seed_draws(a, draws, draw_seed), _seed_draws(b, draws, draw_seed)
    units = _units(a[0])
    return {metric: between((*a_draws[metric], list(a_seeds)), (*b_draws[metric], list(b_seeds)), units,
                            paired=paired, level=level, method=METHOD, seed=draw_seed)
            for metric in a_draws}


def _units(result: ProbeResult) -> int:
    return result.by_input["accuracy"].shape[-1]
