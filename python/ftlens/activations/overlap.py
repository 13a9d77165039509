"""``consume_overlapped``: a consumer runs on a worker thread while the producer makes the
next item, so that accumulating one captured chunk hides behind the forward passes of the
next (the accumulator's C++ core and torch's kernels release the GIL); ``cores_to_spare``:
whether that can pay on this machine."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from .._util.threads import core_budget

T = TypeVar("T")


def cores_to_spare() -> bool:
    """Whether torch's intra-op threads leave this process a CPU core for a worker thread
    (of the cores it may use: all usable ones, or those ``free_core_threads`` found free).

    When they take every core, a worker's work cannot hide behind theirs, and its own
    OpenMP team makes GNU OpenMP stop spinning between parallel regions once the process
    has more OpenMP threads than cores: every region of the forward passes then waits for
    its threads to wake (on 2 cores, the forwards ran 7-20% slower with an idle team in
    another thread). Consuming in line costs no more there."""
    import torch

    return torch.get_num_threads() < core_budget()


def consume_overlapped(items: Iterable[T], consume: Callable[[T], object], *, overlap: bool = True) -> None:
    """Calls ``consume(item)`` for every item, in order, one at a time, each on a worker
    thread while the next item is produced (overlap=False: a plain loop). At most two
    items are alive at once: the one being consumed and the one being produced.

    An error in ``consume`` is raised here, before the next item is consumed; an error
    (or KeyboardInterrupt) while producing waits for the item in flight to be consumed
    whole, so a consumer never stops half-way through an item."""
    if not overlap:
        for item in items:
            consume(item)
        return
    with ThreadPoolExecutor(1, thread_name_prefix="ftlens-consume") as worker:
        pending: Future | None = None
        for item in items:
            if pending is not None:
                pending.result()
            pending = worker.submit(consume, item)
            del item  # the worker holds it until consumed
        if pending is not None:
            pending.result()
