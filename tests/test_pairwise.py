"""The pairwise tile engine against dense float64 references: Kornblith et al.'s Gram-form
RBF CKA (same median convention), Song et al.'s unbiased HSIC, scipy's Spearman and Kendall
on the explicit upper triangles, rsatoolbox; on rows with large offsets, across tile
boundaries, from memmaps; and its bad input."""

import ftlens
import numpy as np
import pytest
import torch
from ftlens.moments import LayerMoments
from scipy import stats
from scipy.spatial.distance import pdist


def _rows(n, p=24, q=12, seed=0, offset=30.0):
    """Related X and Y whose columns have means in the tens, as BERT's do."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) + np.linspace(-offset, offset, p)
    Y = np.tanh(X[:, :q] @ rng.normal(size=(q, q)) / 8) + 0.5 * rng.normal(size=(n, q)) + offset
    return X, Y


def gram_rbf(x, threshold=1.0):
    """Kornblith et al.'s RBF Gram matrix: the median over all n^2 squared distances."""
    dot = x @ x.T
    sq_norms = np.diag(dot)
    sq = -2 * dot + sq_norms[:, None] + sq_norms[None, :]
    return np.exp(-sq / (2 * threshold**2 * np.median(sq)))


def dense_cka(K, L):
    n = K.shape[0]
    H = np.eye(n) - 1.0 / n
    Kc, Lc = H @ K @ H, H @ L @ H
    return (Kc * Lc).sum() / np.sqrt((Kc * Kc).sum() * (Lc * Lc).sum())


def hsic_unbiased(K, L):
    """Song et al. (2012), eq. 5, densely."""
    n = K.shape[0]
    K, L = K.copy(), L.copy()
    np.fill_diagonal(K, 0)
    np.fill_diagonal(L, 0)
    ones = np.ones(n)
    return (
        np.trace(K @ L)
        + (ones @ K @ ones) * (ones @ L @ ones) / ((n - 1) * (n - 2))
        - 2 / (n - 2) * ones @ K @ L @ ones
    ) / (n * (n - 3))


@pytest.fixture(scope="module")
def rows_3000():
    return _rows(3000)


@pytest.mark.parametrize("budget", [None, 2**21])  # every pair in memory; or histogram + select passes
def test_rbf_cka_equals_kornblith_dense_at_3000(rows_3000, budget):
    X, Y = rows_3000
    # centering columns first changes nothing in exact arithmetic and keeps the reference's digits
    expected = dense_cka(gram_rbf(X - X.mean(0)), gram_rbf(Y - Y.mean(0)))
    got = ftlens.cka(X, Y, kernel="rbf", memory_budget=budget, details=True)
    assert got["method"] == "tiles" and got["passes"] == (2 if budget is None else 3)
    assert abs(got["value"] - expected) < 1e-6
    if budget is not None:
        assert got["tile"] < 3000  # several tiles per side


@pytest.mark.parametrize("threshold", [0.5, 2.0])
def test_rbf_threshold_and_explicit_sigma(threshold):
    X, Y = _rows(400, seed=1)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    expected = dense_cka(gram_rbf(Xc, threshold), gram_rbf(Yc, threshold))
    assert abs(ftlens.cka(X, Y, kernel="rbf", threshold=threshold) - expected) < 1e-9
    sigma = 3.0
    K = np.exp(-(np.square(Xc[:, None, :] - Xc[None, :, :]).sum(-1)) / (2 * sigma**2))
    L = np.exp(-(np.square(Yc[:, None, :] - Yc[None, :, :]).sum(-1)) / (2 * sigma**2))
    assert abs(ftlens.cka(X, Y, kernel="rbf", sigma=sigma) - dense_cka(K, L)) < 1e-9


def test_unbiased_hsic_equals_song_et_al():
    X, Y = _rows(500, seed=2)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    K, L = gram_rbf(Xc), gram_rbf(Yc)
    expected = hsic_unbiased(K, L) / np.sqrt(hsic_unbiased(K, K) * hsic_unbiased(L, L))
    assert abs(ftlens.cka(X, Y, debiased=True, kernel="rbf") - expected) < 1e-9
    # linear kernel: the tiles and the moments agree
    assert abs(ftlens.cka(X, Y, debiased=True, method="tiles") - ftlens.cka(X, Y, debiased=True)) < 1e-9


def test_linear_and_cosine_kernels_equal_dense():
    X, Y = _rows(600, seed=3)
    tiles = ftlens.cka(X, Y, method="tiles", memory_budget=2**20, details=True)
    assert tiles["method"] == "tiles" and abs(tiles["value"] - ftlens.cka(X, Y)) < 1e-10
    assert abs(tiles["value"] - dense_cka(X @ X.T, Y @ Y.T)) < 1e-9
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Yn = Y / np.linalg.norm(Y, axis=1, keepdims=True)
    assert abs(ftlens.cka(X, Y, kernel="cosine") - dense_cka(Xn @ Xn.T, Yn @ Yn.T)) < 1e-9


def test_float32_inputs_stay_close_to_the_float64_reference():
    X, Y = _rows(800, seed=4)
    expected = dense_cka(gram_rbf(X - X.mean(0)), gram_rbf(Y - Y.mean(0)))
    got = ftlens.cka(X.astype(np.float32), Y.astype(np.float32), kernel="rbf")
    assert abs(got - expected) < 1e-5


def test_spearman_sketch_within_its_bound_of_scipy_and_rsatoolbox_at_4000():
    rsatoolbox = pytest.importorskip("rsatoolbox")
    X, Y = _rows(4000, p=16, q=8, seed=5)
    exact = stats.spearmanr(pdist(X), pdist(Y)).statistic
    got = ftlens.rsa(X, Y, rdm="euclidean", compare="spearman", exact=False, details=True)
    assert not got["exact"] and got["passes"] == 2
    assert abs(got["value"] - exact) < 1e-3
    assert abs(got["value"] - exact) <= got["error_bound"] < 1e-3
    rdms = [rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(a), method="euclidean") for a in (X, Y)]
    reference = rsatoolbox.rdm.compare(rdms[0], rdms[1], method="spearman")[0, 0]
    assert abs(got["value"] - reference) < 1e-3
    assert abs(ftlens.rsa(X, Y, rdm="euclidean", compare="spearman", exact=True) - exact) < 1e-9


@pytest.mark.parametrize(
    "rdm, metric",
    [
        ("euclidean", "euclidean"),
        ("sqeuclidean", "sqeuclidean"),
        ("cosine", "cosine"),
        ("correlation", "correlation"),
    ],
)
def test_exact_ranks_and_pearson_equal_scipy(rdm, metric):
    X, Y = _rows(300, seed=6)
    dx, dy = pdist(X, metric), pdist(Y, metric)
    for compare, expected in (
        ("spearman", stats.spearmanr(dx, dy).statistic),
        ("kendall", stats.kendalltau(dx, dy).statistic),
        ("pearson", np.corrcoef(dx, dy)[0, 1]),
        ("cosine", dx @ dy / np.linalg.norm(dx) / np.linalg.norm(dy)),
    ):
        got = ftlens.rsa(X, Y, rdm=rdm, compare=compare, memory_budget=2**20, details=True)
        assert abs(got["value"] - expected) < 1e-9, compare
        assert got["method"] == (
            "moments" if rdm != "euclidean" and compare in ("pearson", "cosine") else "tiles"
        )
    if rdm != "euclidean":  # the moments path and the tiles agree
        assert abs(ftlens.rsa(X, Y, rdm=rdm, method="tiles") - ftlens.rsa(X, Y, rdm=rdm)) < 1e-9


def test_spearman_sketch_handles_ties_and_the_tile_edges():
    rng = np.random.default_rng(7)
    X = np.round(rng.normal(size=(257, 3)))  # many tied distances
    Y = X + 0.3 * rng.normal(size=X.shape)
    exact = stats.spearmanr(pdist(X), pdist(Y)).statistic
    got = ftlens.rsa(
        X, Y, rdm="euclidean", compare="spearman", exact=False, memory_budget=2**19, details=True
    )
    assert abs(got["value"] - exact) <= got["error_bound"]
    assert got["tile"] < 257


def test_memmaps_and_tensors_give_the_same_values(tmp_path):
    X, Y = _rows(500, seed=8)
    path = tmp_path / "x.npy"
    np.save(path, X.astype(np.float32))
    mapped = np.load(path, mmap_mode="r")
    direct = ftlens.cka(X.astype(np.float32), Y.astype(np.float32), kernel="rbf")
    assert ftlens.cka(mapped, torch.from_numpy(Y.astype(np.float32)), kernel="rbf") == pytest.approx(
        direct, abs=1e-12
    )


def test_bad_input_names_the_problem():
    X, Y = _rows(50, seed=9)
    cases = [
        (lambda: ftlens.cka(X, Y, kernel="rbf", sigma=0), "sigma must be > 0"),
        (lambda: ftlens.cka(X, Y, kernel="rbf", sigma=-1.0), "sigma must be > 0"),
        (lambda: ftlens.cka(X, Y, kernel="rbf", threshold=0), "threshold must be > 0"),
        (lambda: ftlens.cka(X, Y, kernel="gauss"), "unknown kernel 'gauss': choose from"),
        (lambda: ftlens.cka(X, Y, sigma=1.0), "the linear kernel takes none"),
        (lambda: ftlens.cka(X, Y, kernel="rbf", method="moments"), "pass method='auto' or 'tiles'"),
        (lambda: ftlens.cka(X, Y, method="fast"), "method must be one of"),
        (lambda: ftlens.rsa(X, Y, rdm="manhattan"), "unknown rdm 'manhattan': choose from"),
        (lambda: ftlens.rsa(X, Y, compare="pearsonr"), "unknown compare 'pearsonr': choose from"),
        (lambda: ftlens.rsa(X, Y, compare="spearman", memory_budget=1000), "too small for one"),
        (lambda: ftlens.rsa(X, Y, compare="kendall", exact=False), "Kendall's tau has no sketch"),
        (lambda: ftlens.cka(X[:3], Y[:3], kernel="rbf", debiased=True), "at least 4 rows"),
        (lambda: ftlens.rsa(X, Y[:40], compare="spearman"), "same number of rows"),
        (
            lambda: ftlens.rsa(np.ones((20, 3)), Y[:20], rdm="euclidean", compare="spearman"),
            "RDM of X is constant",
        ),
        (lambda: ftlens.cka(np.ones((20, 3)), Y[:20], kernel="rbf", sigma=1.0), "kernel of X is constant"),
        (lambda: ftlens.cka(np.ones((20, 3)), Y[:20], kernel="rbf"), "median squared distance"),
        (lambda: ftlens.cka(np.where(np.arange(50)[:, None] == 17, np.nan, X), Y, kernel="rbf"), "X row 17"),
        (lambda: LayerMoments(1, 24, 12).measure("rsa", compare="spearman"), "streaming moments cannot give"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message.replace("(", r"\(")):
            call()
    nan = ftlens.rsa(np.ones((20, 3)), Y[:20], rdm="euclidean", compare="spearman", undefined="nan")
    assert np.isnan(nan)
