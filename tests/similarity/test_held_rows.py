"""Small updates are held back and added as one chunk: the statistics are those of one
update of every row (to 1e-10; the chunks, and so the order of the sums, differ), reads
in between see every row, and a caller's array may change after its update."""

import pickle

import ftlens
import ftlens.similarity.moments as moments_module
import numpy as np
import pytest
import torch
from ftlens.similarity.grouped import GroupedMoments
from helpers.data import offset_data
from helpers.measures import assert_close, measures, references


def pieces(n: int, seed: int = 0) -> list[slice]:
    """Row ranges of uneven small sizes (1 to 40 rows) covering [0, n)."""
    rng = np.random.default_rng(seed)
    cuts = np.cumsum(rng.integers(1, 41, size=n))
    cuts = np.concatenate([[0], cuts[cuts < n], [n]])
    return [slice(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def test_small_updates_equal_one_update_and_the_float64_reference():
    x, y = offset_data(n=600, p=9, q=7)  # dimensions offset by 1e3, as BERT's outliers
    small = ftlens.Moments(9, 7, chunk_rows=256)
    for rows in pieces(600):
        small.update(x[rows], y[rows])
    assert small.n == 600
    one = ftlens.Moments(9, 7, chunk_rows=256).update(x, y)
    assert_close(measures(small), measures(one), 1e-10)
    assert_close(measures(small), references(x, y), 1e-8)


@pytest.mark.parametrize("pairs", ["diagonal", "all"])
def test_layer_stacks_in_small_float32_updates(pairs):
    x, y = offset_data(n=500, p=8, q=6, seed=3, offset=30.0)
    xs = np.stack([x, 2 * x + 1, -x]).astype(np.float32)
    ys = np.stack([y, y ** 2, y + 5]).astype(np.float32)
    small = ftlens.LayerMoments(3, 8, 6, pairs, chunk_rows=128)
    for rows in pieces(500, seed=1):
        small.update(torch.from_numpy(xs[:, rows]), torch.from_numpy(ys[:, rows]))
    one = ftlens.LayerMoments(3, 8, 6, pairs, chunk_rows=128).update(xs, ys)
    for name in ("cka", "rsa"):
        np.testing.assert_allclose(small.measure(name), one.measure(name), rtol=1e-10, atol=1e-12)


def test_a_changed_or_reused_input_array_does_not_change_what_was_added():
    x, y = offset_data(n=200, p=6, q=4, seed=2)
    m = ftlens.Moments(6, 4)
    buffer_x, buffer_y = np.empty((20, 6)), np.empty((20, 4))
    for start in range(0, 200, 20):  # one array refilled for every batch, as a data loader might
        buffer_x[:] = x[start:start + 20]
        buffer_y[:] = y[start:start + 20]
        m.update(buffer_x, buffer_y)
    buffer_x[:] = 0.0
    assert m.cka() == pytest.approx(ftlens.Moments(6, 4).update(x, y).cka(), rel=1e-10)


def test_reads_between_updates_see_every_row_and_the_stream_goes_on():
    x, y = offset_data(n=300, p=6, q=5, seed=4)
    m = ftlens.Moments(6, 5)
    m.update(x[:50], y[:50])
    assert m.n == 50
    assert m.cka() == pytest.approx(ftlens.Moments(6, 5).update(x[:50], y[:50]).cka(), rel=1e-10)
    saved = m.state_dict()
    copied = pickle.loads(pickle.dumps(m))
    m.update(x[50:120], y[50:120])
    merged = ftlens.Moments(6, 5).merge(m)
    merged.update(x[120:], y[120:])
    resumed = ftlens.Moments(6, 5)
    resumed.load_state_dict(saved)
    resumed.update(x[50:], y[50:])
    copied.update(x[50:], y[50:])
    want = ftlens.Moments(6, 5).update(x, y)
    for got in (merged, resumed, copied):
        assert got.n == 300
        assert got.cka() == pytest.approx(want.cka(), rel=1e-10)
        assert got.rsa() == pytest.approx(want.rsa(), rel=1e-10)


def test_float32_then_float64_updates_are_both_kept():
    x, y = offset_data(n=200, p=6, q=4, seed=6, offset=10.0)
    m = ftlens.Moments(6, 4)
    m.update(x[:100].astype(np.float32), y[:100].astype(np.float32))
    m.update(x[100:], y[100:])
    assert m.n == 200
    assert m.cka() == pytest.approx(ftlens.Moments(6, 4).update(x, y).cka(), rel=1e-5)


def test_held_rows_stay_within_a_chunk_and_the_memory_bound(monkeypatch):
    x, y = offset_data(n=1000, p=6, q=4)
    m = ftlens.Moments(6, 4, chunk_rows=100)
    for start in range(0, 1000, 30):
        m.update(x[start:start + 30], y[start:start + 30])
        assert m.held_bytes <= 100 * (6 + 4) * 8
    monkeypatch.setattr(moments_module, "HOLD_BYTES", 20 * (6 + 4) * 8)  # 20 float64 rows
    bounded = ftlens.Moments(6, 4, chunk_rows=100)
    for start in range(0, 1000, 7):
        bounded.update(x[start:start + 7], y[start:start + 7])
        assert bounded.held_bytes <= 20 * (6 + 4) * 8
    assert bounded.cka() == pytest.approx(m.cka(), rel=1e-10)


def test_groups_hold_at_most_one_bound_together(monkeypatch):
    x, y = offset_data(n=400, p=6, q=4, seed=8)
    bound = 60 * (6 + 4) * 8
    monkeypatch.setattr(moments_module, "HOLD_BYTES", bound)
    grouped = GroupedMoments(10, 400, 1, 6, 4)
    order = np.random.default_rng(0).permutation(400)  # rows of every group in every batch
    for start in range(0, 400, 16):
        item = order[start:start + 16]
        grouped.update(torch.from_numpy(x[item][None]), torch.from_numpy(y[item][None]), item)
        assert sum(g.held_bytes for g in grouped.groups) <= bound
    want = ftlens.LayerMoments(1, 6, 4).update(x[None], y[None]).cka()
    assert grouped.merged().cka() == pytest.approx(want, rel=1e-10)


def test_a_bad_row_in_a_small_update_is_refused_at_once_by_its_place_in_the_stream():
    x, y = offset_data(n=100, p=6, q=4)
    m = ftlens.Moments(6, 4)
    m.update(x[:30], y[:30])
    bad = x[30:40].copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="X contains NaN or Inf at layer 0, row 33"):
        m.update(bad, y[30:40])
    assert m.n == 30
    assert m.cka() == pytest.approx(ftlens.Moments(6, 4).update(x[:30], y[:30]).cka(), rel=1e-12)
