"""The pairwise tile engine against its anchors at n = 8,000, d = 768 (float32 rows with
BERT-like offsets), in the same run: exact RBF CKA vs Kornblith et al.'s dense float64
numpy form (same median convention), and Spearman RSA of Euclidean RDMs vs rsatoolbox
(calc_rdm euclidean + compare spearman). Also the GEMM floor of one pass (the two n x n
Gram GEMMs, plain torch.matmul; a pass computes half of each). Each anchor runs once, in
a spawned process."""

import ftlens
import numpy as np
import pytest
import rsatoolbox
import torch
from conftest import bert_like, report, timed, timed_isolated


def kornblith_rbf_cka(x, y, threshold=1.0):
    """Kornblith et al.'s Gram-form CKA with their RBF kernel, float64 numpy."""

    def gram_rbf(a):
        dot = a @ a.T
        sq_norms = np.diag(dot)
        sq = -2 * dot + sq_norms[:, None] + sq_norms[None, :]
        return np.exp(-sq / (2 * threshold**2 * np.median(sq)))

    def center_gram(gram):
        means = np.mean(gram, 0, dtype=np.float64)
        means -= np.mean(means) / 2
        gram -= means[:, None]
        gram -= means[None, :]
        return gram

    gx = center_gram(gram_rbf(np.asarray(x, np.float64)))
    gy = center_gram(gram_rbf(np.asarray(y, np.float64)))
    return float(gx.ravel() @ gy.ravel() / (np.linalg.norm(gx) * np.linalg.norm(gy)))


def rsatoolbox_spearman(x, y):
    rdms = [
        rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(a.astype(np.float64)), method="euclidean")
        for a in (x, y)
    ]
    return float(rsatoolbox.rdm.compare(rdms[0], rdms[1], method="spearman")[0, 0])


def gram_floor(x, y):
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    return tx @ tx.T, ty @ ty.T


def _compare(benchmark, name, ours, anchor, min_speedup, tolerance):
    x, y = bert_like(8000)
    got = benchmark.pedantic(ours, args=(x, y), rounds=2, iterations=1)
    ours_s = benchmark.stats.stats.min
    floor_s = min(timed(gram_floor, x, y)[0] for _ in range(3))
    anchor_s, want = timed_isolated(anchor, x, y)
    ratio = anchor_s / ours_s
    benchmark.extra_info.update(anchor_s=anchor_s, ratio=ratio, gram_floor_s=floor_s)
    report(
        name,
        n=len(x),
        d=x.shape[1],
        anchor_s=f"{anchor_s:.2f}",
        ftlens_s=f"{ours_s:.2f}",
        speedup=f"{ratio:.1f}x",
        gram_floor_s=f"{floor_s:.2f}",
        ftlens_over_floor=f"{ours_s / floor_s:.2f}",
        value=got,
        anchor_value=want,
    )
    assert got == pytest.approx(want, abs=tolerance)
    assert ratio >= min_speedup


def test_rbf_cka_vs_kornblith_dense(benchmark):
    # float32 rows against the float64 reference: they agree to float32 rounding
    _compare(
        benchmark,
        "rbf cka vs Kornblith dense",
        lambda x, y: ftlens.cka(x, y, kernel="rbf"),
        kornblith_rbf_cka,
        min_speedup=2,
        tolerance=1e-5,
    )


def test_spearman_rsa_vs_rsatoolbox(benchmark):
    _compare(
        benchmark,
        "spearman rsa vs rsatoolbox",
        lambda x, y: ftlens.rsa(x, y, rdm="euclidean", compare="spearman"),
        rsatoolbox_spearman,
        min_speedup=5,
        tolerance=1e-3,
    )


def _float32_midranks_spearman(x, y):
    """The exact path before ties were kept: float32 Gram-form distances from column-mean
    centered rows, ranked as they come (translation could break ties)."""
    from ftlens.similarity.tiles import engine, order

    a, b, double = engine.sources(x, y)
    how = engine.rdm_map("euclidean")
    tile = engine.tile_for(a.shape[0], a.shape[1], b.shape[1], double, None)
    out = engine.run(a, b, engine.side("X", how, a), engine.side("Y", how, b), "collect", tile, double)
    rx, ry = (torch.from_numpy(order.midranks(out[k].numpy())) for k in "xy")
    rx -= rx.mean()
    ry -= ry.mean()
    return float(rx @ ry) / float(rx.norm() * ry.norm())


def test_exact_spearman_with_ties_kept_vs_float32_ranks(benchmark):
    """What keeping ties costs the exact Spearman path at n = 4,000, d = 768: float64 pair
    values from median-shifted rows, ranked with the rounding tolerance, against the former
    float32 values ranked as they come, in the same run; and the magnitude pass that every
    tile call now makes (which sends float32 rows of extreme scale to float64)."""
    from ftlens.similarity.tiles import engine

    x, y = bert_like(4000)
    got = benchmark.pedantic(lambda: ftlens.rsa(x, y, rdm="euclidean", compare="spearman", exact=True),
                             rounds=3, iterations=1)
    ours_s = benchmark.stats.stats.min
    before_s, before = min(timed(_float32_midranks_spearman, x, y) for _ in range(3))
    magnitude_s = min(timed(lambda: [engine.largest_magnitude(torch.from_numpy(a)) for a in (x, y)])[0]
                      for _ in range(3))
    report("exact spearman, ties kept (float64) vs float32 ranks", n=4000, d=768,
           ties_kept_s=f"{ours_s:.2f}", float32_s=f"{before_s:.2f}", ratio=f"{ours_s / before_s:.2f}",
           magnitude_pass_s=f"{magnitude_s:.4f}", value=got, float32_value=before)
    assert got == pytest.approx(before, abs=1e-7)
    assert ours_s / before_s < 2.0


def test_permutations_over_held_pairs_vs_a_pass_per_shuffle(benchmark):
    """A permutation test of RBF CKA at n = 3,000, d = 768: the pair values held once (one
    extra pass, counted in) and re-indexed per shuffle, against one tile pass per shuffle (a
    budget too small to hold them). Per shuffle, beyond the observed value's passes."""
    x, y = bert_like(3000)
    test = ftlens.permutation_test
    few, many = 5, 100
    held_few = test(x, y, "cka", permutations=few, kernel="rbf", progress=False)
    held_s, held = timed(test, x, y, "cka", permutations=many, kernel="rbf", progress=False)
    passes_s, passes = timed(
        test, x, y, "cka", permutations=few, kernel="rbf", progress=False, memory_budget=64 * 2**20
    )
    benchmark.pedantic(lambda: held_few, rounds=1, iterations=1)
    shared_s = timed(ftlens.cka, x, y, kernel="rbf")[0]  # the observed value: median and HSIC passes
    per_held = (held_s - shared_s) / many
    per_pass = (passes_s - shared_s) / few
    benchmark.extra_info.update(per_shuffle_held_s=per_held, per_shuffle_pass_s=per_pass)
    report("permutation test, rbf cka, held pairs vs a pass per shuffle", n=3000, d=768,
           per_shuffle_held_s=f"{per_held:.4f}", per_shuffle_pass_s=f"{per_pass:.3f}",
           speedup=f"{per_pass / per_held:.1f}x", reuse=held["reuse"])
    assert held["reuse"] == "held pairs" and passes["reuse"] == "bandwidths"
    np.testing.assert_allclose(held["null"][:few], passes["null"], rtol=0, atol=1e-9)
    assert per_pass / per_held >= 3


def test_scale_100k_rows_from_memmaps(tmp_path):
    """RBF CKA (median bandwidth: histogram + select passes) and Spearman RSA (sketch) at
    n = 100,000, d = 384 read from .npy memmaps: the growth of peak anonymous memory stays
    under 2 GB, where a dense float64 RDM alone would take 80 GB."""
    from conftest import PeakRssAnon

    x, y = bert_like(100_000, 384)
    for name, a in (("x", x), ("y", y)):
        np.save(tmp_path / f"{name}.npy", a)
    x = np.load(tmp_path / "x.npy", mmap_mode="r")
    y = np.load(tmp_path / "y.npy", mmap_mode="r")
    bert_like.cache_clear()
    for name, call in (
        ("rbf cka", lambda: ftlens.cka(x, y, kernel="rbf", details=True)),
        ("spearman rsa", lambda: ftlens.rsa(x, y, rdm="euclidean", compare="spearman", details=True)),
    ):
        with PeakRssAnon() as memory:
            seconds, out = timed(call)
        report(
            f"{name} at scale",
            n=x.shape[0],
            d=x.shape[1],
            seconds=f"{seconds:.0f}",
            peak_anon_growth_mb=f"{memory.growth / 2**20:.0f}",
            passes=out["passes"],
            value=out["value"],
            error_bound=out.get("error_bound"),
            sigma=out.get("sigma"),
        )
        assert memory.growth < 2 * 2**30
        assert 0 < out["value"] < 1
