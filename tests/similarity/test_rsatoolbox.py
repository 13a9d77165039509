"""ftlens.rsa agrees with rsatoolbox's calc_rdm + compare (dense, float64)."""

import ftlens
import numpy as np
import pytest
import rsatoolbox


def toolbox_rsa(x, y, method, compare):
    rdms = [
        rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(a), method=method) for a in (x, y)
    ]
    return float(rsatoolbox.rdm.compare(rdms[0], rdms[1], method=compare)[0, 0])


@pytest.mark.parametrize("rdm, method", [("correlation", "correlation"), ("sqeuclidean", "euclidean")])
@pytest.mark.parametrize("compare, toolbox_compare", [("pearson", "corr"), ("cosine", "cosine")])
def test_matches_rsatoolbox(xy, rdm, method, compare, toolbox_compare):
    x, y = xy
    want = toolbox_rsa(x, y, method, toolbox_compare)
    assert ftlens.rsa(x, y, rdm=rdm, compare=compare) == pytest.approx(want, rel=1e-6, abs=1e-9)


def test_matches_rsatoolbox_without_offsets():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 16))
    y = x[:, :10] + 0.5 * rng.normal(size=(120, 10))
    want = toolbox_rsa(x, y, "correlation", "corr")
    assert ftlens.rsa(x, y) == pytest.approx(want, rel=1e-6)
