"""Minibatch CKA (Nguyen, Raghu & Kornblith 2021): the unbiased HSIC averaged over
minibatches of rows, streaming. Cheap at any n, but an estimate of a batch-size-dependent
quantity, not the CKA of all rows: larger batches come closer (docs in the README)."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..._util import validation
from . import engine
from .cka import _sigmas, hsic_terms


def minibatch_cka(
    X,
    Y,
    batch_size: int = 1024,
    kernel: str = "linear",
    sigma=None,
    threshold: float = 1.0,
    *,
    shuffle: bool = True,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """CKA of X [n, p] and Y [n, q] from the unbiased HSIC of minibatches of rows:
    mean_b HSIC(K_b, L_b) / sqrt(mean_b HSIC(K_b, K_b) mean_b HSIC(L_b, L_b)).

    Rows are shuffled (seeded) unless ``shuffle=False``; a last batch short of
    ``batch_size`` is dropped. kernel: "linear", "cosine" or "rbf" (sigma given, or
    threshold x the median distance within each batch). Returns a dict: ``value``,
    ``batches``, ``batch_size``, ``rows_dropped``."""
    x, y, double = engine.sources(X, Y)
    batch_size = validation.positive_int(batch_size, "batch_size")
    n = x.shape[0]
    if batch_size < 4:
        raise ValueError(f"batch_size must be >= 4 (the unbiased HSIC needs 4 rows), got {batch_size}")
    if n < batch_size:
        raise ValueError(f"batch_size={batch_size} exceeds the {n} rows; pass a smaller batch_size")
    how = engine.kernel_map(kernel)
    if sigma is not None and kernel != "rbf":
        raise ValueError(f"sigma is the RBF bandwidth; the {kernel} kernel takes none")
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    batches = range(n // batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="minibatch CKA", unit="batch")
    totals = {"xy": 0.0, "xx": 0.0, "yy": 0.0}
    for b in batches:
        rows = torch.as_tensor(np.sort(order[b * batch_size : (b + 1) * batch_size]), device=x.device)
        xb, yb = x[rows], y[rows]
        fields = {"x": {}, "y": {}}
        if kernel == "rbf":
            sigmas, _ = _sigmas(sigma, threshold, xb, yb, double, None, False)
            fields = {k: {"gamma": 1.0 / (2.0 * s * s)} for k, s in sigmas.items()}
        sx, sy = engine.side("X", how, xb, **fields["x"]), engine.side("Y", how, yb, **fields["y"])
        terms = hsic_terms(engine.run(xb, yb, sx, sy, "hsic", batch_size, double), batch_size, True)
        for key in totals:
            totals[key] += terms[key]
    if not (totals["xx"] > 0 and totals["yy"] > 0):
        raise ValueError("minibatch CKA is undefined: a kernel is constant within every batch")
    return {
        "value": float(totals["xy"] / math.sqrt(totals["xx"] * totals["yy"])),
        "batches": n // batch_size,
        "batch_size": batch_size,
        "rows_dropped": n % batch_size,
        "kernel": kernel,
    }
