"""Kernel CKA over pair tiles: exact biased and unbiased HSIC for linear, cosine and RBF
kernels, and the RBF bandwidth from the median distance (Kornblith et al. 2019)."""

from __future__ import annotations

import math
import time

import numpy as np

from ..._util.validation import finite_number
from .. import registry
from . import engine, order


def _median_ranks(n: int) -> list[int]:
    """Kornblith et al.'s median is over all n^2 entries of the squared-distance matrix: n
    zeros, then each pair i < j twice. The 1-based ranks among the n(n-1)/2 pairs of the
    entries it averages (0 where the entry is a diagonal zero)."""
    total = n * n
    positions = [(total - 1) // 2] if total % 2 else [total // 2 - 1, total // 2]
    return [0 if p < n else (p - n) // 2 + 1 for p in positions]


def median_sq_distances(x, y, double: bool, memory_budget, progress: bool) -> tuple[dict, int]:
    """The median squared distance of X's rows and of Y's rows (Kornblith's convention),
    exact; and the passes it took (one when every pair fits the budget, else two)."""
    n = x.shape[0]
    ranks = _median_ranks(n)
    wanted = [k for k in ranks if k > 0]
    how = engine.rdm_map("sqeuclidean")
    tile = engine.tile_for(n, x.shape[1], y.shape[1], double, memory_budget)
    sx, sy = engine.side("X", how, x), engine.side("Y", how, y)
    budget = engine.DEFAULT_MEMORY_BUDGET if memory_budget is None else memory_budget
    if not wanted:
        values, passes = {"x": [], "y": []}, 0
    elif 2 * 8 * engine.pair_count(n) <= budget:
        out = engine.run(x, y, sx, sy, "collect", tile, double, progress, desc="median pass")
        values = {
            k: np.partition(out[k].numpy(), [w - 1 for w in wanted])[[w - 1 for w in wanted]].tolist()
            for k in ("x", "y")
        }
        passes = 1
    else:
        sample_x, sample_y = engine.sample_values(x, y, how, how, double)
        for s, sample in ((sx, sample_x), (sy, sample_y)):
            for key, value in order.bins_from_sample(sample, order.DEFAULT_BINS).items():
                setattr(s, key, value)
        hist = order.histogram(x, y, sx, sy, tile, double, progress)
        values = order.order_statistics(
            x, y, sx, sy, tile, double, {"x": wanted, "y": wanted}, hist, progress
        )
        passes = 2
    medians = {}
    for k in ("x", "y"):
        it = iter(values[k])
        medians[k] = float(np.mean([0.0 if r == 0 else next(it) for r in ranks]))
    return medians, passes


def _sigmas(sigma, threshold, x, y, double, memory_budget, progress) -> tuple[dict, int]:
    if sigma is not None:
        pair = sigma if isinstance(sigma, (tuple, list)) else (sigma, sigma)
        if len(pair) != 2:
            raise ValueError(f"sigma must be a number or a pair (sigma_x, sigma_y), got {sigma!r}")
        for value in pair:
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float, np.floating))
                or not value > 0
                or not math.isfinite(value)
            ):
                raise ValueError(
                    f"sigma must be > 0 (the RBF bandwidth), got {value!r}; or pass sigma=None for "
                    "threshold x the median distance"
                )
        return {"x": float(pair[0]), "y": float(pair[1])}, 0
    threshold = finite_number(threshold, "threshold (sigma = threshold x the median distance)", low=0,
                              low_open=True)
    medians, passes = median_sq_distances(x, y, double, memory_budget, progress)
    for k, name in (("x", "X"), ("y", "Y")):
        if not medians[k] > 0:
            raise ValueError(
                f"the median squared distance between the rows of {name} is 0 (at least half the "
                "pairs are identical rows), so the median bandwidth is 0; pass sigma explicitly"
            )
    return {k: threshold * math.sqrt(m) for k, m in medians.items()}, passes


def hsic_terms(sums: dict, n: int, debiased: bool) -> dict:
    """HSIC(K, L), HSIC(K, K), HSIC(L, L) from the tile sums (values shifted by constants,
    which no HSIC estimator sees). Biased: tr(KHLH); unbiased: Song et al. (2012), times
    n(n - 3). Both up to a factor common to the three."""
    rx, ry = sums["row_x"].numpy(), sums["row_y"].numpy()
    dx, dy = sums["diag_x"].numpy(), sums["diag_y"].numpy()
    off = {"xy": float(sums["kl"]), "xx": float(sums["kk"]), "yy": float(sums["ll"])}
    rows = {"x": rx, "y": ry}
    diag = {"x": dx, "y": dy}
    out = {}
    for a, b in (("x", "y"), ("x", "x"), ("y", "y")):
        if debiased:
            out[a + b] = (
                off[a + b]
                + rows[a].sum() * rows[b].sum() / ((n - 1) * (n - 2))
                - 2.0 / (n - 2) * float(rows[a] @ rows[b])
            )
        else:
            full_a, full_b = rows[a] + diag[a], rows[b] + diag[b]
            out[a + b] = (
                off[a + b]
                + float(diag[a] @ diag[b])
                - 2.0 / n * float(full_a @ full_b)
                + full_a.sum() * full_b.sum() / n**2
            )
    return out


def _held_null(x, y, sx, sy, sums, tile, double, debiased, shuffles, progress) -> np.ndarray:
    """CKA under each shuffle of Y's rows, from every pair value held in memory: only the
    cross sum of k * l is new per shuffle (a re-indexing); the row sums and diagonals of L
    are permuted, the rest is unchanged."""
    values = engine.run(x, y, sx, sy, "collect", tile, double, progress, desc="pair values")
    kx = values["x"].sub_(sx.shift)  # shifted as the HSIC sums are
    ly = values["y"].sub_(sy.shift)

    def score(shuffled, order):
        h = hsic_terms(
            dict(
                sums, kl=2.0 * float(kx @ shuffled), row_y=sums["row_y"][order], diag_y=sums["diag_y"][order]
            ),
            x.shape[0],
            debiased,
        )
        return h["xy"] / math.sqrt(h["xx"] * h["yy"])

    return engine.null_from_held_pairs(shuffles, x.shape[0], ly, score, progress)


def kernel_cka(
    X,
    Y,
    kernel: str = "rbf",
    sigma=None,
    threshold: float = 1.0,
    debiased: bool = False,
    *,
    undefined: str = "raise",
    memory_budget: int | None = None,
    progress: bool = False,
    shuffles=None,
) -> dict:
    """CKA of X [n, p] and Y [n, q] with any kernel, over pair tiles (O(n + T^2) memory).

    Returns a dict: ``value`` and how it was computed (``method``, ``kernel``, ``sigma``,
    ``tile``, ``passes``). shuffles: row orders of Y (``.orders(n)``, ``.count``) for a
    permutation test: when every pair value fits ``memory_budget``, one more pass holds
    them and ``null`` [count] gives CKA under each order, by re-indexing them."""
    strict = registry.strict(undefined)
    start = time.perf_counter()
    x, y, double = engine.sources(X, Y)
    n = x.shape[0]
    if n < (4 if debiased else 2):
        raise ValueError(
            f"kernel CKA needs at least {4 if debiased else 2} rows"
            f"{' for the unbiased HSIC (debiased=True)' if debiased else ''}, got {n}"
        )
    how = engine.kernel_map(kernel)
    tile = engine.tile_for(n, x.shape[1], y.shape[1], double, memory_budget)
    sigmas, passes = ({"x": None, "y": None}, 0)
    fields = {"x": {}, "y": {}}
    if kernel == "rbf":
        sigmas, passes = _sigmas(sigma, threshold, x, y, double, memory_budget, progress)
        fields = {k: {"gamma": 1.0 / (2.0 * s * s)} for k, s in sigmas.items()}
    elif sigma is not None:
        raise ValueError(f"sigma is the RBF bandwidth; the {kernel} kernel takes none")
    sx, sy = engine.side("X", how, x, **fields["x"]), engine.side("Y", how, y, **fields["y"])
    if kernel != "linear":  # shift values by about their mean, so the sums do not cancel
        sample_x, sample_y = engine.sample_values(x, y, how, how, double, fields["x"], fields["y"])
        sx.shift, sy.shift = float(sample_x.mean()), float(sample_y.mean())
    sums = engine.run(x, y, sx, sy, "hsic", tile, double, progress, desc="HSIC pass")
    h = hsic_terms(sums, n, debiased)
    scale = {
        k: float(sums[f"{'kk' if k == 'x' else 'll'}"]) + float(sums[f"diag_{k}"].square().sum())
        for k in "xy"
    }
    value = math.nan
    constant = engine.constant_sides({"x": h["xx"], "y": h["yy"]}, scale, double)
    if constant:
        if strict:
            raise ValueError(
                f"kernel CKA is undefined: the {kernel} kernel of {' and '.join(constant)} is constant "
                "(no variation between rows); pass undefined='nan' for NaN instead"
            )
    else:
        value = float(h["xy"] / math.sqrt(h["xx"] * h["yy"]))
    held = {}
    shuffles = engine.shuffles_to_hold(shuffles, x, memory_budget)
    if shuffles is not None and not constant:
        held = {"null": _held_null(x, y, sx, sy, sums, tile, double, debiased, shuffles, progress)}
        passes += 1
    return {
        **held,
        "value": value,
        "method": "tiles",
        "kernel": kernel,
        "debiased": debiased,
        "sigma": [sigmas["x"], sigmas["y"]] if kernel == "rbf" else None,
        # the median is found exactly (its error is 0), not estimated
        "sigma_from": ("given" if sigma is not None else "exact median") if kernel == "rbf" else None,
        "tile": tile,
        "passes": passes + 1,
        "seconds": time.perf_counter() - start,
    }
