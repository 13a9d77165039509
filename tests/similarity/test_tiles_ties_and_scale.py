"""Pair values that are equal in exact arithmetic rank as ties whatever the rows' offset
and precision, and rows of extreme magnitude are computed, not refused: against scipy on
the explicit upper triangles and against float64 references of the unscaled rows."""

import ftlens
import numpy as np
import pytest
from ftlens.similarity.tiles import order
from scipy import stats
from scipy.spatial.distance import pdist


def _tied_rows(seed, n=60, p=5):
    """Integer-valued rows: most pair distances are tied."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 4, (n, p)).astype(np.float64), rng.integers(0, 4, (n, p)).astype(np.float64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("offset", [0.0, 1e3, -1e3])
@pytest.mark.parametrize("rdm", ["euclidean", "sqeuclidean"])
def test_tied_distances_rank_as_scipy_at_any_offset(dtype, offset, rdm):
    X, Y = _tied_rows(1)
    metric = "euclidean" if rdm == "euclidean" else "sqeuclidean"
    dx, dy = pdist(X, metric), pdist(Y, metric)
    a, b = (X + offset).astype(dtype), (Y + offset).astype(dtype)
    for compare, expected in (("spearman", stats.spearmanr(dx, dy).statistic),
                              ("kendall", stats.kendalltau(dx, dy).statistic)):
        got = ftlens.rsa(a, b, rdm=rdm, compare=compare, exact=True)
        assert abs(got - expected) < 1e-12, compare


def test_a_translation_that_rounds_keeps_the_ties():
    """1-D points with tied distances; +0.1 is not representable, so the translated points'
    differences are off by an ulp, which must not break the ties."""
    x = np.array([0, 1, 2, 3, 5, 8, 9, 10.0])[:, None]
    y = np.array([0, 2, 1, 3, 4, 8, 7, 11.0])[:, None]
    spearman = stats.spearmanr(pdist(x), pdist(y)).statistic
    kendall = stats.kendalltau(pdist(x), pdist(y)).statistic
    assert stats.spearmanr(pdist(x + 0.1), pdist(y + 0.1)).statistic != pytest.approx(spearman, abs=1e-3)
    for shift in (0.1, -0.7, 1e3 + 0.1):
        assert ftlens.rsa(x + shift, y + shift, rdm="euclidean", compare="spearman") == pytest.approx(
            spearman, abs=1e-12)
        assert ftlens.rsa(x + shift, y + shift, rdm="euclidean", compare="kendall") == pytest.approx(
            kendall, abs=1e-12)


def test_ties_in_unit_rdms_and_continuous_values_are_untouched():
    rng = np.random.default_rng(3)
    X = rng.integers(-2, 3, (50, 4)).astype(np.float64)
    Y = X + rng.integers(-1, 2, X.shape)
    for rdm in ("cosine", "correlation"):
        X_, Y_ = X[np.abs(X).sum(1) > 0], Y[np.abs(X).sum(1) > 0]
        X_, Y_ = X_[X_.std(1) > 0], Y_[X_.std(1) > 0]
        keep = (np.abs(Y_).sum(1) > 0) & (Y_.std(1) > 0)
        X_, Y_ = X_[keep], Y_[keep]
        dx, dy = pdist(X_, rdm), pdist(Y_, rdm)
        # scipy's own rounding breaks some exact ties: compare against the ties made exact
        dx, dy = np.round(dx, 12), np.round(dy, 12)
        got = ftlens.rsa(X_, Y_, rdm=rdm, compare="spearman", exact=True)
        assert got == pytest.approx(stats.spearmanr(dx, dy).statistic, abs=1e-12)
    values = rng.normal(size=10_000)
    np.testing.assert_array_equal(order.snap_ties(values, 1e-12), values)  # distinct values stay distinct
    tied = np.array([1.0, 1.0 + 2e-16, 3.0, 3.0 - 4e-16, 2.0])
    np.testing.assert_array_equal(order.snap_ties(tied, 1e-15), [1.0, 1.0, 3.0 - 4e-16, 3.0 - 4e-16, 2.0])


def _reference(X, Y):
    """float64 references on the unscaled rows."""
    dx, dy = pdist(X), pdist(Y)
    return {"spearman": stats.spearmanr(dx, dy).statistic, "kendall": stats.kendalltau(dx, dy).statistic,
            "rbf": ftlens.cka(X, Y, kernel="rbf"),
            "minibatch": ftlens.minibatch_cka(X, Y, batch_size=25, kernel="rbf")["value"]}


@pytest.mark.parametrize("scale", [1e30, 1e-30, 1e20, 1e-20])
def test_extreme_magnitudes_are_computed_not_refused(scale):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(50, 4))
    Y = X + rng.normal(size=(50, 4))
    want = _reference(X, Y)
    a, b = (X * scale).astype(np.float32), (Y * scale).astype(np.float32)
    assert ftlens.rsa(a, b, rdm="euclidean", compare="spearman") == pytest.approx(want["spearman"], abs=1e-6)
    assert ftlens.rsa(a, b, rdm="euclidean", compare="kendall") == pytest.approx(want["kendall"], abs=1e-6)
    assert ftlens.rsa(a, b, rdm="euclidean", compare="spearman", exact=False) == pytest.approx(
        want["spearman"], abs=1e-3)
    assert ftlens.cka(a, b, kernel="rbf") == pytest.approx(want["rbf"], abs=1e-6)
    assert ftlens.minibatch_cka(a, b, batch_size=25, kernel="rbf")["value"] == pytest.approx(
        want["minibatch"], abs=1e-6)
    test = ftlens.permutation_test(a, b, "cka", permutations=20, kernel="rbf", progress=False)
    assert test["value"] == pytest.approx(want["rbf"], abs=1e-6)
    assert ftlens.cka(a, b) == pytest.approx(ftlens.cka(X, Y), abs=1e-5)


def test_magnitudes_beyond_float64_squares_are_refused_with_the_fix():
    X = np.random.default_rng(0).normal(size=(20, 3)) * 1e200
    with pytest.raises(ValueError, match="largest magnitude is 2.*overflow even in float64; rescale X"):
        ftlens.cka(X, X[::-1].copy(), kernel="rbf")
