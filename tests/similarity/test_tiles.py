"""The pairwise tile engine against dense float64 references: Kornblith et al.'s Gram-form
RBF CKA (same median convention), Song et al.'s unbiased HSIC, scipy's Spearman and Kendall
on the explicit upper triangles, rsatoolbox; on rows with large offsets, across tile
boundaries, from memmaps; and its bad input."""

import ftlens
import numpy as np
import pytest
import rsatoolbox
import torch
from ftlens.similarity.moments import LayerMoments
from ftlens.similarity.tiles import engine
from helpers import reference as ref
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


@pytest.fixture(scope="module")
def rows_3000():
    return _rows(3000)


@pytest.mark.parametrize("budget", [None, 2**21])  # every pair in memory; or histogram + select passes
def test_rbf_cka_equals_kornblith_dense_at_3000(rows_3000, budget):
    X, Y = rows_3000
    # centering columns first changes nothing in exact arithmetic and keeps the reference's digits
    expected = ref.gram_cka(gram_rbf(X - X.mean(0)), gram_rbf(Y - Y.mean(0)))
    got = ftlens.cka(X, Y, kernel="rbf", memory_budget=budget, details=True)
    assert got["method"] == "tiles" and got["passes"] == (2 if budget is None else 3)
    assert got["sigma_from"] == "exact median"
    assert abs(got["value"] - expected) < 1e-6
    if budget is not None:
        assert got["tile"] < 3000  # several tiles per side


@pytest.mark.parametrize("threshold", [0.5, 2.0])
def test_rbf_threshold_and_explicit_sigma(threshold):
    X, Y = _rows(400, seed=1)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    expected = ref.gram_cka(gram_rbf(Xc, threshold), gram_rbf(Yc, threshold))
    assert abs(ftlens.cka(X, Y, kernel="rbf", threshold=threshold) - expected) < 1e-9
    sigma = 3.0
    K = np.exp(-(np.square(Xc[:, None, :] - Xc[None, :, :]).sum(-1)) / (2 * sigma**2))
    L = np.exp(-(np.square(Yc[:, None, :] - Yc[None, :, :]).sum(-1)) / (2 * sigma**2))
    assert abs(ftlens.cka(X, Y, kernel="rbf", sigma=sigma) - ref.gram_cka(K, L)) < 1e-9


def test_unbiased_hsic_equals_song_et_al():
    X, Y = _rows(500, seed=2)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    K, L = gram_rbf(Xc), gram_rbf(Yc)
    expected = ref.hsic(K, L, True) / np.sqrt(ref.hsic(K, K, True) * ref.hsic(L, L, True))
    assert abs(ftlens.cka(X, Y, debiased=True, kernel="rbf") - expected) < 1e-9
    # linear kernel: the tiles and the moments agree
    assert abs(ftlens.cka(X, Y, debiased=True, method="tiles") - ftlens.cka(X, Y, debiased=True)) < 1e-9


def test_linear_and_cosine_kernels_equal_dense():
    X, Y = _rows(600, seed=3)
    tiles = ftlens.cka(X, Y, method="tiles", memory_budget=2**20, details=True)
    assert tiles["method"] == "tiles" and abs(tiles["value"] - ftlens.cka(X, Y)) < 1e-10
    assert abs(tiles["value"] - ref.gram_cka(X @ X.T, Y @ Y.T)) < 1e-9
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Yn = Y / np.linalg.norm(Y, axis=1, keepdims=True)
    assert abs(ftlens.cka(X, Y, kernel="cosine") - ref.gram_cka(Xn @ Xn.T, Yn @ Yn.T)) < 1e-9


def test_float32_inputs_stay_close_to_the_float64_reference():
    X, Y = _rows(800, seed=4)
    expected = ref.gram_cka(gram_rbf(X - X.mean(0)), gram_rbf(Y - Y.mean(0)))
    got = ftlens.cka(X.astype(np.float32), Y.astype(np.float32), kernel="rbf")
    assert abs(got - expected) < 1e-5


def test_spearman_sketch_within_its_bound_of_scipy_and_rsatoolbox_at_4000():
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
        (lambda: ftlens.cka(X, Y, kernel="rbf", threshold=0), "must be a finite number > 0, got 0"),
        (lambda: ftlens.cka(X, Y, kernel="rbf", threshold=np.inf), "must be a finite number > 0, got inf"),
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


def _dense_linear_cka(X, Y):
    return ref.gram_cka(X @ X.T, Y @ Y.T)


def test_permutation_test_replays_numpy_shuffles():
    X, Y = _rows(120, p=6, q=4, seed=10)
    Y = Y + 40 * np.random.default_rng(1).normal(size=Y.shape)  # weakly related: the p-value is not minimal
    got = ftlens.permutation_test(X, Y, "cka", permutations=30, seed=3, progress=False)
    rng = np.random.default_rng(3)
    null = np.array([_dense_linear_cka(X, Y[rng.permutation(120)]) for _ in range(30)])
    np.testing.assert_allclose(got["null"], null, rtol=0, atol=1e-10)
    assert got["value"] == pytest.approx(_dense_linear_cka(X, Y), abs=1e-10)
    assert got["p_value"] == (1 + np.sum(null >= got["value"])) / 31
    # tiles: the RBF bandwidths of the real pairing serve every shuffle
    rbf = ftlens.permutation_test(X, Y, "cka", permutations=5, seed=3, kernel="rbf", progress=False)
    rng = np.random.default_rng(3)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    for value in rbf["null"]:
        Yp = Yc[rng.permutation(120)]
        assert value == pytest.approx(ref.gram_cka(gram_rbf(Xc), gram_rbf(Yp)), abs=1e-9)
    spearman = ftlens.permutation_test(
        X, X[:, :3] + 0.01, "rsa", permutations=9, rdm="euclidean", compare="spearman", progress=False
    )
    assert spearman["p_value"] == pytest.approx(0.1) and spearman["method"] == "tiles"
    distance = ftlens.permutation_test(X, Y, "procrustes", permutations=5, progress=False)
    assert distance["alternative"] == "smaller"
    with pytest.raises(ValueError, match="permutations must be a positive integer"):
        ftlens.permutation_test(X, Y, permutations=0)


@pytest.mark.parametrize(
    "measure, options",
    [
        ("cka", dict(kernel="rbf")),
        ("cka_debiased", dict(kernel="cosine")),
        ("rsa", dict(rdm="euclidean", compare="pearson")),
        ("rsa", dict(rdm="correlation", compare="spearman")),
        ("rsa", dict(rdm="sqeuclidean", compare="kendall")),
    ],
)
def test_shuffles_over_held_pairs_equal_a_pass_per_shuffle(measure, options):
    X, Y = _rows(200, p=6, q=4, seed=13)
    Y = Y + 3 * np.random.default_rng(2).normal(size=Y.shape)
    held = ftlens.permutation_test(X, Y, measure, permutations=12, seed=5, progress=False, **options)
    # room for the exact ranks' two copies of the pair values, not for the third the shuffles need
    passes = ftlens.permutation_test(
        X, Y, measure, permutations=12, seed=5, progress=False, memory_budget=400_000, **options
    )
    assert held["reuse"] == "held pairs" and passes["reuse"] in ("none", "bandwidths")
    assert held["value"] == pytest.approx(passes["value"], abs=1e-12)  # other tiles, other rounding
    np.testing.assert_allclose(held["null"], passes["null"], rtol=0, atol=1e-11)
    assert held["p_value"] == passes["p_value"]


def test_permuted_pairs_are_the_pairs_of_the_permuted_matrix():
    rng = np.random.default_rng(4)
    full = rng.normal(size=(9, 9))
    full = full + full.T
    upper = np.triu_indices(9, 1)
    order = rng.permutation(9)
    got = engine.permuted_pairs(torch.from_numpy(full[upper]), torch.from_numpy(order))
    np.testing.assert_array_equal(got.numpy(), full[np.ix_(order, order)][upper])
    values = torch.from_numpy(full[upper])
    with pytest.raises(ValueError, match="not a permutation"):
        engine.permuted_pairs(values, torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 7]))
    with pytest.raises(ValueError, match="are not the 28 pairs of 8 rows"):
        engine.permuted_pairs(values, torch.arange(8))


def test_minibatch_cka_is_the_mean_of_batch_hsics():
    X, Y = _rows(403, seed=11)
    got = ftlens.minibatch_cka(X, Y, batch_size=100, shuffle=False)
    assert got["batches"] == 4 and got["rows_dropped"] == 3
    terms = np.zeros(3)
    for b in range(4):
        x, y = X[b * 100 : (b + 1) * 100], Y[b * 100 : (b + 1) * 100]
        x, y = x - x.mean(0), y - y.mean(0)  # the unbiased HSIC ignores it; float rounding does not
        K, L = x @ x.T, y @ y.T
        terms += [ref.hsic(K, L, True), ref.hsic(K, K, True), ref.hsic(L, L, True)]
    assert got["value"] == pytest.approx(terms[0] / np.sqrt(terms[1] * terms[2]), abs=1e-9)
    whole = ftlens.minibatch_cka(X[:400], Y[:400], batch_size=400, kernel="rbf")
    assert whole["value"] == pytest.approx(
        ftlens.cka(X[:400], Y[:400], debiased=True, kernel="rbf"), abs=1e-9
    )
    with pytest.raises(ValueError, match="batch_size must be >= 4"):
        ftlens.minibatch_cka(X, Y, batch_size=3)
    with pytest.raises(ValueError, match="exceeds the 403 rows"):
        ftlens.minibatch_cka(X, Y, batch_size=1000)


def test_compare_stores_equals_direct_calls_layer_by_layer(tmp_path):
    rng = np.random.default_rng(12)
    layers_a = rng.normal(size=(3, 300, 10)) + 20
    layers_b = layers_a + rng.normal(size=(3, 300, 10)) * np.array([0.1, 1.0, 5.0])[:, None, None]
    a = ftlens.store.from_arrays(layers_a.astype(np.float32), path=tmp_path / "a")
    b = ftlens.store.from_arrays(layers_b.astype(np.float32), path=tmp_path / "b")
    measures = {
        "cka": {},
        "rbf": {"measure": "cka", "kernel": "rbf"},
        "spearman": {"measure": "rsa", "rdm": "euclidean", "compare": "spearman"},
    }
    result = ftlens.compare_stores(tmp_path / "a", b, measures, progress=False)
    for layer in range(3):
        x, y = layers_a[layer].astype(np.float32), layers_b[layer].astype(np.float32)
        assert result.values["cka"][layer] == pytest.approx(ftlens.cka(x, y), abs=1e-12)
        assert result.values["rbf"][layer] == pytest.approx(ftlens.cka(x, y, kernel="rbf"), abs=1e-12)
        expected = ftlens.rsa(x, y, rdm="euclidean", compare="spearman")
        assert result.values["spearman"][layer] == pytest.approx(expected, abs=1e-12)
    assert result.values["rbf"][0] > result.values["rbf"][2]  # more noise, less similar
    assert [d["method"] for d in result.details["rbf"]] == ["tiles"] * 3
    result.save(tmp_path / "c.json")
    again = ftlens.StoreComparison.load(tmp_path / "c.json")
    np.testing.assert_array_equal(again.values["spearman"], result.values["spearman"])
    other = ftlens.store.from_arrays(layers_a[:, :200].astype(np.float32))
    with pytest.raises(ValueError, match="hold 300 and 200 rows"):
        ftlens.compare_stores(a, other, progress=False)
    with pytest.raises(ValueError, match="unknown measure 'ckaa'"):
        ftlens.compare_stores(a, b, ["ckaa"], progress=False)
