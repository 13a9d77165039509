"""One-call similarity measures between two representations X [n, p] and Y [n, q].

Each streams its inputs through the C++ moments core in row chunks (one pass, exact,
memory O(p^2 + q^2 + pq)), so ``np.memmap`` inputs far larger than memory work as is.
Rows are samples; X and Y may be numpy arrays or torch tensors of any float dtype.
"""

from __future__ import annotations

from . import _inputs, registry
from ._core import MomentsCore
from .moments import CCA_METHODS, warn_undefined_spread


def _accumulate(X, Y, views: list[str], chunk_rows: int) -> MomentsCore:
    X = _inputs.as_matrix(X, "X")
    if Y is not None:
        Y = _inputs.as_matrix(Y, "Y")
        _inputs.check_rows(X, Y)
    core = MomentsCore(1, X.shape[1], 0 if Y is None else Y.shape[1], "diagonal", views)
    for xc, yc in _inputs.row_chunks(X[None], None if Y is None else Y[None], chunk_rows):
        core.update(xc, yc)
    return core


def _one(X, Y, name: str, undefined: str, chunk_rows: int, **options) -> float:
    """One registered measure of X and Y, accumulating only the views it reads."""
    measure = registry.get(name)
    strict = registry.strict(undefined)  # a bad policy fails before the pass
    core = _accumulate(X, Y, list(measure.views(**options)), chunk_rows)
    return float(measure.compute(core, strict, **options)[0])


def cka(X, Y, debiased: bool = False, *, undefined: str = "raise",
        chunk_rows: int = _inputs.DEFAULT_CHUNK_ROWS) -> float:
    """Linear CKA (Kornblith et al. 2019) between X [n, p] and Y [n, q].

    debiased=True uses the unbiased HSIC estimator (Song et al. 2012); needs n >= 4.
    undefined: "raise" (default) when X or Y is constant (no variance above float
    rounding), or "nan" to return NaN instead. Every measure takes it.
    """
    return _one(X, Y, "cka_debiased" if debiased else "cka", undefined, chunk_rows)


def rsa(
    X,
    Y,
    rdm: str = "correlation",
    compare: str = "pearson",
    *,
    undefined: str = "raise",
    chunk_rows: int = _inputs.DEFAULT_CHUNK_ROWS,
) -> float:
    """Representational similarity: compare the RDMs of X and Y over all pairs i != j.

    rdm: "correlation" (1 - Pearson r between rows), "cosine" (1 - cosine similarity),
    "inner" (inner products) or "sqeuclidean" (squared Euclidean distances).
    compare: "pearson" or "cosine" comparison of the two RDMs' off-diagonal entries.
    Computed from moments, without forming the n x n RDMs.
    """
    return _one(X, Y, "rsa", undefined, chunk_rows, rdm=rdm, compare=compare)


def cca(
    X,
    Y,
    method: str = "mean",
    k: int | None = None,
    threshold: float = 0.99,
    *,
    undefined: str = "raise",
    chunk_rows: int = _inputs.DEFAULT_CHUNK_ROWS,
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


def procrustes(X, Y, *, undefined: str = "raise", chunk_rows: int = _inputs.DEFAULT_CHUNK_ROWS) -> float:
    """Orthogonal Procrustes distance between centered, unit-Frobenius-norm X and Y:
    2 - 2 ||X^T Y||_* (0 when equal up to rotation and scale, at most 2)."""
    return _one(X, Y, "procrustes", undefined, chunk_rows)


def isotropy(X, top_k: int = 10, *, chunk_rows: int = _inputs.DEFAULT_CHUNK_ROWS) -> dict:
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
    top_k = _inputs.positive_int(top_k, "top_k")
    out = {key: float(v[0]) for key, v in core.isotropy("x", top_k).items()}
    warn_undefined_spread(out)
    out["n_constant_dims"] = int(out["n_constant_dims"])
    out["top_k"] = min(int(top_k), core.p)
    return out
