"""Confidence intervals for reported figures."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np


def wilson(proportion, n, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (low, high) of binomial proportions (arrays broadcast; NaN
    proportions or n <= 0 give NaN). Unlike the normal approximation it stays inside
    [0, 1] and keeps its coverage near 0 and 1, where probe accuracies often lie."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    p = np.asarray(proportion, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        center = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        valid = (n > 0) & np.isfinite(p)
        # exact at the ends, where rounding would leave the bound a few ulps off
        low = np.where(p == 0, 0.0, np.clip(center - half, 0.0, 1.0))
        high = np.where(p == 1, 1.0, np.clip(center + half, 0.0, 1.0))
        return np.where(valid, low, np.nan), np.where(valid, high, np.nan)


def jackknife(estimate, leave_outs, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Delete-a-group jackknife interval (low, high) around ``estimate``.

    estimate: the full-sample value, any shape S; leave_outs: [G, *S], the value with each
    of G equal groups of inputs left out. The standard error is
    sqrt((G - 1) / G * sum_g (theta_-g - mean)^2) and the interval estimate +- t_{G-1} SE
    (Student's t with G - 1 degrees of freedom). NaN anywhere in a cell gives NaN there."""
    from scipy.stats import t as student_t

    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    leave_outs = np.asarray(leave_outs, dtype=np.float64)
    groups = leave_outs.shape[0]
    if groups < 2:
        raise ValueError(f"the jackknife needs at least 2 groups, got {groups}")
    estimate = np.asarray(estimate, dtype=np.float64)
    spread = leave_outs - leave_outs.mean(axis=0)
    se = np.sqrt((groups - 1) / groups * (spread**2).sum(axis=0))
    half = student_t.ppf(0.5 + level / 2, groups - 1) * se
    return estimate - half, estimate + half
