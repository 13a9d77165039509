"""Resampling a probe's eval sentences. Its accuracy on any multiset of sentences is the
rows right over the rows scored, summed over it (``ProbeResult.by_input``: per sentence,
per layer and task), so every draw of sentences is a GEMM and nothing is probed again.
Selectivity is drawn as accuracy minus control accuracy on the same draw."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..similarity.bootstrap import DRAWS, across, draw

PROPORTIONS = ("accuracy", "control_accuracy")  # shares of the eval rows
METHOD = "percentile"  # accuracy is a ratio of sums: its draws are not biased by duplicated inputs


def seed_draws(by_inputs: Sequence[dict], draws: int, draw_seed: int) -> dict[str, tuple]:
    """{metric: (each seed's value on all inputs [S, L, T], on each draw's inputs [S, D, L, T])}
    for accuracy (and control_accuracy, selectivity where there are control tasks), from
    each seed's per-input counts; the draws of inputs come from ``draw(n, 1, draws,
    draw_seed)``, the same for every seed."""
    first = by_inputs[0]
    n_inputs = first["accuracy"].shape[-1]
    weights = draw(n_inputs, 1, draws, draw_seed).unit_counts  # [D, inputs]
    out = {}
    for metric in (m for m in PROPORTIONS if m in first):
        right = np.stack([b[metric] for b in by_inputs])  # [S, L, T, inputs]
        scored = np.stack([b[f"{metric}_rows"] for b in by_inputs])  # [S, T, inputs]
        with np.errstate(invalid="ignore", divide="ignore"):  # a task without rows (structural): NaN
            full = right.sum(-1) / scored.sum(-1)[:, None, :]
            drawn = np.einsum("sltn,dn->sdlt", right, weights) / np.einsum("stn,dn->sdt", scored,
                                                                          weights)[:, :, None, :]
        out[metric] = (full, drawn)
    if "control_accuracy" in out:
        (a_full, a_drawn), (c_full, c_drawn) = out["accuracy"], out["control_accuracy"]
        out["selectivity"] = (a_full - c_full, a_drawn - c_drawn)
    return out


def sentence_intervals(by_input: dict, level: float = 0.95, draws: int = DRAWS,
                       draw_seed: int = 0) -> dict[str, np.ndarray]:
    """One probe's percentile intervals {metric: [2, L, T]} over its eval sentences."""
    out = {}
    for metric, (full, drawn) in seed_draws([by_input], draws, draw_seed).items():
        boot = across(full, drawn, [0], by_input["accuracy"].shape[-1], level, METHOD, draw_seed)
        out[metric] = np.stack([boot.low, boot.high])
    return out
