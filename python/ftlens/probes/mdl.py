"""Minimum description length probing (Voita & Titov 2020), the online code.

The training rows, in a seeded order of whole inputs, are cut into blocks at the usual
fractions (0.1%, 0.2%, 0.4%, ..., 50%, 100%). The first block is sent with the uniform
code; each later block with the probe trained on all blocks before it (warm-started from
the previous block's probe). Codelength = sum of those costs; compression = uniform
codelength / online codelength. Every layer and task at once, like the probes.

Each block's probe minimizes the mean cross-entropy plus l2/2 (|W|² + |b|²): the bias is
penalized too, so a prefix that lacks a class (the first blocks hold a few rows) still
has one finite optimum, and the codelength does not depend on where the optimizer stops
or on its start.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._core import _C
from .features import ProbeRows
from .linear import LinearProbes
from .logistic import Whitening, fit_logistic
from .ridge import folds_of

FRACTIONS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.0625, 0.125, 0.25, 0.5, 1.0)


def block_bounds(n: int, fractions=FRACTIONS) -> list[int]:
    """Row counts at the end of each block (increasing, the last = n)."""
    bounds = sorted({max(1, min(n, int(round(f * n)))) for f in fractions})
    return bounds if bounds[-1] == n else [*bounds, n]


def online_codelength(rows: ProbeRows, labels: np.ndarray, widths, start: LinearProbes, l2: np.ndarray,
                      whiten: Whitening, *,
                      seed: int = 0, max_passes: int = 50, chunk_rows: int = 8192, device=None,
                      progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(codelength in kbits, compression) per (layer, task), each [L, T]."""
    n_inputs = int(rows.inputs.max()) + 1
    rank = folds_of(rows.inputs, n_inputs, seed)  # as many folds as inputs: a seeded rank per input
    order = np.lexsort((np.arange(rows.n), rank))
    bounds = block_bounds(rows.n)
    widths = np.asarray(widths)
    first = labels[order[: bounds[0]]] >= 0
    bits = first.sum(0)[None, :] * np.log2(widths)[None, :] * np.ones((start.w.shape[0], 1))
    probes = start
    for i in range(1, len(bounds)):
        seen = np.sort(order[: bounds[i - 1]])
        block = np.sort(order[bounds[i - 1] : bounds[i]])
        probes, _ = fit_logistic(rows, labels, probes, l2, whiten, positions=seen, max_passes=max_passes,
                                 chunk_rows=chunk_rows, seed=seed, device=device, progress=progress,
                                 penalize_bias=True, desc=f"mdl {i}/{len(bounds) - 1}")
        bits += _nats(rows, labels, probes, block, chunk_rows, device) / math.log(2)
    uniform = (labels >= 0).sum(0)[None, :] * np.log2(widths)[None, :]
    return bits / 1000, uniform / bits


def _nats(rows: ProbeRows, labels: np.ndarray, probes: LinearProbes, positions: np.ndarray, chunk_rows: int,
          device) -> np.ndarray:
    """Summed cross-entropy (nats) of the rows at ``positions`` per (layer, task)."""
    dev = torch.device("cpu") if device is None else torch.device(device)
    total = torch.zeros(probes.w.shape[0], len(probes.offsets) - 1, dtype=torch.float64)
    labels_t = torch.from_numpy(np.ascontiguousarray(labels))
    scratch = _C.Scratch()
    for pos, xs in rows.chunks(chunk_rows, positions, reuse=True):
        loss, _, _ = _C.logistic_loss_grad(xs.to(dev), probes.shift.to(dev), probes.scale.to(dev),
                                           probes.w.to(dev), probes.b.to(dev), labels_t[pos].to(dev),
                                           probes.offsets.to(dev), scratch)
        total += loss.cpu()
    return total.numpy()
