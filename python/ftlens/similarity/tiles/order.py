"""Order statistics and ranks of the n(n-1)/2 pair values without holding them: a
histogram pass over bins placed from a sample, then either a pass that picks the values of
the few bins that hold the wanted ranks (exact), or a pass that maps every value to an
interpolated rank (Spearman), with the error that can cause."""

from __future__ import annotations

import math

import numpy as np
import torch

from . import engine

DEFAULT_BINS = 2**18  # bound on |rho - exact| about 1.5e-4 at n = 8,000; the error itself far less
MAX_PICKED = 2**24  # values one select pass may hold (128 MB)


def bins_from_sample(values: np.ndarray, bins: int) -> dict:
    """Equal bins over the sample's range (values outside fall in the two end bins)."""
    lo, hi = float(values.min()), float(values.max())
    if not hi > lo:
        hi = lo + max(abs(lo), 1.0) * 1e-9
    return {"lo": lo, "hi": hi, "bins": bins}


def histogram(x, y, sx, sy, tile: int, double: bool, progress: bool) -> dict:
    out = engine.run(x, y, sx, sy, "histogram", tile, double, progress, desc="histogram pass")
    return {key: (v.numpy() if v.dim() else float(v)) for key, v in out.items()}


def _edges(b: int, lo: float, hi: float, bins: int) -> tuple[float, float]:
    """The value range [from, to) of bin b (bin 0 below lo, bin bins + 1 from hi up)."""
    width = (hi - lo) / bins
    if b == 0:
        return -math.inf, lo
    if b == bins + 1:
        return hi, math.inf
    return lo + (b - 1) * width, lo + b * width


def order_statistics(x, y, sx, sy, tile: int, double: bool, wanted: dict, hist: dict, progress: bool) -> dict:
    """The values at the 1-based ranks ``wanted["x"]`` (and ``wanted["y"]``) among the pairs
    i < j of each side, exact: the histogram names the bins that hold them, and one pass
    picks those bins' values and counts the values below them."""
    for letter, side in (("x", sx), ("y", sy)) if y is not None else (("x", sx),):
        cumulative = np.cumsum(hist[f"counts_{letter}"])
        held = [int(np.searchsorted(cumulative, k)) for k in wanted[letter]]  # the bin of each rank
        low, high = min(held), max(held)
        picked = int(cumulative[high] - (cumulative[low - 1] if low else 0))
        if picked > MAX_PICKED:
            raise ValueError(
                f"{side.name}: {picked:,} pair values lie within one bin around the wanted rank, "
                "too many to pick exactly (many identical rows?); pass sigma explicitly"
            )
        side.select_lo = _edges(low, side.lo, side.hi, side.bins)[0]
        side.select_hi = _edges(high, side.lo, side.hi, side.bins)[1]
    out = engine.run(x, y, sx, sy, "select", tile, double, progress, desc="order statistics pass")
    values = {}
    for letter in wanted:
        picked = np.sort(out[letter].numpy())
        below = int(out[f"below_{letter}"])
        values[letter] = [float(picked[k - below - 1]) for k in wanted[letter]]
    return values


def interpolated_rank_error(counts: np.ndarray) -> float:
    """An upper bound on the Euclidean norm of (interpolated - exact mid-ranks): within a bin
    of c values both lie among the same c ranks."""
    c = counts.astype(np.float64)
    return float(np.sqrt(np.sum(c**3)))


def snap_ties(values: np.ndarray, tolerance: float) -> np.ndarray:
    """``values`` with each run of sorted values whose consecutive gaps are at most
    ``tolerance`` set to the run's smallest value: values that differ only by rounding
    compare equal."""
    ordered, where, starts = _tie_runs(values, tolerance)
    snapped = np.empty_like(ordered)
    snapped[where] = ordered[np.flatnonzero(starts)][np.cumsum(starts) - 1]
    return snapped


def midranks(values: np.ndarray, tolerance: float = 0.0) -> np.ndarray:
    """1-based ranks with ties at their mean rank (scipy's rankdata "average"), sorted by
    torch on all threads; values whose consecutive sorted gaps are at most ``tolerance``
    are ties."""
    ordered, where, first = _tie_runs(values, tolerance)
    starts = np.flatnonzero(first)  # the first of each run of ties
    ends = np.r_[starts[1:], len(ordered)]
    ranks = np.empty(len(values))
    ranks[where] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def _tie_runs(values: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted values, their positions, True where a run of ties starts)."""
    ordered, where = torch.sort(torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64)))
    ordered, where = ordered.numpy(), where.numpy()
    return ordered, where, np.r_[True, np.diff(ordered) > tolerance]
