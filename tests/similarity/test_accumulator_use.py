"""Accumulators under ordinary use: bounded working memory, concurrent threads, pickling,
bad rows in any view."""

import copy
import gc
import pickle
import subprocess
import sys
import textwrap
import threading

import ftlens
import numpy as np
import pytest
import torch
from helpers.data import offset_data

PEAK_GROWTH = textwrap.dedent("""
    import sys, torch, ftlens
    layers, rows, dim = (int(a) for a in sys.argv[1:4])
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(layers, rows, dim, generator=g) + 5
    ys = torch.randn(layers, rows, dim, generator=g)
    lm = ftlens.LayerMoments(layers, dim, dim)  # every rdm: three views
    def rss(field):
        return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(field))
    open("/proc/self/clear_refs", "w").write("5")  # resets the peak (VmHWM)
    before = rss("VmRSS:")
    lm.update(xs, ys)
    print(rss("VmHWM:") - before)
""")


def peak_growth(layers: int, rows: int, dim: int) -> int:
    out = subprocess.run([sys.executable, "-c", PEAK_GROWTH, str(layers), str(rows), str(dim)],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


def test_working_memory_does_not_grow_with_layers():
    rows, dim = 4096, 256
    chunk = rows * dim * 8  # one float64 [rows, dim] buffer
    state_per_layer = 3 * 3 * dim * dim * 8  # three views, three blocks per layer
    few, many = peak_growth(2, rows, dim), peak_growth(12, rows, dim)
    # Buffers kept per layer, view and side would add about 18 chunks per extra layer.
    assert many - few < 10 * (2 * chunk + state_per_layer), (few, many)
    assert many < 8 * chunk + 12 * 3 * state_per_layer, many


def test_threads_updating_one_accumulator_serialize():
    x, y = offset_data(n=4000, p=40, q=30, seed=5)
    parts = np.array_split(np.arange(len(x)), 40)
    shared = ftlens.Moments(40, 30)

    def feed(indices):
        for i in indices:
            shared.update(x[parts[i]], y[parts[i]])

    threads = [threading.Thread(target=feed, args=(range(k, 40, 2),)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    alone = ftlens.Moments(40, 30).update(x, y)
    assert shared.n == alone.n
    assert shared.cka() == pytest.approx(alone.cka(), rel=1e-10)
    for rdm in ("correlation", "cosine", "sqeuclidean"):
        assert shared.rsa(rdm) == pytest.approx(alone.rsa(rdm), rel=1e-9)


def test_pickle_and_deepcopy_keep_the_statistics(tmp_path):
    x, y = offset_data(n=200, p=9, q=7)
    m = ftlens.Moments(9, 7, rdms=("correlation",), chunk_rows=50).update(x, y)
    for clone in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
        assert type(clone) is ftlens.Moments
        assert clone.n == 200 and clone.rdms == ("correlation",) and clone.chunk_rows == 50
        assert clone.cka() == m.cka() and clone.rsa() == m.rsa()
    lm = ftlens.LayerMoments(2, 9, 7, pairs="all").update(np.stack([x, x + 1]), np.stack([y, -y]))
    back = pickle.loads(pickle.dumps(lm))
    np.testing.assert_array_equal(back.cka(), lm.cka())
    back.update(np.stack([x, x]), np.stack([y, y]))  # still a live accumulator
    assert back.n == 400 and lm.n == 200


def test_merging_an_accumulator_into_itself_doubles_its_rows():
    x, y = offset_data(n=100)
    m = ftlens.Moments(9, 7).update(x, y)
    m.merge(m)
    twice = ftlens.Moments(9, 7).update(np.concatenate([x, x]), np.concatenate([y, y]))
    assert m.n == 200
    assert m.rsa() == pytest.approx(twice.rsa(), rel=1e-10)


@pytest.mark.parametrize("rdm", ["cosine", "correlation"])
def test_nan_row_in_a_unit_view_only_accumulator_is_named(rdm):
    x, y = offset_data(n=60)
    x[23, 4] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN or Inf at layer 0, row 23 \(row 3 of chunk 1\)"):
        ftlens.rsa(x, y, rdm, chunk_rows=20)  # the functional API accumulates only the unit view
    lm = ftlens.LayerMoments(2, 9, 7, rdms=(rdm,))
    ys = np.stack([y, y])
    ys[1, 5, 0] = np.inf
    with pytest.raises(ValueError, match=r"Y contains NaN or Inf at layer 1, row 5"):
        lm.update(np.stack([offset_data(n=60)[0]] * 2), ys)


def test_a_bad_row_in_a_later_layer_leaves_the_accumulator_untouched():
    x, y = offset_data(n=50)
    lm = ftlens.LayerMoments(3, 9, 7)
    lm.update(np.stack([x] * 3), np.stack([y] * 3))
    before = lm.state_dict()
    bad = np.stack([x] * 3)
    bad[2, 10] = 0.0  # a zero row: no cosine
    with pytest.raises(ValueError, match="row 60 .* at layer 2 has zero norm"):
        lm.update(bad, np.stack([y] * 3))
    after = lm.state_dict()
    assert lm.n == 50
    for key, value in before.items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(after[key], value, rtol=0, atol=0)


def test_a_copy_by_merging_into_an_empty_accumulator_is_independent():
    x, y = offset_data(n=300, p=9, q=7, seed=3)
    m = ftlens.LayerMoments(2, 9, 7, rdms=("cosine",)).update(np.stack([x, 2 * x]), np.stack([y, y + 3]))
    before = (m.cka(), m.rsa("cosine"))
    copied = m.empty_like().merge(m)
    np.testing.assert_array_equal(copied.cka(), before[0])
    copied.update(np.stack([x[::-1], x]), np.stack([y, -y]))
    np.testing.assert_array_equal(m.cka(), before[0])  # the original keeps its statistics
    np.testing.assert_array_equal(m.rsa("cosine"), before[1])
    m.update(np.stack([x, x]), np.stack([y, y]))
    assert copied.n == m.n == 600
    assert not np.array_equal(copied.cka(), m.cka())


def test_one_shot_calls_reuse_a_bounded_pool_of_working_buffers():
    x, y = offset_data(n=3000, p=64, q=48, seed=4)
    gc.collect()  # an earlier test's accumulator freed mid-test would add its buffers
    gc.disable()
    try:
        first = ftlens.cka(x, y)
        held = ftlens._C.scratch_pool_bytes()
        assert 3000 * 64 * 4 <= held <= 256 << 20  # the released chunk buffers, within the cap
        assert ftlens.cka(x, y) == first
        assert ftlens._C.scratch_pool_bytes() == held  # taken and given back, not allocated anew
    finally:
        gc.enable()


def test_one_shot_measures_in_threads_equal_the_same_calls_in_turn():
    data = [offset_data(n=1500 + 100 * k, p=40, q=30, seed=k) for k in range(4)]

    def measures(x, y):
        return ftlens.cka(x, y), ftlens.rsa(x, y, rdm="correlation"), ftlens.rsa(x, y, rdm="cosine")

    alone = [measures(x, y) for x, y in data]
    got = [None] * len(data)

    def run(k):
        for _ in range(3):
            got[k] = measures(*data[k])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(data))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == alone  # buffers passed between threads through the pool leak nothing
