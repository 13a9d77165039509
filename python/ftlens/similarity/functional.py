"""One-call similarity measures between two representations X [n, p] and Y [n, q].

Whatever the moments give (linear CKA, RSA of inner/cosine/correlation/squared-Euclidean
RDMs compared by Pearson or cosine, CCA, Procrustes, isotropy) streams through the C++
moments core in row chunks: one pass, exact, memory O(p^2 + q^2 + pq). The rest (RBF and
cosine kernels, Euclidean RDMs, Spearman and Kendall comparisons) walks the n x n pairs in
tiles (``similarity.tiles``): memory O(n + T^2). Either way ``np.memmap`` inputs far larger
than memory work as is. Rows are samples; X and Y may be numpy arrays or torch tensors of
any float dtype.
"""

from __future__ import annotations

import functools
import time

from .._core import MomentsCore, core_enum, moments_core
from .._util import validation
from . import registry
from .moments import CCA_METHODS, warn_undefined_spread
from .tiles import kernel_cka, pairwise_rsa


def _accumulate(X, Y, views: list[str], chunk_rows: int) -> MomentsCore:
    X = validation.as_matrix(X, "X")
    if Y is not None:
        Y = validation.as_matrix(Y, "Y")
        validation.check_same_rows(X, Y)
    core = moments_core(1, X.shape[1], 0 if Y is None else Y.shape[1], "diagonal", views)
    for xc, yc in validation.row_chunks(X[None], None if Y is None else Y[None], chunk_rows):
        core.update(xc, yc)
    return core


def _one(X, Y, name: str, undefined: str, chunk_rows: int, **options) -> float:
    """One registered measure of X and Y, accumulating only the views it reads."""
    measure = registry.get(name)
    strict = registry.strict(undefined)  # a bad policy fails before the pass
    core = _accumulate(X, Y, list(measure.views(**options)), chunk_rows)
    return float(measure.compute(core, strict, **options)[0])


METHODS = ("auto", "moments", "tiles")
# The measures the pair tiles compute, and the options only the tiles take (beyond
# memory_budget, progress and a permutation test's shuffles).
TILES = {
    "cka": (functools.partial(kernel_cka, debiased=False), ()),
    "cka_debiased": (functools.partial(kernel_cka, debiased=True), ()),
    "rsa": (pairwise_rsa, ("exact", "bins")),
}
TILE_OPTIONS = ("memory_budget", "progress", "shuffles")


def measure(
    X,
    Y,
    name: str,
    *,
    method: str = "auto",
    undefined: str = "raise",
    chunk_rows: int = validation.DEFAULT_CHUNK_ROWS,
    **options,
) -> dict:
    """Any registered measure by name with all its options, as a dict with ``value`` and how
    it was computed (``method``, ``passes``, ``seconds``, ...). This is the one place that
    routes a measure: to the moments when they give it (``method="auto"``), else over pair
    tiles. ``memory_budget``, ``progress`` and (for "rsa") ``exact`` and ``bins`` reach only
    the tiles; ``shuffles`` (a permutation test's row orders) too, and the tiles add ``null``
    when they can hold every pair value."""
    entry = registry.get(name)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    tile_only = TILE_OPTIONS + (TILES[name][1] if name in TILES else ())
    tile_options = {k: options.pop(k) for k in tile_only if k in options}
    needs_tiles = entry.tiles(**options)
    if method == "moments" and needs_tiles:
        shown = ", ".join(f"{k}={v!r}" for k, v in options.items())
        raise ValueError(
            f"{name} with {shown} needs the pairwise tiles, not moments; pass method='auto' or 'tiles'"
        )
    if method == "tiles" or needs_tiles:
        if name not in TILES:
            raise ValueError(f"{name} is computed from moments only; choose method='auto' or 'moments'")
        compute, _ = TILES[name]
        return compute(X, Y, undefined=undefined, **tile_options, **options)
    start = time.perf_counter()
    value = _one(X, Y, name, undefined, chunk_rows, **options)
    return {"value": value, "method": "moments", "passes": 1, "seconds": time.perf_counter() - start}


def cka(
    X,
    Y,
    debiased: bool = False,
    kernel: str = "linear",
    sigma=None,
    threshold: float = 1.0,
    *,
    method: str = "auto",
    details: bool = False,
    memory_budget: int | None = None,
    progress: bool = False,
    undefined: str = "raise",
    chunk_rows: int = validation.DEFAULT_CHUNK_ROWS,
):
    """CKA (Kornblith et al. 2019) between X [n, p] and Y [n, q].

    kernel: "linear" (from moments, one pass), "cosine" or "rbf" (over pair tiles).
    sigma: the RBF bandwidth, one number or (sigma_x, sigma_y); None takes threshold x
    sqrt(median squared distance) of each side, with the median over all n^2 entries as in
    Kornblith et al.'s code (exact: one more pass, two when the pairs exceed memory_budget).
    debiased=True uses the unbiased HSIC estimator (Song et al. 2012); needs n >= 4.
    method: "auto" (moments when they give the answer, else tiles), "moments" or "tiles".
    details=True returns a dict: ``value`` and how it was computed (``method``, ``tile``,
    ``passes``, ``sigma``, ``seconds``). memory_budget: bytes for the tiles' working memory
    (default 256 MiB). undefined: "raise" (default) when X or Y is constant (no variance
    above float rounding), or "nan" to return NaN instead. Every measure takes it.
    """
    name = "cka_debiased" if debiased else "cka"
    out = measure(X, Y, name, method=method, undefined=undefined, chunk_rows=chunk_rows,
                  memory_budget=memory_budget, progress=progress, kernel=kernel, sigma=sigma,
                  threshold=threshold)
    return out if details else out["value"]


def rsa(
    X,
    Y,
    rdm: str = "correlation",
    compare: str = "pearson",
    *,
    method: str = "auto",
    details: bool = False,
    memory_budget: int | None = None,
    exact: bool | None = None,
    bins: int = 2**18,
    progress: bool = False,
    undefined: str = "raise",
    chunk_rows: int = validation.DEFAULT_CHUNK_ROWS,
):
    """Representational similarity: compare the RDMs of X and Y over all pairs i != j.

    rdm: "correlation" (1 - Pearson r between rows), "cosine" (1 - cosine similarity),
    "inner" (inner products), "sqeuclidean" (squared Euclidean distances) or "euclidean".
    compare: "pearson" or "cosine" comparison of the two RDMs' off-diagonal entries (from
    moments, without forming the n x n RDMs, except the Euclidean RDM, which needs tiles),
    "spearman" or "kendall" (tau-b), over pair tiles.
    exact (Spearman): rank every pair value in memory (None: when both RDMs' n(n-1)/2
    values fit memory_budget), else a two-pass rank sketch over ``bins`` bins, whose bound
    on |rho - exact rho| ``details=True`` returns as ``error_bound``. Kendall needs exact.
    method, details, memory_budget, undefined: as for ``cka``.
    """
    out = measure(X, Y, "rsa", method=method, undefined=undefined, chunk_rows=chunk_rows,
                  memory_budget=memory_budget, exact=exact, bins=bins, progress=progress, rdm=rdm,
                  compare=compare)
    return out if details else out["value"]


def cca(
    X,
    Y,
    method: str = "mean",
    k: int | None = None,
    threshold: float = 0.99,
    *,
    undefined: str = "raise",
    chunk_rows: int = validation.DEFAULT_CHUNK_ROWS,
) -> float:
    """CCA similarity between X and Y.

    method: "mean" (mean canonical correlation), "svcca" (Raghu et al. 2017: CCA on the
    top ``k`` principal directions, or on those holding ``threshold`` of the variance),
    "pwcca" (Morcos et al. 2018: correlations weighted by their share of X).
    Directions whose variance lies below the rounding error of the accumulated covariance
    (8 sqrt(chunk rows) eps of its trace) are dropped; that cut does not grow with n.
    """
    if method not in CCA_METHODS:
        raise ValueError(f"method must be 'mean', 'svcca' or 'pwcca', got {method!r}")
    return _one(X, Y, CCA_METHODS[method], undefined, chunk_rows, k=k, threshold=threshold)


def procrustes(X, Y, *, undefined: str = "raise", chunk_rows: int = validation.DEFAULT_CHUNK_ROWS) -> float:
    """Orthogonal Procrustes distance between centered, unit-Frobenius-norm X and Y:
    2 - 2 ||X^T Y||_* (0 when equal up to rotation and scale, at most 2)."""
    return _one(X, Y, "procrustes", undefined, chunk_rows)


def isotropy(X, top_k: int = 10, *, chunk_rows: int = validation.DEFAULT_CHUNK_ROWS) -> dict:
    """Isotropy diagnostics of one representation X [n, d].

    Returns a dict: ``mean_cosine`` (mean cosine similarity over row pairs i != j),
    ``effective_rank`` (exp of the entropy of the covariance spectrum),
    ``mean_sq_dim_correlation`` (mean squared correlation between distinct dimensions,
    as in IsoBN), ``top_k_variance_share`` (share of the total variance in the ``top_k``
    highest-variance dimensions), ``dim_mean_abs_max``, ``dim_mean_std`` (spread of the
    per-dimension means), ``dim_std_max_over_median`` (spread of per-dimension stds; NaN,
    with a warning, when half or more of the dimensions are constant), ``n_constant_dims``
    (dimensions whose variance lies below float32 rounding of the row norms, whatever the
    input dtype, so float32 and float64 copies agree) and ``top_k``.
    """
    core = _accumulate(X, None, ["raw"], chunk_rows)
    top_k = validation.positive_int(top_k, "top_k")
    out = {key: float(v[0]) for key, v in core.isotropy(core_enum("Stream", "x"), top_k).items()}
    warn_undefined_spread(out)
    out["n_constant_dims"] = int(out["n_constant_dims"])
    out["top_k"] = min(int(top_k), core.p)
    return out
