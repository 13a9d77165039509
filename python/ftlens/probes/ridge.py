"""Ridge probes: one streaming pass accumulates per layer and fold the centered XᵀX and
XᵀY of every task (one-hot columns); one eigendecomposition per layer and fold gives the
fit for every strength and exact K-fold cross-validation (held-out squared error)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from .._core import _C
from .features import ProbeRows, check_finite
from .linear import LinearProbes, offsets_of

DEFAULT_ALPHAS = tuple(float(a) for a in 10.0 ** np.arange(-1, 6))  # on summed squared error, as Ridge


@dataclass
class RidgeFit:
    """Ridge probes of every layer and task, the strength chosen per (layer, task), the
    cross-validated mean squared error [L, alphas, T], and the features' mean [L, d] and
    covariance [L, d, d] (from the same pass)."""

    probes: LinearProbes
    alpha: np.ndarray
    alphas: np.ndarray
    cv_mse: np.ndarray
    mean: torch.Tensor
    cov: torch.Tensor


def folds_of(inputs: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """[n] fold of each row: whole inputs (sentences) go to one fold, drawn with ``seed``."""
    n_inputs = int(inputs.max()) + 1 if len(inputs) else 0
    rank = np.random.default_rng([seed, 7]).permutation(n_inputs)
    return (rank % folds)[inputs]


def fit_ridge(rows: ProbeRows, labels: np.ndarray, widths, *, alphas=DEFAULT_ALPHAS, folds: int = 5,
              seed: int = 0, chunk_rows: int = 8192, progress: bool = True, desc: str = "ridge") -> RidgeFit:
    """Ridge probes for tasks with labels [n, T] (every row labelled) on ``rows``. With one
    strength and ``folds=1`` there is no cross-validation (``cv_mse`` is NaN): the fit and
    the feature moments only, from one pass at the GEMM's cost."""
    alphas = np.asarray(alphas, dtype=np.float64)
    if alphas.ndim != 1 or not len(alphas) or not np.all((alphas > 0) & np.isfinite(alphas)):
        raise ValueError(f"alphas must be a non-empty list of positive strengths, got {alphas.tolist()}")
    if folds == 1 and len(alphas) > 1:
        raise ValueError(f"choosing among {len(alphas)} strengths needs cross-validation: pass folds >= 2 "
                         "(or a single strength with folds=1)")
    offsets = offsets_of(widths)
    fold = folds_of(rows.inputs, folds, seed)
    if len(np.unique(fold)) < folds:
        raise ValueError(f"{folds}-fold cross-validation needs at least {folds} training inputs (sentences), "
                         f"got {len(np.unique(rows.inputs))}; pass folds=2 or more data")
    core = _C.RidgeCore(len(rows.layers), rows.dim, int(offsets[-1]), folds)
    labels_t, fold_t = torch.from_numpy(labels), torch.from_numpy(fold)
    converted = torch.empty(0, dtype=torch.float32)  # the float32 rows, one buffer for every chunk
    with tqdm(total=rows.n, unit="row", desc=desc, disable=not progress) as bar:
        for pos, xs in rows.chunks(chunk_rows, reuse=True):
            core.update(check_finite(xs, rows, pos, converted), labels_t[pos], offsets, fold_t[pos])
            bar.update(len(pos))
    if folds == 1:
        cv_mse = np.full((len(rows.layers), 1, len(widths)), np.nan)
        best = np.full((len(rows.layers), len(widths)), alphas[0])
    else:
        cv_mse = core.cv_errors(torch.from_numpy(alphas), offsets).sum(1).numpy() / rows.n
        best = alphas[cv_mse.argmin(1)]  # [L, T]
    w, b = core.solve(torch.from_numpy(best), offsets)
    mean, cov = core.feature_moments()
    centered_b = b + torch.einsum("ld,ldc->lc", mean, w)  # the intercept of rows shifted by their mean
    probes = LinearProbes(mean, torch.ones_like(mean), w, centered_b, offsets)
    return RidgeFit(probes, best, alphas, cv_mse, mean, cov)
