"""Streaming: flat memory over 1,000,000 x 768 memmapped rows, and accumulation rate of
LayerMoments (13 layers, d = 768, diagonal pairs) against the same GEMMs in plain torch."""

import ftlens
import numpy as np
import pytest
import torch
from conftest import PeakRssAnon, report, timed

ROWS, DIM = 1_000_000, 768


@pytest.fixture(scope="module")
def memmaps(tmp_path_factory):
    """Two .npy files of 1e6 x 768 float32 (about 3 GB each), written in blocks."""
    folder = tmp_path_factory.mktemp("stream")
    g = torch.Generator().manual_seed(0)
    paths = [folder / "x.npy", folder / "y.npy"]
    arrays = [np.lib.format.open_memmap(p, mode="w+", dtype=np.float32, shape=(ROWS, DIM))
              for p in paths]
    mix = torch.randn(DIM, DIM, generator=g) / DIM**0.5
    for start in range(0, ROWS, 50_000):
        x = torch.randn(50_000, DIM, generator=g) + 10.0
        arrays[0][start : start + 50_000] = x.numpy()
        arrays[1][start : start + 50_000] = (x @ mix + torch.randn(50_000, DIM, generator=g)).numpy()
    for a in arrays:
        a.flush()
    del arrays
    yield [np.load(p, mmap_mode="r") for p in paths]
    for p in paths:
        p.unlink()


def test_memmap_stream_has_flat_memory(benchmark, memmaps):
    x, y = memmaps
    holder = {}

    def run():
        with PeakRssAnon() as peak:
            m = ftlens.Moments(DIM, DIM, rdms=("inner", "sqeuclidean"))
            m.update(x, y)
            value = m.cka()
        holder.update(peak=peak, value=value)
        return value

    value = benchmark.pedantic(run, rounds=1, iterations=1)
    growth = holder["peak"].growth
    seconds = benchmark.stats.stats.median
    report("memmap stream", rows=ROWS, dim=DIM, seconds=f"{seconds:.1f}",
           rows_per_s=f"{ROWS / seconds:,.0f}", rss_anon_growth_mb=f"{growth / 2**20:.0f}",
           cka=value)
    benchmark.extra_info.update(rss_anon_growth_bytes=growth)
    assert 0 < value < 1
    assert growth < 2**30


def test_layer_moments_rate_vs_matmul(benchmark):
    layers, rows, chunks = 13, 2048, 3
    g = torch.Generator().manual_seed(1)
    xs = [torch.randn(layers, rows, DIM, generator=g) + 5 for _ in range(chunks)]
    ys = [x + torch.randn(layers, rows, DIM, generator=g) for x in xs]

    def accumulate():
        lm = ftlens.LayerMoments(layers, DIM, DIM, rdms=("inner", "sqeuclidean"))
        for x, y in zip(xs, ys, strict=True):
            lm.update(x, y)
        return lm

    def same_gemms():
        for x, y in zip(xs, ys, strict=True):
            xt, yt = x.transpose(1, 2), y.transpose(1, 2)
            torch.matmul(xt, x), torch.matmul(yt, y), torch.matmul(xt, y)

    lm = benchmark.pedantic(accumulate, rounds=3, iterations=1, warmup_rounds=1)
    ours_s = benchmark.stats.stats.median
    gemm_s = sorted(timed(same_gemms)[0] for _ in range(3))[1]
    rate = gemm_s / ours_s
    benchmark.extra_info.update(gemm_s=gemm_s, rate_vs_matmul=rate)
    report("LayerMoments vs torch.matmul", layers=layers, dim=DIM, rows=rows * chunks,
           ftlens_s=f"{ours_s:.3f}", matmul_s=f"{gemm_s:.3f}", rate=f"{rate:.0%}")
    assert lm.n == rows * chunks
    assert rate >= 0.8  # the target of the hardening issue (RESULTS.md)


PEAK_GROWTH = """
import sys, torch, ftlens
g = torch.Generator().manual_seed(0)
xs = torch.randn(13, 8192, 768, generator=g) + 5
ys = torch.randn(13, 8192, 768, generator=g)
lm = ftlens.LayerMoments(13, 768, 768)  # every RDM: three views
status = lambda key: next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key))
open("/proc/self/clear_refs", "w").write("5")  # resets the peak resident size (VmHWM)
before = status("VmRSS:")
lm.update(xs, ys)
print(status("VmHWM:") - before, sum(t.numel() * t.element_size() for t in lm.state_dict().values()
                                     if isinstance(t, torch.Tensor)))
"""


def test_layer_moments_update_working_memory(benchmark):
    """LayerMoments(13, 768, 768) with every RDM, one update of [13, 8192, 768] float32 per
    side: the peak resident growth over the input and the (already allocated) state, in a
    fresh process."""
    import subprocess
    import sys

    def run():
        out = subprocess.run([sys.executable, "-c", PEAK_GROWTH], capture_output=True, text=True, check=True)
        return [int(v) for v in out.stdout.split()]

    growth, state = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(growth_bytes=growth, state_bytes=state)
    report("LayerMoments(13, 768, 768) update working memory", rows=8192,
           growth_mb=f"{growth / 2**20:.0f}", state_mb=f"{state / 2**20:.0f}")
    assert growth < 2**30  # the target: < 1 GB beyond input and state


def test_small_updates_cost_per_row_what_large_ones_do(benchmark):
    """LayerMoments(7, 384, 384) with its default RDMs: 1,000 updates of 64 rows against 8
    of 8,000 (the same 64,000 rows, each batch its own array, as a model's outputs are)."""
    layers, dim = 7, 384
    g = torch.Generator().manual_seed(2)
    small = [(torch.randn(layers, 64, dim, generator=g) + 5, torch.randn(layers, 64, dim, generator=g))
             for _ in range(1000)]
    large = [(torch.cat([x for x, _ in small[i:i + 125]], 1), torch.cat([y for _, y in small[i:i + 125]], 1))
             for i in range(0, 1000, 125)]

    def feed(batches):
        m = ftlens.LayerMoments(layers, dim, dim)
        for x, y in batches:
            m.update(x, y)
        return m.cka()

    times = {"small": [], "large": []}
    for _ in range(3):  # interleaved, so that a busy moment slows both
        for name, batches in (("small", small), ("large", large)):
            seconds, value = timed(feed, batches)
            times[name].append(seconds)
            times[name + "_cka"] = value
    benchmark.pedantic(feed, args=(small,), rounds=1, iterations=1)
    ratio = min(times["small"]) / min(times["large"])
    report("small updates", layers=layers, dim=dim, rows=64_000,
           us_per_row_64=f"{min(times['small']) / 64_000 * 1e6:.1f}",
           us_per_row_8000=f"{min(times['large']) / 64_000 * 1e6:.1f}", ratio=f"{ratio:.3f}")
    benchmark.extra_info.update(ratio=ratio)
    np.testing.assert_allclose(times["small_cka"], times["large_cka"], rtol=1e-7, atol=1e-10)
    assert ratio <= 1.10
