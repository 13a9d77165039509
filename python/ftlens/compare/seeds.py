"""Comparisons of several seeds' fine-tuned models with the base, combined: every layer's
similarity with a Multi-Bootstrap interval over seeds and input groups (Sellam et al.
2021), and two procedures compared layer by layer.

Each seed's ``compare_models(..., ci_groups=G, draws=D, draw_seed=s)`` keeps its measures
on D resamples of the G input groups; every seed draws the same resamples, so combining
them only draws the seeds (``similarity.bootstrap.across``). The intervals are normal
around the mean over seeds (estimate +- z SE): resampling with replacement duplicates
rows, which biases CKA and RSA upward (``bias`` says by how much)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..similarity.bootstrap import Difference, across, between, check_seed_labels
from .models import LayerComparison

METHOD = "normal"
SHARED = ("layers", "pairs", "rows", "n_inputs", "rdm", "ci_groups", "draw_seed", "data")


def _check(comparisons: Sequence[LayerComparison], seeds: Sequence[int], what: str) -> None:
    comparisons = list(comparisons)
    check_seed_labels(len(comparisons), seeds, what, "comparison")
    lacking = [s for s, c in zip(seeds, comparisons, strict=True) if not c.draws]
    if lacking:
        raise ValueError(f"{what}: the comparisons of seeds {lacking} kept no bootstrap draws: run "
                         "compare_models with draws= (and the same ci_groups and draw_seed for every seed)")
    first = comparisons[0]
    for seed, c in zip(seeds, comparisons, strict=True):
        differ = [k for k in SHARED if getattr(c, k) != getattr(first, k)]
        if list(c.values) != list(first.values) or {len(d) for d in c.draws.values()} != {
                len(d) for d in first.draws.values()}:
            differ.append("measures or draws")
        if differ:
            raise ValueError(f"{what}: the comparison of seed {seed} differs from the first in {differ}: "
                             "seeds combine only when compared on the same inputs, groups and draws")


def across_seeds(comparisons: Sequence[LayerComparison], seeds: Sequence[int],
                 level: float = 0.95) -> LayerComparison:
    """One comparison per seed (of one procedure, on the same inputs) combined: the mean
    over seeds with Multi-Bootstrap intervals at ``level``; ``seed_values`` keeps each
    seed's, ``seeds`` their seeds (in seed order)."""
    _check(comparisons, seeds, "across_seeds")
    order = np.argsort(seeds)
    comparisons = [comparisons[i] for i in order]
    seeds = [int(seeds[i]) for i in order]
    first = comparisons[0]
    out = replace(first, finetuned=f"{len(seeds)} seeds", values={}, intervals={}, draws={}, undefined={},
                  isotropy=None, ci=level, interval_method="multibootstrap", seeds=seeds, seed_values={},
                  bias={})
    for name in first.values:
        full = np.stack([c.values[name] for c in comparisons])
        result = across(full, np.stack([c.draws[name] for c in comparisons]), seeds, first.ci_groups, level,
                        METHOD, first.draw_seed)
        out.values[name] = np.asarray(result.estimate)
        out.intervals[name] = np.stack([result.low, result.high])
        out.seed_values[name] = full
        out.bias[name] = np.asarray(result.bias)
        bad = np.flatnonzero(np.isnan(out.values[name]))
        if len(bad):
            out.undefined[name] = bad.tolist()
    return out


def between_procedures(a: Sequence[LayerComparison], a_seeds: Sequence[int], b: Sequence[LayerComparison],
                       b_seeds: Sequence[int], *, paired: bool | None = None,
                       level: float = 0.95) -> dict[str, Difference]:
    """Procedure b minus procedure a, layer by layer: {measure: Difference of arrays [L]},
    paired by seed when both have the same seeds (default), on the same inputs and draws."""
    _check([*a, *b], [*[("a", s) for s in a_seeds], *[("b", s) for s in b_seeds]], "between_procedures")
    first = a[0]
    out = {}
    for name in first.values:
        sides = [(np.stack([c.values[name] for c in group]), np.stack([c.draws[name] for c in group]), seeds)
                 for group, seeds in ((a, a_seeds), (b, b_seeds))]
        out[name] = between(*sides, first.ci_groups, paired=paired, level=level, method=METHOD,
                            seed=first.draw_seed)
    return out
