"""The Multi-Bootstrap (Sellam et al. 2021, "The MultiBERTs", §3): intervals for a
procedure (fine-tuning with some options), not one of its runs, by resampling seeds and
evaluation units (examples, or groups of inputs) jointly.

A draw resamples the units with replacement (counts W [draws, units]) and the seeds with
replacement (counts V [draws, seeds]); its value is the mean over the drawn seeds of each
seed's statistic on the drawn units. Every statistic here is a weighted sum over units, so
all draws are GEMMs:

* a task metric that is a ratio of per-example sums (accuracy, LAS, F1): the numerators
  and denominators of all draws are W @ num.T and W @ den.T;
* a representation measure per layer (RSA, CKA, ...) from per-group moments: a group
  drawn m times counts m times, and moments about one common shift add, so the moments of
  all draws are W @ (groups x statistics) (``moment_draws``) and nothing is recomputed
  from activations.

Draws come from ``numpy.random.default_rng(seed)``: units first, then the seeds (of the
first procedure, then of the second where they are not shared), so results reproduce and a
procedure's interval is the same alone and in a comparison.
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import torch

from .._util.validation import positive_int
from . import gram_draws, registry

DRAWS = 1000
METHODS = ("percentile", "normal")


@dataclass(frozen=True)
class Resamples:
    """Which units and seeds each draw takes: ``units`` [draws, n_units] and ``seeds``
    [draws, n_seeds] (``other_seeds`` for a second procedure whose seeds are not shared),
    indices drawn with replacement."""

    units: np.ndarray
    seeds: np.ndarray
    other_seeds: np.ndarray | None = None

    @property
    def unit_counts(self) -> np.ndarray:
        return counts(self.units)


def draw(n_units: int, n_seeds: int, draws: int = DRAWS, seed: int = 0,
         other_seeds: int | None = None) -> Resamples:
    """The draws of a Multi-Bootstrap over ``n_units`` units and ``n_seeds`` seeds (and
    ``other_seeds`` seeds of an unpaired second procedure)."""
    n_units, n_seeds = positive_int(n_units, "n_units"), positive_int(n_seeds, "n_seeds")
    draws = positive_int(draws, "draws")
    rng = np.random.default_rng(seed)
    units = rng.integers(0, n_units, size=(draws, n_units))
    seeds = rng.integers(0, n_seeds, size=(draws, n_seeds))
    other = None if other_seeds is None else rng.integers(0, other_seeds, size=(draws, other_seeds))
    return Resamples(units, seeds, other)


def counts(indices: np.ndarray) -> np.ndarray:
    """How often each of n items is drawn in each row of ``indices`` [draws, n]: [draws, n]."""
    draws, n = indices.shape
    flat = indices + (np.arange(draws) * n)[:, None]
    return np.bincount(flat.ravel(), minlength=draws * n).reshape(draws, n).astype(np.float64)


@dataclass
class Interval:
    """A Multi-Bootstrap estimate: ``estimate`` (the mean over seeds of each seed's value on
    all units), ``se`` (the standard deviation of the draws), the percentile interval
    ``low``-``high`` at ``level`` (by ``method``), the ``draws`` themselves and their
    ``bias`` (mean draw minus estimate). Arrays of the statistic's shape (a float for a task
    metric, [layers] for a similarity)."""

    estimate: np.ndarray | float
    se: np.ndarray | float
    low: np.ndarray | float
    high: np.ndarray | float
    level: float
    seeds: int
    units: int
    draws: np.ndarray = field(repr=False)
    method: str = "percentile"
    bias: np.ndarray | float = 0.0

    def to_dict(self) -> dict:
        return {"estimate": _plain(self.estimate), "se": _plain(self.se), "low": _plain(self.low),
                "high": _plain(self.high), "level": self.level, "seeds": self.seeds, "units": self.units,
                "n_draws": len(self.draws), "method": self.method, "bias": _plain(self.bias)}


@dataclass
class Difference:
    """Procedure b minus procedure a: ``estimate``, ``se``, the interval (the method of a and
    b), ``p`` (two-sided, for "no difference": twice the smaller share of draws on either
    side of 0; with the normal method, from estimate / se) and ``p_not_better`` (the share
    of draws where b is not above a: Sellam et al.'s one-sided p-value); ``paired``:
    whether the seeds were shared (the units always are)."""

    estimate: np.ndarray | float
    se: np.ndarray | float
    low: np.ndarray | float
    high: np.ndarray | float
    p: np.ndarray | float
    p_not_better: np.ndarray | float
    paired: bool
    a: Interval
    b: Interval

    def to_dict(self) -> dict:
        return {"estimate": _plain(self.estimate), "se": _plain(self.se), "low": _plain(self.low),
                "high": _plain(self.high), "p": _plain(self.p), "p_not_better": _plain(self.p_not_better),
                "paired": self.paired, "a": self.a.to_dict(), "b": self.b.to_dict()}


def _plain(v):
    return v.tolist() if isinstance(v, np.ndarray) else v


def _scalar(v: np.ndarray):
    return float(v) if np.ndim(v) == 0 else v


def interval(full: np.ndarray, per_seed_draws: np.ndarray, seed_indices: np.ndarray, level: float,
             units: int, method: str = "percentile") -> Interval:
    """The Multi-Bootstrap of a statistic from each seed's value on all units ``full``
    [seeds, *shape] and on each draw's units ``per_seed_draws`` [seeds, draws, *shape], the
    draws' seeds being ``seed_indices`` [draws, seeds].

    method: "percentile" (Sellam et al.: the draws' quantiles; for means and ratios of
    sums such as accuracy) or "normal" (estimate +- z SE, for statistics that resampling
    with replacement biases: a group drawn twice duplicates its rows, and CKA and RSA rise
    with duplicated rows, so their draws sit above the estimate)."""
    _check_level(level)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    full = np.asarray(full, dtype=np.float64)
    n_seeds = full.shape[0]
    weights = counts(seed_indices) / n_seeds  # [draws, seeds]
    values = np.einsum("ds,sd...->d...", weights, per_seed_draws)
    estimate = full.mean(axis=0)
    low, high, se = _bounds(estimate, values, level, method)
    bias = values.mean(axis=0) - estimate
    return Interval(_scalar(estimate), _scalar(se), _scalar(low), _scalar(high), level, n_seeds, units,
                    values, method, _scalar(bias))


def _bounds(estimate, values: np.ndarray, level: float, method: str):
    se = values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros_like(values[0])
    if method == "normal":
        half = NormalDist().inv_cdf(0.5 + level / 2) * se
        return estimate - half, estimate + half, se
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail], axis=0)
    return low, high, se


def difference(a: Interval, b: Interval, paired: bool) -> Difference:
    """b minus a from two Multi-Bootstraps that drew the same units (and, when ``paired``,
    the same seeds), draw by draw."""
    if a.draws.shape != b.draws.shape or a.units != b.units or a.method != b.method:
        raise ValueError("a difference needs two bootstraps over the same units with the same draws")
    deltas = b.draws - a.draws
    estimate = np.asarray(b.estimate) - np.asarray(a.estimate)
    low, high, se = _bounds(estimate, deltas, a.level, a.method)
    if a.method == "normal":
        from scipy.stats import norm

        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(se > 0, estimate / se, np.sign(estimate) * np.inf)  # no spread: certain
        at_most = np.where(estimate == 0, 1.0, norm.sf(z))
        at_least = np.where(estimate == 0, 1.0, norm.cdf(z))
    else:
        at_most, at_least = (deltas <= 0).mean(axis=0), (deltas >= 0).mean(axis=0)
    p = np.minimum(1.0, 2 * np.minimum(at_most, at_least))
    return Difference(_scalar(estimate), _scalar(se), _scalar(low), _scalar(high), _scalar(p),
                      _scalar(at_most), paired, a, b)


# -- task metrics ------------------------------------------------------------------------
def _ratios(num: np.ndarray, den: np.ndarray, unit_counts: np.ndarray) -> np.ndarray:
    """Each seed's metric on each draw's units: [seeds, draws]."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (num @ unit_counts.T) / (den @ unit_counts.T)


def _scores(num, den, name: str) -> tuple[np.ndarray, np.ndarray]:
    num = np.atleast_2d(np.asarray(num, dtype=np.float64))
    den = np.ones_like(num) if den is None else np.atleast_2d(np.asarray(den, dtype=np.float64))
    if num.ndim != 2 or num.shape != den.shape:
        raise ValueError(f"{name}: num and den must be [seeds, examples] of one shape, got {num.shape} and "
                         f"{den.shape}")
    if not (np.isfinite(num).all() and np.isfinite(den).all()):
        raise ValueError(f"{name}: the per-example scores hold NaN or Inf")
    if (den < 0).any() or (den.sum(axis=1) <= 0).any():
        raise ValueError(f"{name}: every seed needs a positive total denominator (examples that count)")
    return num, den


def multibootstrap(num, den=None, *, seeds=None, scale: float = 1.0, draws: int = DRAWS,
                   level: float = 0.95, seed: int = 0) -> Interval:
    """The Multi-Bootstrap of a task metric from per-example scores.

    num, den: [seeds, examples] (or [examples] for one seed): the metric of seed s on any
    multiset of examples is ``scale * sum(num[s]) / sum(den[s])`` over it (den None: 1 per
    example, a mean). seeds: each row's seed (default 0, 1, ...); the rows are taken in
    seed order, so a procedure's draws are the same alone and in a comparison. With one
    seed it is the plain bootstrap over examples."""
    num, den = _scores(num, den, "multibootstrap")
    per_seed = _metric_draws(num, den, scale, draws, seed)
    return across(scale * num.sum(axis=1) / den.sum(axis=1), per_seed, seeds, num.shape[1], level, seed=seed)


def _metric_draws(num, den, scale, draws, seed) -> np.ndarray:
    """Each seed's metric on each draw's examples [seeds, draws] (the examples' draws do
    not depend on the number of seeds: they come first)."""
    return scale * _ratios(num, den, draw(num.shape[1], 1, draws, seed).unit_counts)


def across(full, per_seed_draws, seeds, units: int, level: float = 0.95, method: str = "percentile",
           seed: int = 0) -> Interval:
    """The Multi-Bootstrap of one procedure from each seed's statistic on all units
    ``full`` [seeds, ...] and on the draws of units ``per_seed_draws`` [seeds, draws, ...]
    (drawn by ``draw(units, ..., seed)``), with the seeds drawn from the same stream."""
    full, per_seed_draws = np.asarray(full, dtype=np.float64), np.asarray(per_seed_draws, dtype=np.float64)
    order, _, _ = _seed_pairing(seeds, seeds, len(full), len(full), True)
    resamples = draw(units, len(full), per_seed_draws.shape[1], seed)
    return interval(full[order], per_seed_draws[order], resamples.seeds, level, units, method)


def between(a: tuple, b: tuple, units: int, *, paired: bool | None = None, level: float = 0.95,
            method: str = "percentile", seed: int = 0) -> Difference:
    """Procedure b minus procedure a, each given as (full [seeds, ...], per-seed draws
    [seeds, draws, ...], seeds) on the same draws of the same units (see ``across``).
    paired (default: whether both have the same seeds): the same seeds drawn for both; else
    each procedure's seeds are drawn on their own."""
    (a_full, a_draws, a_seeds), (b_full, b_draws, b_seeds) = a, b
    a_order, b_order, paired = _seed_pairing(a_seeds, b_seeds, len(a_full), len(b_full), paired)
    resamples = draw(units, len(a_full), np.shape(a_draws)[1], seed, None if paired else len(b_full))
    first = interval(np.asarray(a_full)[a_order], np.asarray(a_draws)[a_order], resamples.seeds, level, units,
                     method)
    second = interval(np.asarray(b_full)[b_order], np.asarray(b_draws)[b_order],
                      resamples.seeds if paired else resamples.other_seeds, level, units, method)
    return difference(first, second, paired)


def compare_procedures(a: tuple, b: tuple, *, a_seeds=None, b_seeds=None, paired: bool | None = None,
                       scale: float = 1.0, draws: int = DRAWS, level: float = 0.95,
                       seed: int = 0) -> Difference:
    """Procedure b minus procedure a on the same eval examples: ``a`` and ``b`` are
    (num, den) as for ``multibootstrap``, scored on the same examples in the same order.

    a_seeds, b_seeds: the seeds of each one's runs, in the order of their rows. paired
    (default: whether both have the same seeds): the same seeds drawn for both, each seed's
    runs side by side; unpaired, each procedure's seeds are drawn on their own. The
    examples are drawn together either way."""
    a_num, a_den = _scores(*a, "procedure a")
    b_num, b_den = _scores(*b, "procedure b")
    if a_num.shape[1] != b_num.shape[1]:
        raise ValueError(f"the procedures were scored on different examples ({a_num.shape[1]} and "
                         f"{b_num.shape[1]}): a comparison needs the same eval examples for both")
    sides = [(scale * num.sum(axis=1) / den.sum(axis=1), _metric_draws(num, den, scale, draws, seed), seeds)
             for num, den, seeds in ((a_num, a_den, a_seeds), (b_num, b_den, b_seeds))]
    return between(*sides, a_num.shape[1], paired=paired, level=level, seed=seed)


def check_seed_labels(n: int, seeds, what: str, noun: str) -> None:
    """``n`` results of one procedure (``noun`` each, ``what``: the caller, for the
    message) must come with one distinct seed each."""
    if not n:
        raise ValueError(f"{what}: no {noun} given")
    if len(seeds) != n or len(set(seeds)) != len(seeds):
        raise ValueError(f"{what}: give one distinct seed per {noun}, got seeds {list(seeds)} for {n} "
                         f"{noun}s")


def _seed_pairing(a_seeds, b_seeds, n_a: int, n_b: int, paired: bool | None):
    """(order of a's rows, order of b's rows, paired): the rows sorted by seed when paired,
    so that draw i takes the same seeds on both sides."""
    a_seeds = list(range(n_a)) if a_seeds is None else [int(s) for s in a_seeds]
    b_seeds = list(range(n_b)) if b_seeds is None else [int(s) for s in b_seeds]
    for name, seeds, n in (("a_seeds", a_seeds, n_a), ("b_seeds", b_seeds, n_b)):
        if len(seeds) != n or len(set(seeds)) != n:
            raise ValueError(f"{name} must name each of the {n} runs' seeds once, got {seeds}")
    shared = set(a_seeds) == set(b_seeds)
    if paired is None:
        paired = shared
    if paired and not shared:
        raise ValueError(f"a paired comparison needs runs of the same seeds: a has {sorted(a_seeds)}, b has "
                         f"{sorted(b_seeds)}; run the missing seeds, or compare unpaired (paired=False)")
    if not paired:
        return np.arange(n_a), np.arange(n_b), False
    return np.argsort(a_seeds), np.argsort(b_seeds), True


# -- representation measures from per-group moments ------------------------------------
def moment_draws(groups, requests: dict[str, dict], unit_counts: np.ndarray, chunk_draws: int = 16,
                 threads: int | None = None) -> dict[str, np.ndarray]:
    """Each requested measure ({name: options}) on each draw's groups: {name: [draws,
    layers]}. ``groups``: one ``LayerMoments`` per input group (``GroupedMoments.groups``,
    pairs "diagonal"); ``unit_counts`` [draws, groups]: how often each draw takes each group.
    A draw's moments are the exact weighted merge of its groups' (one GEMM per layer over
    all draws of a chunk); undefined values are NaN. CKA and RSA take a faster way to the
    same values (``gram_draws``: Frobenius norms of weighted sums from Gram matrices of the
    groups). threads: layers side by side in the explicit merges (default: torch's)."""
    unit_counts = np.asarray(unit_counts, dtype=np.float64)
    if unit_counts.ndim != 2 or unit_counts.shape[1] != len(groups):
        raise ValueError(f"unit_counts must be [draws, {len(groups)} groups], got {unit_counts.shape}")
    first = groups[0]
    if first.pairs != "diagonal":
        raise ValueError("the bootstrap over groups compares layer l with layer l (pairs='diagonal')")
    empty = [g for g, moments in enumerate(groups) if moments.n == 0]
    if empty:
        raise ValueError(f"groups {empty} hold no rows; use fewer groups")
    for name, options in requests.items():  # refused here, not after the first GEMM
        registry.check_streamable(name, options)
    stats = _additive_states(groups)
    weights = torch.from_numpy(unit_counts)
    out = {name: np.empty((len(unit_counts), first.n_layers)) for name in requests}
    fast = {name: options for name, options in requests.items() if gram_draws.supports(name, options)}
    for layer in range(first.n_layers):
        forms = gram_draws.GramDraws(stats["states"], layer, stats["eps"])
        for name, options in fast.items():
            out[name][:, layer] = forms.measure(name, options, weights).numpy()
    merged = {name: options for name, options in requests.items() if name not in fast}
    if merged:
        _merged_draws(first, stats, merged, weights, chunk_draws, threads, out)
    return out


def _merged_draws(first, stats: dict, requests: dict, weights: torch.Tensor, chunk_draws: int,
                  threads: int | None, out: dict) -> None:
    """The measures of each draw from its explicitly merged moments (any moment measure)."""
    from .moments import LayerMoments

    def one_layer(layer: int) -> None:
        moments = LayerMoments(1, first.p, first.q, rdms=first.rdms)
        table, layout = _layer_table(stats, layer)
        merged = torch.empty(min(chunk_draws, len(weights)), table.shape[1], dtype=torch.float64)
        for start in range(0, len(weights), chunk_draws):
            chunk = weights[start:start + chunk_draws]
            torch.matmul(chunk, table, out=merged[: len(chunk)])  # (one buffer: no page faults per chunk)
            for i in range(len(chunk)):
                # a weighted sum of checked states: loaded without the checks of a saved one
                moments._core.load_state_dict(_state_of(merged[i], layout, stats["eps"]))
                for name, options in requests.items():
                    value = moments.measure(name, undefined="nan", **options)
                    out[name][start + i, layer] = np.asarray(value).reshape(-1)[0]

    workers = max(1, min(threads or torch.get_num_threads(), first.n_layers))
    if workers == 1:
        for layer in range(first.n_layers):
            one_layer(layer)
    else:  # the core's calls release the GIL: layers side by side
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            list(pool.map(one_layer, range(first.n_layers)))


def _additive_states(groups) -> dict:
    """Every group's state, its sides moved to group 0's shifts: {"states": [state dict per
    group], "eps": the largest input roundoff}."""
    reference = groups[0]
    states = []
    for moments in groups:
        copy = moments.empty_like().merge(moments)
        copy._core.rebase_to(reference._core)
        states.append(copy.state_dict())
    return {"states": states, "eps": max(float(s["eps"][0]) for s in states)}


SIDE_SUMS = ("norm2_sum", "unit_sum", "zero_rows")


def _layer_table(stats: dict, layer: int) -> tuple[torch.Tensor, list]:
    """One layer's statistics as sums over rows (about group 0's shifts), one row per group:
    ([groups, statistics] float64, the layout: (key in a one-layer state, slice, shape,
    how to read it back))."""
    states = stats["states"]
    state = states[0]
    views = sorted({key.split(".")[0] for key in state if "." in key})
    columns: list[list[torch.Tensor]] = [[] for _ in states]
    layout: list = []
    offset = 0

    def add(key: str, values: list[torch.Tensor] | None, kind: str, extra=None) -> None:
        nonlocal offset
        if values is None:  # the same in every group and every draw
            layout.append((key, None, None, kind, extra))
            return
        shape = tuple(values[0].shape)
        size = int(np.prod(shape)) if shape else 1
        for g, value in enumerate(values):
            columns[g].append(value.reshape(-1).to(torch.float64))
        layout.append((key, slice(offset, offset + size), shape, kind, extra))
        offset += size

    for view in views:
        shifts = {}
        for side in ("x", "y"):
            prefix = f"{view}.{side}.{layer}."
            if prefix + "mean" not in state:
                continue
            n = [s["n"].double() for s in states]
            shift = state[prefix + "shift"]
            shifts[side] = shift
            sums = [(s[prefix + "mean"] - shift) * c for s, c in zip(states, n, strict=True)]
            add(f"{view}.{side}.0.mean", sums, "mean", shift)
            add(f"{view}.{side}.0.shift", None, "fixed", shift)
            for name in SIDE_SUMS:
                add(f"{view}.{side}.0.{name}", [s[prefix + name] for s in states],
                    "int" if name == "zero_rows" else "sum")
        for block, (a, b) in (("xx", ("x", "x")), ("yy", ("y", "y")), ("xy", ("x", "y"))):
            prefix = f"{view}.{block}.{layer}."
            if prefix + "S" not in state:
                continue
            key = f"{view}.{block}.0."
            n = [s[prefix + "n"] for s in states]
            da = [s[prefix + "mean_a"] - shifts[a] for s in states]
            db = [s[prefix + "mean_b"] - shifts[b] for s in states]
            add(key + "n", n, "sum")
            for name, offsets, side in (("mean_a", da, a), ("mean_b", db, b)):
                add(key + name, [d * c for d, c in zip(offsets, n, strict=True)], "block_mean",
                    (shifts[side], key + "n"))
            add(key + "S", [s[prefix + "S"] + c * torch.outer(x, y)
                            for s, c, x, y in zip(states, n, da, db, strict=True)], "product",
                (key + "n", key + "mean_a", key + "mean_b"))
            for name in gram_draws.NORM_TERMS:
                add(key + name, [s[prefix + name] for s in states], "sum")
    for name in ("n", "chunks"):
        add(name, [s[name] for s in states], "int")
    return torch.stack([torch.cat(c) for c in columns]), layout


def _state_of(row: torch.Tensor, layout: list, eps: float) -> dict:
    """A one-layer state dict from a weighted sum of the table's rows."""
    sums = {key: row[where].reshape(shape) for key, where, shape, _, _ in layout if where is not None}
    n_rows = sums["n"]
    state = {"eps": torch.tensor([eps], dtype=torch.float64)}
    for key, _, _, kind, extra in layout:
        value = sums.get(key)
        if kind == "int":
            state[key] = value.round().to(torch.int64)
        elif kind == "fixed":
            state[key] = extra.clone()
        elif kind == "mean":
            state[key] = extra + value / n_rows
        elif kind == "block_mean":
            shift, count = extra
            state[key] = shift + value / sums[count]
        elif kind == "product":
            count, mean_a, mean_b = extra
            state[key] = value - torch.outer(sums[mean_a], sums[mean_b]) / sums[count]
        else:
            state[key] = value  # (a view of this chunk's sums: loading copies it)
    return state


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
