import functools
import os
import platform
import threading
import time

import torch


def machine() -> str:
    threads = torch.get_num_threads()
    return f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {threads} threads"


def timed(fn, *args, **kwargs):
    """(seconds, result) of one call."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def _timed_call(fn, args):
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def timed_isolated(fn, *args):
    """(seconds, result) of one call of ``fn`` in a fresh process (spawned), timed there.

    Anchors run this way so that their BLAS threads, which may keep spinning for a while
    after a numpy call and take the cores, die with the process: what runs next in this
    process (the next test's ftlens timing) is not slowed by them, whatever the test order.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    def run():
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            return pool.submit(_timed_call, fn, args).result()

    try:
        return run()
    except BrokenProcessPool:
        # numpy's OpenBLAS picks its AVX-512 (SkylakeX) kernels on AVX-512 AMD EPYCs, where
        # x @ x.T (syrk) of a 16,000-row matrix segfaults; its AVX2 kernels do not (and match
        # torch's, which runs AVX2 there).
        if os.environ.get("OPENBLAS_CORETYPE"):
            raise
        name = getattr(fn, "__name__", fn)
        print(f"\n[{name}] the anchor's process crashed; rerun with OPENBLAS_CORETYPE=Haswell")
        os.environ["OPENBLAS_CORETYPE"] = "Haswell"
        try:
            return run()
        finally:
            del os.environ["OPENBLAS_CORETYPE"]


def report(name: str, **fields) -> None:
    print(f"\n[{name}] {machine()}: " + ", ".join(f"{k}={v}" for k, v in fields.items()))


def rss_anon_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("RssAnon not found in /proc/self/status")


class PeakRssAnon:
    """Samples the process's anonymous resident memory (not the page cache of mapped
    files) every few milliseconds while the block runs."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_anon_bytes())
            time.sleep(self.interval)

    def __enter__(self):
        self.baseline = rss_anon_bytes()
        self.peak = self.baseline
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_anon_bytes())

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


@functools.cache
def bert_like(n: int = 8000, d: int = 768) -> tuple:
    """X, Y [n, d] float32 numpy arrays with a shared signal and BERT-like outlier dimensions."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(n, 64, generator=g)
    x = z @ torch.randn(64, d, generator=g) + torch.randn(n, d, generator=g)
    y = z @ torch.randn(64, d, generator=g) + 2 * torch.randn(n, d, generator=g)
    x[:, :3] += torch.tensor([20.0, -12.0, 8.0])
    y[:, 5:7] += torch.tensor([15.0, 9.0])
    return x.numpy(), y.numpy()


def ewt_dev_sentences(n: int):
    """The first n UD EWT dev sentences, from FTLENS_DATA_DIR (make bench sets it)."""
    from pathlib import Path

    from ftlens.data import read_conllu

    folder = os.environ.get("FTLENS_DATA_DIR")
    if not folder:
        raise RuntimeError("set FTLENS_DATA_DIR to the data folder (make bench sets ../shared/data)")
    return read_conllu(Path(folder) / "ud_en_ewt" / "en_ewt-ud-dev.conllu")[:n]
