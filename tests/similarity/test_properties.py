"""Invariances of CKA (hypothesis): orthogonal transforms, isotropic scaling, translation,
symmetry, and CKA(X, X) = 1."""

import ftlens
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

seeds = st.integers(min_value=0, max_value=2**31 - 1)
SETTINGS = settings(max_examples=25, deadline=None)


def sample(seed, n=40, p=6, q=5):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)) * rng.uniform(0.5, 3, size=p)
    y = x[:, :q] @ rng.normal(size=(q, q)) + rng.normal(size=(n, q))
    return rng, x, y


def orthogonal(rng, d):
    qm, r = np.linalg.qr(rng.normal(size=(d, d)))
    return qm * np.sign(np.diag(r))


@SETTINGS
@given(seeds, st.booleans())
def test_invariant_to_orthogonal_transforms(seed, debiased):
    rng, x, y = sample(seed)
    base = ftlens.cka(x, y, debiased=debiased)
    moved = ftlens.cka(x @ orthogonal(rng, x.shape[1]), y @ orthogonal(rng, y.shape[1]), debiased)
    assert moved == pytest.approx(base, rel=1e-9, abs=1e-12)


@SETTINGS
@given(seeds, st.floats(1e-3, 1e3), st.floats(1e-3, 1e3), st.booleans())
def test_invariant_to_isotropic_scaling(seed, a, b, debiased):
    _, x, y = sample(seed)
    base = ftlens.cka(x, y, debiased=debiased)
    assert ftlens.cka(a * x, b * y, debiased=debiased) == pytest.approx(base, rel=1e-9, abs=1e-12)


@SETTINGS
@given(seeds, st.floats(-1e3, 1e3), st.booleans())
def test_invariant_to_translation(seed, shift, debiased):
    rng, x, y = sample(seed)
    base = ftlens.cka(x, y, debiased=debiased)
    moved = ftlens.cka(x + shift * rng.normal(size=x.shape[1]), y - shift, debiased=debiased)
    assert moved == pytest.approx(base, rel=1e-8, abs=1e-10)


@SETTINGS
@given(seeds, st.booleans())
def test_symmetric(seed, debiased):
    _, x, y = sample(seed)
    assert ftlens.cka(x, y, debiased) == pytest.approx(ftlens.cka(y, x, debiased), rel=1e-12)


@SETTINGS
@given(seeds, st.booleans())
def test_self_similarity_is_one(seed, debiased):
    _, x, _ = sample(seed)
    assert ftlens.cka(x, x, debiased=debiased) == pytest.approx(1.0, rel=1e-12)
    assert ftlens.rsa(x, x) == pytest.approx(1.0, rel=1e-12)


@SETTINGS
@given(seeds)
def test_bounded(seed):
    _, x, y = sample(seed)
    assert 0.0 <= ftlens.cka(x, y) <= 1.0 + 1e-12
    assert -1.0 - 1e-12 <= ftlens.rsa(x, y) <= 1.0 + 1e-12
    assert 0.0 <= ftlens.procrustes(x, y) <= 2.0
