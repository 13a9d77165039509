"""The online codelength is well-posed: with the bias penalized like the weights, a block
whose training prefix lacks a class still has one finite optimum, so the codelength equals
a float64 scipy reference that fits each block from scratch, whatever the start."""

import math

import ftlens
import numpy as np
import pytest
import torch
from ftlens.probes.features import ProbeRows
from ftlens.probes.linear import LinearProbes, offsets_of
from ftlens.probes.logistic import whitening
from ftlens.probes.mdl import block_bounds, online_codelength
from ftlens.probes.ridge import fit_ridge, folds_of
from scipy.optimize import minimize
from scipy.special import logsumexp

L2 = 1e-2
CLASSES = 5


def _data(n=2000, d=6, seed=0):
    """Rows whose classes 3 and 4 are rare (absent from the first blocks)."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(CLASSES, size=n, p=[0.45, 0.35, 0.17, 0.02, 0.01])
    centers = rng.normal(size=(CLASSES, d)) * 1.5
    x = (centers[labels] + rng.normal(size=(n, d)) + 20.0).astype(np.float32)  # an offset, as BERT's
    return x, labels


def _reference_kbits(x, labels, order, bounds):
    """Per block: the penalized mean cross-entropy minimized in float64 from zeros."""
    x = x.astype(np.float64) - x.astype(np.float64).mean(0)  # the probes' shift: the train rows' mean
    d = x.shape[1]
    bits = bounds[0] * math.log2(CLASSES)
    for i in range(1, len(bounds)):
        seen, block = order[: bounds[i - 1]], order[bounds[i - 1] : bounds[i]]

        def objective(theta, xs=x[seen], ys=labels[seen]):
            w, b = theta[: d * CLASSES].reshape(d, CLASSES), theta[d * CLASSES :]
            logits = xs @ w + b
            log_p = logits - logsumexp(logits, 1, keepdims=True)
            value = -log_p[np.arange(len(ys)), ys].mean() + 0.5 * L2 * (np.sum(w * w) + np.sum(b * b))
            p = np.exp(log_p)
            p[np.arange(len(ys)), ys] -= 1
            grad = np.concatenate([(xs.T @ p / len(ys) + L2 * w).ravel(), p.mean(0) + L2 * b])
            return value, grad

        theta = minimize(objective, np.zeros(d * CLASSES + CLASSES), jac=True, method="L-BFGS-B",
                         options={"maxiter": 5000, "gtol": 1e-12, "ftol": 1e-15}).x
        w, b = theta[: d * CLASSES].reshape(d, CLASSES), theta[d * CLASSES :]
        logits = x[block] @ w + b
        log_p = logits - logsumexp(logits, 1, keepdims=True)
        bits += -log_p[np.arange(len(block)), labels[block]].sum() / math.log(2)
    return bits / 1000


@pytest.fixture(scope="module")
def problem():
    x, labels = _data()
    store = ftlens.store.from_arrays([x], {"upos": [f"c{k}" for k in labels]}, model="synthetic")
    codes = store.labels("upos")[0][:, None]
    rows = ProbeRows(store, [0], np.arange(len(x)))
    ridge = fit_ridge(rows, codes, [CLASSES], alphas=(1.0,), folds=1, seed=0, progress=False)
    return x, labels, rows, codes, ridge


def _codelength(problem, start_w):
    x, labels, rows, codes, ridge = problem
    l2 = np.full((1, 1), L2)
    start = LinearProbes(ridge.probes.shift, ridge.probes.scale, start_w, torch.zeros_like(ridge.probes.b),
                         offsets_of([CLASSES]))
    kbits, _ = online_codelength(rows, codes, [CLASSES], start, l2, whitening(ridge.cov, l2), seed=0,
                                 max_passes=200, progress=False)
    return float(kbits[0, 0])


def test_codelength_equals_a_float64_reference_when_early_blocks_lack_classes(problem):
    x, labels, rows, codes, ridge = problem
    order = np.lexsort((np.arange(len(x)), folds_of(rows.inputs, len(x), 0)))
    bounds = block_bounds(len(x))
    assert len(np.unique(labels[order[: bounds[3]]])) < CLASSES  # the case at stake
    want = _reference_kbits(x, codes[:, 0], order, bounds)
    got = _codelength(problem, torch.zeros_like(ridge.probes.w))
    assert got == pytest.approx(want, rel=2e-3)


def test_codelength_does_not_depend_on_the_start(problem):
    ridge = problem[-1]
    cold = _codelength(problem, torch.zeros_like(ridge.probes.w))
    warm = _codelength(problem, ridge.probes.w.clone())
    noisy = _codelength(problem, torch.randn(ridge.probes.w.shape, dtype=torch.float64,
                                             generator=torch.Generator().manual_seed(0)))
    assert warm == pytest.approx(cold, rel=1e-3) and noisy == pytest.approx(cold, rel=1e-3)
