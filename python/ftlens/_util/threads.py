"""torch's thread pool sized to the cores that are free: two jobs that each take every core
fight over them (a 4-minute study took 49 on 2 cores shared with one other job).

``FTLENS_THREADS`` (or ``OMP_NUM_THREADS``) fixes the count; otherwise the free cores are
the usable ones less those busy with other work in a short sample, at least one."""

from __future__ import annotations

import contextlib
import os
import time

_budget: list[int] = []  # the cores free_core_threads found free, while its block runs


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the platform tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def core_budget() -> int:
    """The cores this process may keep busy: those ``free_core_threads`` chose while its
    block runs, else every usable one."""
    return _budget[-1] if _budget else usable_cores()


def busy_cores(seconds: float = 0.3) -> float | None:
    """How many cores other work keeps busy now: the machine's non-idle CPU time over a
    short sample, in cores (this process sleeps meanwhile); None where /proc/stat is not."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
        return sum(ticks), ticks[3] + ticks[4]  # all, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    spent = total1 - total0
    return 0.0 if spent <= 0 else (spent - (idle1 - idle0)) / spent * (os.cpu_count() or 1)


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform
        return 0.0


def free_cores(usable: int | None = None, busy: float | None = None) -> int:
    """The usable cores less those other work keeps busy (a core counts from 0.7 busy), at
    least 1."""
    usable = usable_cores() if usable is None else usable
    if busy is None:
        busy = busy_cores()
        busy = load_average() if busy is None else busy
    return max(1, min(usable, usable - int(busy + 0.3)))


def chosen_threads(environ=os.environ) -> tuple[int, str]:
    """(threads, why): the count ``FTLENS_THREADS`` or ``OMP_NUM_THREADS`` sets, else the free cores."""
    for name in ("FTLENS_THREADS", "OMP_NUM_THREADS"):
        value = environ.get(name, "")
        if value:
            if not value.isdigit() or int(value) < 1:
                raise ValueError(f"{name}={value!r} must be a positive whole number of threads")
            return int(value), f"{name}={value}"
    usable, busy = usable_cores(), busy_cores()
    busy = load_average() if busy is None else busy
    return free_cores(usable, busy), f"{usable} cores, {busy:.1f} busy with other work"


@contextlib.contextmanager
def free_core_threads(log=None, threads: int | None = None):
    """torch's intra-op threads set to ``threads`` (default: ``chosen_threads()``) while the
    block runs, restored after; ``log`` gets one line saying how many and why."""
    import torch

    why = "--threads"
    if threads is None:
        threads, why = chosen_threads()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    if log is not None:
        log(f"using {threads} thread{'s' if threads > 1 else ''} ({why}; FTLENS_THREADS=N sets it)")
    _budget.append(threads)
    try:
        yield threads
    finally:
        _budget.pop()
        torch.set_num_threads(before)
