"""ftlens.rsa vs rsatoolbox and ftlens.cka vs the dense Gram-matrix CKA of Kornblith et al.,
at n = 8,000, d = 768 (the issue's size), in the same run; CKA and the squared Euclidean RDM
also at n = 16,000, where the anchors' n^2 cost shows. Each anchor runs once (seconds to
minutes)."""

import functools

import ftlens
import numpy as np
import pytest
import rsatoolbox
import torch
from conftest import bert_like, report, timed, timed_isolated


def gram_linear(x):
    return x.dot(x.T)


def center_gram(gram):
    """Kornblith et al.'s reference centering (biased HSIC)."""
    if not np.allclose(gram, gram.T):
        raise ValueError("Input must be a symmetric matrix.")
    gram = gram.copy()
    means = np.mean(gram, 0, dtype=np.float64)
    means -= np.mean(means) / 2
    gram -= means[:, None]
    gram -= means[None, :]
    return gram


def kornblith_gram_cka(x, y):
    """Reference linear CKA in Gram form (Kornblith et al. 2019), float64, n x n Grams."""
    gram_x = center_gram(gram_linear(np.asarray(x, np.float64)))
    gram_y = center_gram(gram_linear(np.asarray(y, np.float64)))
    scaled_hsic = gram_x.ravel().dot(gram_y.ravel())
    return float(scaled_hsic / (np.linalg.norm(gram_x) * np.linalg.norm(gram_y)))


def gemm_floor(x, y):
    """The physical limit: the three p x p GEMMs any moment method needs, plain torch."""
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    return tx.T @ tx, ty.T @ ty, tx.T @ ty


def rsatoolbox_rsa(x, y, method, compare):
    rdms = [rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(a.astype(np.float64)), method=method)
            for a in (x, y)]
    return float(rsatoolbox.rdm.compare(rdms[0], rdms[1], method=compare)[0, 0])


def compare(benchmark, name, x, y, ours, anchor, *anchor_args, min_speedup=None, max_over_floor):
    """Times ftlens (ours: x, y -> value), the GEMM floor and the anchor in this run, reports
    anchor / ftlens and ftlens / floor, and asserts what bench/RESULTS.md records: the
    values agree to 1e-9, the speed-up reaches its target where RESULTS says it holds
    (``min_speedup``), and ftlens stays within ``max_over_floor`` of the GEMM floor.

    ftlens and the floor keep their fastest of 3 rounds; the anchor, which runs for
    seconds to minutes, runs once in a spawned process (see ``timed_isolated``).
    """
    got = benchmark.pedantic(ours, args=(x, y), rounds=3, iterations=1)
    ours_s = benchmark.stats.stats.min
    floor_s = min(timed(gemm_floor, x, y)[0] for _ in range(3))
    anchor_s, want = timed_isolated(anchor, x, y, *anchor_args)
    ratio = anchor_s / ours_s
    benchmark.extra_info.update(anchor_s=anchor_s, ratio=ratio, gemm_floor_s=floor_s)
    report(name, n=len(x), d=x.shape[1], anchor_s=f"{anchor_s:.2f}", ftlens_s=f"{ours_s:.3f}",
           speedup=f"{ratio:.0f}x", gemm_floor_s=f"{floor_s:.3f}",
           ftlens_over_floor=f"{ours_s / floor_s:.2f}", value=got, anchor_value=want)
    assert got == pytest.approx(want, rel=1e-9)
    if min_speedup is not None:
        assert ratio >= min_speedup
    assert ours_s / floor_s <= max_over_floor


# The 100x target holds for the correlation RDM; for the others RESULTS.md records it as
# short on a 2-core machine (the anchors run in seconds, ftlens sits at its GEMM floor),
# so what is asserted there is the floor ratio, with room for this machine's noise.
@pytest.mark.parametrize(
    "n, rdm, method, min_speedup, max_over_floor",
    [
        (8000, "correlation", "correlation", 100, 2.2),
        (8000, "sqeuclidean", "euclidean", None, 1.5),
        (16000, "sqeuclidean", "euclidean", None, 1.5),
    ],
)
def test_rsa_vs_rsatoolbox(benchmark, n, rdm, method, min_speedup, max_over_floor):
    x, y = bert_like(n)
    ours = functools.partial(ftlens.rsa, rdm=rdm)
    compare(benchmark, f"rsa {rdm} vs rsatoolbox", x, y, ours, rsatoolbox_rsa, method, "corr",
            min_speedup=min_speedup, max_over_floor=max_over_floor)


@pytest.mark.parametrize("n, min_speedup", [(8000, None), (16000, None)])
def test_cka_vs_dense_gram(benchmark, n, min_speedup):
    x, y = bert_like(n)
    compare(benchmark, "cka vs dense Gram CKA", x, y, ftlens.cka, kornblith_gram_cka,
            min_speedup=min_speedup, max_over_floor=1.5)
