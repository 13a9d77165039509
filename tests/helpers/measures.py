"""Every moment measure of an accumulator, and the same from the float64 references:
the exactness tests compare them on the CPU and on CUDA."""

import ftlens
import pytest

from . import reference as ref

RDMS = ["inner", "cosine", "correlation", "sqeuclidean"]


def streamed(x, y, chunk):
    m = ftlens.Moments(x.shape[1], y.shape[1])
    step = len(x) if chunk is None else chunk
    for i in range(0, len(x), step):
        m.update(x[i : i + step], y[i : i + step])
    return m


def measures(m):
    out = {
        "cka": m.cka(),
        "cka_debiased": m.cka(debiased=True),
        "cca_mean": m.cca("mean"),
        "svcca_k": m.cca("svcca", k=3),
        "svcca_threshold": m.cca("svcca", threshold=0.9),
        "pwcca": m.cca("pwcca"),
        "procrustes": m.procrustes(),
    }
    for rdm in RDMS:
        for compare in ("pearson", "cosine"):
            out[f"rsa_{rdm}_{compare}"] = m.rsa(rdm, compare)
    for key, value in m.isotropy("x", top_k=3).items():
        out[f"iso_{key}"] = value
    return out


def references(x, y):
    out = {
        "cka": ref.cka(x, y),
        "cka_debiased": ref.cka(x, y, debiased=True),
        "cca_mean": ref.cca(x, y),
        "svcca_k": ref.cca(x, y, "svcca", k=3),
        "svcca_threshold": ref.cca(x, y, "svcca", threshold=0.9),
        "pwcca": ref.cca(x, y, "pwcca"),
        "procrustes": ref.procrustes(x, y),
    }
    for rdm in RDMS:
        for compare in ("pearson", "cosine"):
            out[f"rsa_{rdm}_{compare}"] = ref.rsa(x, y, rdm, compare)
    for key, value in ref.isotropy(x, top_k=3).items():
        out[f"iso_{key}"] = value
    return out


def assert_close(got, want, rtol):
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=rtol, abs=rtol * 1e-3), key
