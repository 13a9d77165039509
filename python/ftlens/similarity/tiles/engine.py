"""Runs the C++ tile engine: inputs as row sources, named kernels and RDMs as pair maps,
the tile size from a memory budget, one pass per call with a progress bar.

A pass walks the upper triangle of the n x n pair space in T x T tiles (one GEMM per side
and tile, then a fused map and reducer), so memory is O(n + T^2) whatever n.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ..._core import _C, core_enum
from ..._util import validation
from .. import registry

DEFAULT_MEMORY_BUDGET = 256 * 2**20
MIN_TILE = 64
MAX_TILE = 2048
EPS = {True: np.finfo(np.float64).eps, False: np.finfo(np.float32).eps}  # by "computed in float64"
SAMPLE_ROWS = 1024


def source(a, name: str) -> torch.Tensor:
    """A 2-D tensor over ``a`` without copying it: numpy arrays and memmaps (store layers)
    are wrapped, so the engine reads them one row block at a time; CUDA tensors stay there."""
    a = validation.as_matrix(a, name)
    if isinstance(a, np.ndarray):
        if not a.dtype.isnative:
            raise TypeError(
                f"{name} is stored big-endian; convert it with {name}.astype({name}.dtype.newbyteorder('='))"
            )
        if not a.flags.c_contiguous:
            a = np.ascontiguousarray(a)
        with warnings.catch_warnings():  # a read-only memmap: the engine only reads
            warnings.simplefilter("ignore", UserWarning)
            a = torch.from_numpy(a)
    return a


# float32 tiles hold squared norms and products of rows: beyond these magnitudes they
# overflow or lose their digits to underflow, so such rows are computed in float64
FLOAT32_RANGE = (2.0**-40, 2.0**40)
FLOAT64_RANGE = (1e-140, 1e140)


def sources(X, Y) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Both inputs as sources, checked to match, and whether to compute in float64: for
    float64 input, and for float32 rows too large or too small for float32 products."""
    x, y = source(X, "X"), source(Y, "Y")
    validation.check_same_rows(x, y)
    if x.device != y.device:
        raise ValueError(f"X and Y must be on the same device, got {x.device} and {y.device}")
    double = validation.compute_dtype(x, y) == torch.float64
    for name, a in (("X", x), ("Y", y)):
        largest = largest_magnitude(a)
        if largest == 0:
            continue  # all zeros: refused as constant where that matters
        low, high = FLOAT64_RANGE
        if not low <= largest <= high:
            raise ValueError(
                f"{name}'s largest magnitude is {largest:.3g}: the squares of such values "
                f"{'overflow' if largest > high else 'underflow'} even in float64; rescale {name} "
                "(e.g. divide by its largest magnitude) first; CKA and RSA do not change under "
                "a common scale"
            )
        low, high = FLOAT32_RANGE
        double = double or not low <= largest <= high
    return x, y, double


def largest_magnitude(x: torch.Tensor, chunk_rows: int = validation.DEFAULT_CHUNK_ROWS) -> float:
    """max |x| over every value, one chunk of rows at a time (NaN rows are refused later)."""
    largest = 0.0
    for start in range(0, x.shape[0], chunk_rows):
        chunk = x[start : start + chunk_rows].abs().nan_to_num(nan=0.0, posinf=0.0)
        if chunk.numel():
            largest = max(largest, float(chunk.max()))
    return largest


def column_mean(x: torch.Tensor, chunk_rows: int = validation.DEFAULT_CHUNK_ROWS) -> torch.Tensor:
    """The float64 mean of each column, one chunk of rows at a time."""
    total = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], chunk_rows):
        total += x[start : start + chunk_rows].to(torch.float64).sum(0)
    return total / x.shape[0]


@dataclass
class Map:
    """How a named kernel or RDM is computed from prepared rows (see csrc/tiles/engine.h)."""

    map: str
    center_columns: bool = False
    center_rows: bool = False
    normalize_rows: bool = False


def kernel_map(kernel: str) -> Map:
    """Kernels for HSIC: linear and RBF on column-centered rows (HSIC ignores the shift;
    float rounding does not), cosine on unit rows."""
    if kernel not in registry.KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}: choose from {registry.KERNELS}")
    return {
        "linear": Map("linear", center_columns=True),
        "cosine": Map("linear", normalize_rows=True),
        "rbf": Map("rbf", center_columns=True),
    }[kernel]


def rdm_map(rdm: str) -> Map:
    """Dissimilarities (inner products for "inner") of each pair of rows."""
    if rdm not in registry.TILE_RDMS:
        raise ValueError(f"unknown rdm {rdm!r}: choose from {registry.TILE_RDMS}")
    return {
        "inner": Map("linear"),
        "cosine": Map("one_minus", normalize_rows=True),
        "correlation": Map("one_minus", center_rows=True, normalize_rows=True),
        "sqeuclidean": Map("sqeuclidean", center_columns=True),
        "euclidean": Map("euclidean", center_columns=True),
    }[rdm]


def constant_sides(spread: dict, scale: dict, double: bool) -> list[str]:
    """"X" and/or "Y": the sides whose ``spread`` (a variation of their values, keys "x" and
    "y") is not above the rounding of values of size ``scale`` in their precision."""
    return [name for k, name in (("x", "X"), ("y", "Y")) if not spread[k] > 64 * EPS[double] * scale[k]]


def side(name: str, how: Map, x: torch.Tensor, **fields) -> _C.PairSide:
    s = _C.PairSide()
    s.name, s.map = name, core_enum("PairMap", how.map)
    s.center_rows, s.normalize_rows = how.center_rows, how.normalize_rows
    if how.center_columns:
        s.column_mean = column_mean(x)
    for key, value in fields.items():
        setattr(s, key, value)
    return s


def tile_for(n: int, p: int, q: int, double: bool, memory_budget: int | None) -> int:
    """The largest tile (at most 2,048 rows) whose working memory fits the budget: the two
    GEMM tiles and the four prepared row blocks."""
    budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else memory_budget
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget <= 0:
        raise ValueError(f"memory_budget must be a positive number of bytes, got {memory_budget!r}")
    itemsize = 8 if double else 4

    def need(t: int) -> int:
        return 2 * t * t * itemsize + 4 * t * (p + q) * 8

    smallest = min(n, MIN_TILE)
    if need(smallest) > budget:
        raise ValueError(
            f"memory_budget={budget:,} bytes is too small for one {smallest} x {smallest} tile "
            f"(needs {need(smallest):,}); raise it"
        )
    tile = min(n, MAX_TILE)
    while need(tile) > budget:
        tile //= 2
    return max(tile, smallest)


def run(
    x, y, sx, sy, reducer: str, tile: int, double: bool, progress: bool = False, desc: str = "pairs"
) -> dict:
    """One pass over every tile of the upper triangle; the reducer's sums as a dict."""
    try:
        engine = _C.PairEngine(x, y, sx, sy, core_enum("Reducer", reducer), tile, double)
    except RuntimeError as err:  # pragma: no cover - the core raises ValueError for bad input
        raise ValueError(str(err)) from err
    stripes = range(engine.blocks)
    if progress:
        from tqdm.auto import tqdm

        stripes = tqdm(stripes, desc=desc, unit="stripe", leave=False)
    for stripe in stripes:
        engine.run_stripe(stripe)
    return engine.result()


def sample_values(
    x,
    y,
    mx: Map,
    my: Map,
    double: bool,
    fields_x: dict | None = None,
    fields_y: dict | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The pair values among up to 1,024 rows drawn at random (seeded): where the values lie,
    before a pass over all pairs. ``fields_*``: extra PairSide settings (the RBF's gamma)."""
    n = x.shape[0]
    rows = np.sort(np.random.default_rng(seed).choice(n, size=min(n, SAMPLE_ROWS), replace=False))
    rows = torch.as_tensor(rows, device=x.device)
    xs, ys = x[rows], None if y is None else y[rows]
    sy = side("Y", my, ys, **(fields_y or {})) if y is not None else _C.PairSide()
    out = run(xs, ys, side("X", mx, xs, **(fields_x or {})), sy, "collect", len(rows), double)
    return out["x"].numpy(), None if y is None else out["y"].numpy()


def pair_count(n: int) -> int:
    return n * (n - 1) // 2


def shuffles_to_hold(shuffles, x: torch.Tensor, memory_budget: int | None):
    """``shuffles`` when three float64 copies of every pair value fit the budget (the values
    of both sides and one shuffled copy), else None. CPU rows only: re-indexing held values
    is a CPU path."""
    budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else memory_budget
    fits = x.device.type == "cpu" and 3 * 8 * pair_count(x.shape[0]) <= budget
    return shuffles if shuffles is not None and fits else None


def permuted_pairs(values: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """The pair values i < j (row-major, as "collect" gives them) of the matrix whose rows
    and columns are taken in ``order``: a permutation test's shuffle without a pass."""
    return _C.permute_pairs(values, order)


def null_from_held_pairs(shuffles, n: int, values: torch.Tensor, score, progress: bool) -> np.ndarray:
    """score(Y's pair values re-indexed by a shuffle, the shuffle's row order) for each of
    a permutation test's shuffles: no pass over the tiles."""
    orders = shuffles.orders(n)
    if progress:
        from tqdm.auto import tqdm

        orders = tqdm(orders, total=shuffles.count, desc="permutations (held pairs)", unit="shuffle")
    null = np.empty(shuffles.count)
    for i, order in enumerate(orders):
        index = torch.as_tensor(order)
        null[i] = score(permuted_pairs(values, index), index)
    return null
