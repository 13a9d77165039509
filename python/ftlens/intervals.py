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
