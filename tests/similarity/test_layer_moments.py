"""LayerMoments (diagonal and all pairs), the streaming protocol and input kinds."""

import ftlens
import numpy as np
import pytest
import torch
from helpers import reference as ref


@pytest.fixture(scope="module")
def stacks():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(120, 5))
    xs = np.stack([base @ rng.normal(size=(5, 6)) + 0.3 * l * rng.normal(size=(120, 6)) + 50
                   for l in range(3)])
    ys = np.stack([base @ rng.normal(size=(5, 4)) + rng.normal(size=(120, 4)) for _ in range(3)])
    return xs, ys


def test_diagonal_pairs_match_single_pairs(stacks):
    xs, ys = stacks
    lm = ftlens.LayerMoments(3, 6, 4, chunk_rows=17).update(xs, ys)
    assert lm.cka().shape == (3,)
    for l in range(3):
        assert lm.cka()[l] == pytest.approx(ref.cka(xs[l], ys[l]), rel=1e-9)
        assert lm.cka(debiased=True)[l] == pytest.approx(ref.cka(xs[l], ys[l], True), rel=1e-9)
        assert lm.rsa()[l] == pytest.approx(ref.rsa(xs[l], ys[l]), rel=1e-9)
        assert lm.rsa("sqeuclidean")[l] == pytest.approx(ref.rsa(xs[l], ys[l], "sqeuclidean"), rel=1e-9)
        assert lm.cca("pwcca")[l] == pytest.approx(ref.cca(xs[l], ys[l], "pwcca"), rel=1e-9)
        assert lm.procrustes()[l] == pytest.approx(ref.procrustes(xs[l], ys[l]), rel=1e-9)


def test_all_pairs_heatmap(stacks):
    xs, ys = stacks
    lm = ftlens.LayerMoments(3, 6, 4, pairs="all", chunk_rows=50).update(xs, ys)
    cka, rsa = lm.cka(), lm.rsa("cosine", "cosine")
    assert cka.shape == rsa.shape == (3, 3)
    for a in range(3):
        for b in range(3):
            assert cka[a, b] == pytest.approx(ref.cka(xs[a], ys[b]), rel=1e-9)
            assert rsa[a, b] == pytest.approx(ref.rsa(xs[a], ys[b], "cosine", "cosine"), rel=1e-9)
            assert lm.cca()[a, b] == pytest.approx(ref.cca(xs[a], ys[b]), rel=1e-9)


def test_all_pairs_float32(stacks):
    xs, ys = (a.astype(np.float32) for a in stacks)
    lm = ftlens.LayerMoments(3, 6, 4, pairs="all", chunk_rows=40).update(xs, ys)
    for a in range(3):
        for b in range(3):
            want = ref.rsa(xs[a].astype(np.float64), ys[b].astype(np.float64))
            assert lm.rsa()[a, b] == pytest.approx(want, rel=1e-5)


def test_layer_isotropy(stacks):
    xs, ys = stacks
    iso = ftlens.LayerMoments(3, 6, 4).update(xs, ys).isotropy("y", top_k=2)
    for l in range(3):
        want = ref.isotropy(ys[l], top_k=2)
        for key, value in want.items():
            assert iso[key][l] == pytest.approx(value, rel=1e-9), key


def test_sequence_of_layers_like_hidden_states(stacks):
    xs, ys = stacks
    a = ftlens.LayerMoments(3, 6, 4).update(list(xs), tuple(torch.from_numpy(y) for y in ys))
    b = ftlens.LayerMoments(3, 6, 4).update(xs, ys)
    np.testing.assert_allclose(a.cka(), b.cka(), rtol=1e-12)


def test_state_dict_round_trip_and_resume(stacks, tmp_path):
    xs, ys = stacks
    first = ftlens.LayerMoments(3, 6, 4, pairs="all").update(xs[:, :70], ys[:, :70])
    torch.save(first.state_dict(), tmp_path / "moments.pt")
    resumed = ftlens.LayerMoments(3, 6, 4, pairs="all")
    resumed.load_state_dict(torch.load(tmp_path / "moments.pt"))
    assert resumed.n == 70
    resumed.update(xs[:, 70:], ys[:, 70:])
    whole = ftlens.LayerMoments(3, 6, 4, pairs="all").update(xs, ys)
    np.testing.assert_allclose(resumed.rsa(), whole.rsa(), rtol=1e-10)
    np.testing.assert_allclose(resumed.cka(debiased=True), whole.cka(debiased=True), rtol=1e-10)


def test_reset(stacks):
    xs, ys = stacks
    lm = ftlens.LayerMoments(3, 6, 4).update(xs, ys)
    lm.reset()
    assert lm.n == 0
    lm.update(xs[:, :60], ys[:, :60])
    want = ftlens.LayerMoments(3, 6, 4).update(xs[:, :60], ys[:, :60])
    np.testing.assert_allclose(lm.cka(), want.cka(), rtol=1e-12)


def test_memmap_and_torch_and_half_inputs(tmp_path, xy):
    x, y = xy
    xm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float64, shape=x.shape)
    xm[:] = x
    xm.flush()
    xr = np.load(tmp_path / "x.npy", mmap_mode="r")
    want = ref.cka(x, y)
    assert ftlens.cka(xr, y, chunk_rows=64) == pytest.approx(want, rel=1e-9)
    assert ftlens.cka(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(want, rel=1e-9)
    rng = np.random.default_rng(0)
    h = rng.normal(size=(200, 8)).astype(np.float16)
    g = (h[:, :5].astype(np.float32) + rng.normal(size=(200, 5))).astype(np.float16)
    want16 = ref.cka(h.astype(np.float64), g.astype(np.float64))
    assert ftlens.cka(h, g) == pytest.approx(want16, rel=1e-5)
    assert ftlens.cka(torch.from_numpy(h).bfloat16(), torch.from_numpy(g).bfloat16()) == pytest.approx(
        want16, rel=0.05
    )


def test_mixed_precision_is_computed_in_float64(xy):
    x, y = xy
    assert ftlens.cka(x.astype(np.float32), y) == pytest.approx(
        ref.cka(x.astype(np.float32).astype(np.float64), y), rel=1e-9
    )


def test_isotropy_of_offset_rows(xy):
    x, _ = xy
    iso = ftlens.isotropy(x, top_k=2)
    assert iso["mean_cosine"] > 0.999
    assert iso["dim_mean_abs_max"] == pytest.approx(1e3, rel=0.01)
    assert iso["top_k"] == 2 and iso["n_constant_dims"] == 0


def test_build_info_reports_the_build():
    info = ftlens.build_info()
    assert set(info) >= {"compiler", "torch", "cuda"}
    assert info["torch"].split("+")[0] == torch.__version__.split("+")[0]
    # setup.py's rule: the kernels are compiled when torch has CUDA and nvcc is found
    import os
    import shutil

    expected = torch.version.cuda is not None and shutil.which("nvcc") is not None
    flag = os.environ.get("FTLENS_CUDA", "").strip().lower()
    if flag in ("0", "1", "on", "off", "true", "false", "yes", "no"):
        expected = flag in ("1", "on", "true", "yes")
    assert info["cuda"] is expected


def test_update_releases_the_gil():
    # While the core accumulates, another Python thread keeps running: it leaves
    # timestamps well inside the update's span, which a held GIL would rule out.
    import threading
    import time

    lm = ftlens.LayerMoments(2, 384, 384, chunk_rows=12000)
    xs = torch.randn(2, 12000, 384, dtype=torch.float64)  # one chunk: one call into the core
    stamps, stop = [], threading.Event()

    def tick():
        while not stop.is_set():
            stamps.append(time.perf_counter())
            time.sleep(0.001)

    thread = threading.Thread(target=tick)
    thread.start()
    try:
        start = time.perf_counter()
        lm.update(xs, xs)
        end = time.perf_counter()
    finally:
        stop.set()
        thread.join()
    assert end - start > 0.1, "the update was too short to tell"
    inside = [t for t in stamps if start + 0.03 < t < end - 0.03]
    assert len(inside) >= 3


@pytest.mark.parametrize("threads", [1, 2, 3, 6])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_wide_layers_at_any_thread_count(threads, dtype):
    """At 256 columns and more the Gram blocks come from GEMMs over their upper triangle
    only and the cross blocks from column slices, shared out among the threads in a way
    that depends on how many there are (single-threaded GEMMs up to 4 threads, every GEMM
    over all threads beyond)."""
    rng = np.random.default_rng(threads)
    base = rng.normal(size=(300, 8))
    xs = np.stack([base @ rng.normal(size=(8, 320)) + rng.normal(size=(300, 320)) + 40]).astype(dtype)
    ys = np.stack([base @ rng.normal(size=(8, 260)) + 2 * rng.normal(size=(300, 260)) - 15]).astype(dtype)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        lm = ftlens.LayerMoments(1, 320, 260, chunk_rows=110).update(xs, ys)
    finally:
        torch.set_num_threads(before)
    x64, y64 = xs[0].astype(np.float64), ys[0].astype(np.float64)
    rel = 1e-9 if dtype == np.float64 else 2e-5
    assert lm.cka()[0] == pytest.approx(ref.cka(x64, y64), rel=rel)
    assert lm.rsa()[0] == pytest.approx(ref.rsa(x64, y64), rel=rel)
    assert lm.rsa("sqeuclidean")[0] == pytest.approx(ref.rsa(x64, y64, "sqeuclidean"), rel=rel)
