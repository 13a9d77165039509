"""Dense float64 brute-force references (n x n matrices), for exactness tests on small data."""

from __future__ import annotations

import numpy as np


def _centered(x):
    x = np.asarray(x, dtype=np.float64)
    return x - x.mean(0)


def hsic(k, l, debiased=False):
    """HSIC of two kernel matrices [n, n]: tr(KHLH), or Song et al.'s unbiased estimator."""
    n = k.shape[0]
    if not debiased:
        h = np.eye(n) - 1.0 / n
        return np.trace(k @ h @ l @ h)
    # Song et al. (2012) unbiased estimator on zero-diagonal kernels.
    k, l = k.copy(), l.copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    one = np.ones(n)
    return (
        np.trace(k @ l)
        + (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * (one @ k @ l @ one)
    ) / (n * (n - 3))


def cka(x, y, debiased=False):
    """Gram-matrix linear CKA. Rows are centered first (two-pass): CKA is translation
    invariant, and a Gram matrix of rows offset by 1e3 would lose the reference's digits."""
    x, y = _centered(x), _centered(y)
    return gram_cka(x @ x.T, y @ y.T, debiased)


def gram_cka(k, l, debiased=False):
    """CKA from two kernel matrices [n, n] (any kernel)."""
    return hsic(k, l, debiased) / np.sqrt(hsic(k, k, debiased) * hsic(l, l, debiased))


def rdm(x, kind):
    x = np.asarray(x, dtype=np.float64)
    if kind == "inner":
        return x @ x.T
    if kind == "sqeuclidean":
        # from the differences themselves, free of the Gram form's cancellation
        return ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    if kind == "correlation":
        x = x - x.mean(1, keepdims=True)
    if kind in ("cosine", "correlation"):
        u = x / np.linalg.norm(x, axis=1, keepdims=True)
        return 1.0 - u @ u.T
    raise ValueError(kind)


def rsa(x, y, kind="correlation", compare="pearson"):
    n = len(x)
    off = ~np.eye(n, dtype=bool)
    a, b = rdm(x, kind)[off], rdm(y, kind)[off]
    if compare == "pearson":
        a, b = a - a.mean(), b - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def _orthobasis(x, tol=1e-10):
    u, s, vt = np.linalg.svd(_centered(x), full_matrices=False)
    keep = s > tol * s[0]
    return u[:, keep], s[keep], vt[keep]


def cca(x, y, method="mean", k=None, threshold=0.99):
    """Canonical correlations in sample space (SVD bases), the SVCCA/PWCCA definitions."""
    x, y = _centered(x), _centered(y)
    if method == "svcca":
        reduced = []
        for a in (x, y):
            u, s, vt = np.linalg.svd(a, full_matrices=False)
            if k:
                keep = k
            else:
                frac = np.cumsum(s**2) / np.sum(s**2)
                keep = int(np.sum(frac < threshold)) + 1
            reduced.append(a @ vt[:keep].T)
        x, y = reduced
    ux, _, _ = _orthobasis(x)
    uy, _, _ = _orthobasis(y)
    a, rho, _ = np.linalg.svd(ux.T @ uy, full_matrices=False)
    kmin = min(ux.shape[1], uy.shape[1])
    rho = np.clip(rho[:kmin], 0, 1)
    if method != "pwcca":
        return float(rho.mean())
    h = ux @ a[:, :kmin]  # canonical variates of X, orthonormal columns
    alpha = np.abs(h.T @ x).sum(1)
    return float((alpha * rho).sum() / alpha.sum())


def procrustes(x, y):
    x, y = _centered(x), _centered(y)
    x, y = x / np.linalg.norm(x), y / np.linalg.norm(y)
    return float(2 - 2 * np.linalg.svd(x.T @ y, compute_uv=False).sum())


def isotropy(x, top_k=10):
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos = u @ u.T
    cov = np.cov(x, rowvar=False)
    lam = np.clip(np.linalg.eigvalsh(cov), 0, None)
    p = lam / lam.sum()
    p = p[p > 0]
    var = np.diag(cov)
    corr = np.corrcoef(x, rowvar=False)
    sd = np.sqrt(var)
    return {
        "mean_cosine": float((cos.sum() - n) / (n * (n - 1))),
        "effective_rank": float(np.exp(-(p * np.log(p)).sum())),
        "mean_sq_dim_correlation": float(((corr**2).sum() - d) / (d * (d - 1))),
        "top_k_variance_share": float(np.sort(var)[::-1][:top_k].sum() / var.sum()),
        "dim_mean_abs_max": float(np.abs(x.mean(0)).max()),
        "dim_mean_std": float(x.mean(0).std()),
        "dim_std_max_over_median": float(sd.max() / np.median(sd)),
    }
