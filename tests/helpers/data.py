"""Synthetic representations for the numerical tests."""

import numpy as np


def offset_data(n=300, p=9, q=7, seed=0, offset=1e3):
    """Correlated X [n, p], Y [n, q] with several dimensions offset by `offset`, so that
    cosine similarities between rows crowd near 1 (as with BERT's outlier dimensions)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 4))
    x = z @ rng.normal(size=(4, p)) + 0.7 * rng.normal(size=(n, p))
    y = z @ rng.normal(size=(4, q)) + 0.7 * rng.normal(size=(n, q))
    x[:, [0, 3, 5]] += offset * np.array([1.0, -0.6, 0.8])
    y[:, [1, 2]] += offset * np.array([0.9, 1.3])
    return x, y
