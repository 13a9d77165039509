"""Every measure against a dense float64 brute force, on data with offsets of 1e3,
fed at once and in chunks of 1, 7 and 1000 rows; float32 input; merged shards."""

import ftlens
import numpy as np
import pytest
from helpers import reference as ref
from helpers.data import offset_data
from helpers.measures import RDMS, assert_close, measures, references, streamed

CHUNKS = [None, 1, 7, 1000]
@pytest.fixture(scope="module")
def expected(xy):
    return references(*xy)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_float64_matches_dense_reference(xy, expected, chunk):
    assert_close(measures(streamed(*xy, chunk)), expected, rtol=1e-6)


@pytest.mark.parametrize("chunk", [None, 7, 1000])
def test_float32_matches_dense_reference(xy, expected, chunk):
    x, y = xy
    got = measures(streamed(x.astype(np.float32), y.astype(np.float32), chunk))
    # the float64 reference of the float32-rounded data
    want = references(x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64))
    assert_close(got, want, rtol=1e-5)


def test_offsets_make_cosines_crowd_near_one(xy):
    # guards the test data itself: the raw one-pass RSA sums would fail on it
    x, _ = xy
    assert ref.isotropy(x)["mean_cosine"] > 0.999


def test_functional_api_matches_reference(xy, expected):
    x, y = xy
    assert ftlens.cka(x, y) == pytest.approx(expected["cka"], rel=1e-6)
    assert ftlens.cka(x, y, debiased=True) == pytest.approx(expected["cka_debiased"], rel=1e-6)
    for rdm in RDMS:
        assert ftlens.rsa(x, y, rdm=rdm) == pytest.approx(expected[f"rsa_{rdm}_pearson"], rel=1e-6)
        got = ftlens.rsa(x, y, rdm=rdm, compare="cosine")
        assert got == pytest.approx(expected[f"rsa_{rdm}_cosine"], rel=1e-6)
    assert ftlens.cca(x, y) == pytest.approx(expected["cca_mean"], rel=1e-6)
    assert ftlens.cca(x, y, "pwcca") == pytest.approx(expected["pwcca"], rel=1e-6)
    assert ftlens.cca(x, y, "svcca", k=3) == pytest.approx(expected["svcca_k"], rel=1e-6)
    assert ftlens.procrustes(x, y) == pytest.approx(expected["procrustes"], rel=1e-6)
    iso = ftlens.isotropy(x, top_k=3)
    for key in ("mean_cosine", "effective_rank", "mean_sq_dim_correlation"):
        assert iso[key] == pytest.approx(expected[f"iso_{key}"], rel=1e-6)


def test_merged_shards_equal_single_pass(xy):
    x, y = xy
    whole = streamed(x, y, 64)
    shards = [streamed(x[a:b], y[a:b], 13) for a, b in [(0, 50), (50, 51), (51, 220), (220, 300)]]
    merged = shards[0]
    for shard in shards[1:]:
        merged.merge(shard)
    got, want = measures(merged), measures(whole)
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-10, abs=1e-12), key
    a, b = merged.state_dict(), whole.state_dict()
    for key in ("raw.xx.0.S", "raw.xy.0.S", "raw.x.0.mean", "correlation.yy.0.S"):
        np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-6), (np.float32, 1e-5)])
def test_wide_representations_match_dense_reference(dtype, rtol):
    # p, q >= 256: own co-moments come from the panelled upper-triangle GEMMs
    x, y = (a.astype(dtype).astype(np.float64) for a in offset_data(n=600, p=301, q=258, seed=3))
    got = measures(streamed(x.astype(dtype), y.astype(dtype), 250))
    want = references(x, y)
    assert_close(got, want, rtol=rtol)
