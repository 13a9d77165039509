"""``consume_overlapped``: a consumer runs on a worker thread while the producer makes the
next item, so that accumulating one captured chunk hides behind the forward passes of the
next (the accumulator's C++ core and torch's kernels release the GIL)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


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
