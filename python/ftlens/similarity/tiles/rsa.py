"""RSA over pair tiles: Pearson or cosine comparison of RDMs that do not reduce to moments
(plain Euclidean distance), and rank comparisons (Spearman, Kendall's tau-b) of any RDM."""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from .. import registry
from . import engine, order


def _undefined(constant: list[str], rdm: str, strict: bool) -> float:
    if strict:
        raise ValueError(
            f"RSA is undefined: the {rdm} RDM of {' and '.join(constant)} is constant (every pair "
            "equally dissimilar); pass undefined='nan' for NaN instead"
        )
    return math.nan


def _moment_value(s: dict, compare: str, cx: float, cy: float) -> float:
    """Pearson or cosine of the pair values from their co-moment sums (values shifted by cx, cy)."""
    m = s["count"]
    if compare == "pearson":
        vx, vy = s["sxx"] - s["sx"] ** 2 / m, s["syy"] - s["sy"] ** 2 / m
        cov = s["sxy"] - s["sx"] * s["sy"] / m
    else:  # cosine of the unshifted values
        vx = s["sxx"] + 2 * cx * s["sx"] + m * cx * cx
        vy = s["syy"] + 2 * cy * s["sy"] + m * cy * cy
        cov = s["sxy"] + cy * s["sx"] + cx * s["sy"] + m * cx * cy
    return cov / math.sqrt(vx * vy)


def _moment_compare(x, y, sx, sy, compare, tile, double, progress, shuffles) -> tuple[float, list[str], dict]:
    """Pearson or cosine comparison from one pass of co-moment sums of the shifted values;
    with shuffles whose pair values fit, a second pass holds them for the null."""
    s = {
        k: float(v)
        for k, v in engine.run(x, y, sx, sy, "pearson", tile, double, progress, desc="RSA pass").items()
    }
    m, cx, cy = s["count"], sx.shift, sy.shift
    spread = {
        "x": math.sqrt(max(s["sxx"] - s["sx"] ** 2 / m, 0.0) / m),
        "y": math.sqrt(max(s["syy"] - s["sy"] ** 2 / m, 0.0) / m),
    }
    scale = {"x": abs(cx) + math.sqrt(s["sxx"] / m), "y": abs(cy) + math.sqrt(s["syy"] / m)}
    constant = engine.constant_sides(spread, scale, double)
    if constant:
        return math.nan, constant, {}
    held = {}
    if shuffles is not None:
        values = engine.run(x, y, sx, sy, "collect", tile, double, progress, desc="pair values")
        u, v = values["x"].sub_(cx), values["y"].sub_(cy)
        held["null"] = engine.null_from_held_pairs(
            shuffles,
            x.shape[0],
            v,
            lambda shuffled, _: _moment_value(dict(s, sxy=float(u @ shuffled)), compare, cx, cy),
            progress,
        )
    return _moment_value(s, compare, cx, cy), [], held


def _exact_ranks(x, y, how, compare, tile, progress, shuffles) -> tuple[float, list[str], dict]:
    """Every pair value in memory: mid-ranks and Spearman's rho, or Kendall's tau-b; with
    shuffles, the null from the same values re-indexed.

    Values are computed in float64 (Euclidean distances as squares: the same ranks), from
    rows less a per-column median for distances (a data value: differences of integer or
    offset rows are exact); values closer than a bound on their rounding
    (``tie_tolerance``) are ties, so distances equal in exact arithmetic stay tied after
    any translation of the rows."""
    if how.center_columns:
        how = engine.Map("sqeuclidean")
        shifts = {"x": column_median(x), "y": column_median(y)}
    else:
        shifts = {"x": None, "y": None}
    sx, sy = (engine.side(name, how, a, **({} if shifts[k] is None else {"column_mean": shifts[k]}))
              for name, k, a in (("X", "x", x), ("Y", "y", y)))
    out = engine.run(x, y, sx, sy, "collect", tile, True, progress, desc="RDM pass")
    tied = {}  # Kendall: the values with ties made equal; Spearman: their mid-ranks
    for k, a in (("x", x), ("y", y)):
        values, tolerance = out[k].numpy(), tie_tolerance(a, how, shifts[k], out[k])
        tie = order.snap_ties if compare == "kendall" else order.midranks
        tied[k] = tie(values, tolerance)
    constant = [name for k, name in (("x", "X"), ("y", "Y")) if tied[k].min() == tied[k].max()]
    if constant:  # every pair equal up to rounding
        return math.nan, constant, {}
    n = x.shape[0]
    if compare == "kendall":
        tx = tied["x"]
        from scipy import stats  # here, not at import: scipy.stats costs `import ftlens` 0.6 s

        score = lambda shuffled, _: float(stats.kendalltau(tx, shuffled.numpy()).statistic)  # noqa: E731
        values = torch.from_numpy(tied["y"])
    else:
        rx, ry = torch.from_numpy(tied["x"]), torch.from_numpy(tied["y"])
        rx -= rx.mean()
        ry -= ry.mean()
        norm = math.sqrt(float(rx @ rx) * float(ry @ ry))
        score = lambda shuffled, _: float(rx @ shuffled) / norm  # noqa: E731
        values = ry
    held = {}
    if shuffles is not None:
        held["null"] = engine.null_from_held_pairs(shuffles, n, values, score, progress)
    return score(values, None), [], held


def tie_tolerance(rows: torch.Tensor, how: engine.Map, shift, values: torch.Tensor) -> float:
    """A bound on the float64 rounding of pair values [n(n-1)/2] computed from ``rows``:
    the Gram form's (p + 2) eps per unit of squared norm, and for distances the rows' own
    representation error (eps per unit of the largest magnitude, times the largest L1
    difference), eightfold."""
    eps, p = float(np.finfo(np.float64).eps), rows.shape[1]
    if how.normalize_rows:
        return 8 * eps * (p + 2) * 2.0
    prepared = rows.to(torch.float64) if shift is None else rows.to(torch.float64) - shift
    squared = float(prepared.square().sum(1).max())
    if how.map == "linear":
        return 8 * eps * (p + 2) * squared
    largest, distance = engine.largest_magnitude(rows), float(values.max())
    return 8 * eps * (largest * math.sqrt(p * max(distance, 0.0)) + (p + 2) * squared)


def column_median(x: torch.Tensor) -> torch.Tensor:
    """[d] float64: a median data value of each column (rows in memory: the exact path)."""
    return x.to(torch.float64).median(0).values


def _sketched_spearman(x, y, sx, sy, how, tile, double, bins, progress) -> tuple[float, list[str], float]:
    """Spearman's rho in two passes: a histogram of each RDM over bins placed from a sample,
    then Pearson on ranks interpolated through it. Returns rho, the constant sides and a
    bound on |rho - exact rho|."""
    sample_x, sample_y = engine.sample_values(x, y, how, how, double)
    for s, sample in ((sx, sample_x), (sy, sample_y)):
        for key, value in order.bins_from_sample(sample, bins).items():
            setattr(s, key, value)
    hist = order.histogram(x, y, sx, sy, tile, double, progress)
    spread = {k: hist[f"max_{k}"] - hist[f"min_{k}"] for k in "xy"}
    scale = {k: max(abs(hist[f"max_{k}"]), abs(hist[f"min_{k}"])) for k in "xy"}
    constant = engine.constant_sides(spread, scale, double)
    if constant:
        return math.nan, constant, 0.0
    for k, s in (("x", sx), ("y", sy)):
        s.counts = torch.as_tensor(hist[f"counts_{k}"], dtype=torch.float64)
        s.min, s.max = hist[f"min_{k}"], hist[f"max_{k}"]
    s = {
        k: float(v)
        for k, v in engine.run(x, y, sx, sy, "ranks", tile, double, progress, desc="rank pass").items()
    }
    m = s["count"]
    vx, vy = s["sxx"] - s["sx"] ** 2 / m, s["syy"] - s["sy"] ** 2 / m
    rho = (s["sxy"] - s["sx"] * s["sy"] / m) / math.sqrt(vx * vy)
    bound = 0.0
    for k, v in (("x", vx), ("y", vy)):
        error = order.interpolated_rank_error(hist[f"counts_{k}"])
        norm = math.sqrt(v)
        bound += 2.0 * error / (norm - error) if norm > error else 2.0
    return rho, [], min(bound, 2.0)


def pairwise_rsa(
    X,
    Y,
    rdm: str = "euclidean",
    compare: str = "spearman",
    *,
    undefined: str = "raise",
    memory_budget: int | None = None,
    exact: bool | None = None,
    bins: int = order.DEFAULT_BINS,
    progress: bool = False,
    shuffles=None,
) -> dict:
    """RSA of X [n, p] and Y [n, q] over pair tiles: compare the RDMs' n(n-1)/2 pairs i < j.

    exact: Spearman from every pair value held in memory (None: when both fit
    ``memory_budget``); else a two-pass rank sketch whose error bound is returned. Kendall's
    tau needs the exact path. Returns a dict: ``value``, ``method``, ``exact``,
    ``error_bound``, ``tile``, ``passes``. shuffles: row orders of Y (``.orders(n)``,
    ``.count``) for a permutation test: when every pair value fits ``memory_budget``, they are
    held and ``null`` [count] gives the value under each order, by re-indexing them."""
    strict = registry.strict(undefined)
    if compare not in registry.COMPARES:
        raise ValueError(f"unknown compare {compare!r}: choose from {registry.COMPARES}")
    start = time.perf_counter()
    x, y, double = engine.sources(X, Y)
    n = x.shape[0]
    if n < 3:
        raise ValueError(f"RSA compares n(n-1)/2 pairs of rows and needs at least 3 rows, got {n}")
    how = engine.rdm_map(rdm)
    tile = engine.tile_for(n, x.shape[1], y.shape[1], double, memory_budget)
    sx, sy = engine.side("X", how, x), engine.side("Y", how, y)
    budget = engine.DEFAULT_MEMORY_BUDGET if memory_budget is None else memory_budget
    needed = 2 * 8 * engine.pair_count(n)
    details = {
        "method": "tiles",
        "rdm": rdm,
        "compare": compare,
        "tile": tile,
        "exact": True,
        "error_bound": 0.0,
    }
    shuffles = engine.shuffles_to_hold(shuffles, x, memory_budget)
    if compare in ("pearson", "cosine"):
        sample_x, sample_y = engine.sample_values(x, y, how, how, double)
        sx.shift, sy.shift = float(sample_x.mean()), float(sample_y.mean())
        value, constant, held = _moment_compare(x, y, sx, sy, compare, tile, double, progress, shuffles)
        passes = 2 if held else 1
    else:
        if exact is None:
            exact = needed <= budget
        if not exact and compare == "kendall":
            raise ValueError(
                "Kendall's tau has no sketch: it needs every pair value in memory "
                f"({needed:,} bytes for n={n}, memory_budget={budget:,}); pass exact=True or exact=None "
                "with a memory_budget that holds them, or use compare='spearman'"
            )
        if exact:
            tile = details["tile"] = engine.tile_for(n, x.shape[1], y.shape[1], True, memory_budget)
            value, constant, held = _exact_ranks(x, y, how, compare, tile, progress, shuffles)
            passes = 1
        else:
            if isinstance(bins, bool) or not isinstance(bins, int) or bins < 16:
                raise ValueError(f"bins must be an integer >= 16, got {bins!r}")
            value, constant, bound = _sketched_spearman(x, y, sx, sy, how, tile, double, bins, progress)
            held = {}
            details.update(exact=False, error_bound=bound, bins=bins)
            passes = 2
    if constant:
        value = _undefined(constant, rdm, strict)
    return {**held, "value": value, **details, "passes": passes, "seconds": time.perf_counter() - start}
