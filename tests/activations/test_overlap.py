"""consume_overlapped: order, one item at a time, errors from either side, nothing left half-done."""

import threading
import time

import pytest
from ftlens.activations.overlap import consume_overlapped


def test_items_are_consumed_in_order_one_at_a_time_off_the_producing_thread():
    seen, threads, busy = [], set(), threading.Lock()

    def consume(item):
        assert busy.acquire(blocking=False), "two items consumed at once"
        time.sleep(0.001)
        seen.append(item)
        threads.add(threading.get_ident())
        busy.release()

    consume_overlapped(iter(range(50)), consume)
    assert seen == list(range(50))
    assert threads and threading.get_ident() not in threads


def test_the_next_item_is_produced_while_one_is_consumed():
    resumed = [threading.Event() for _ in range(3)]  # the producer went on after item i
    overlapped = []

    def produce():
        for i in range(3):
            yield i
            resumed[i].set()

    def consume(item):  # a sequential loop would never see the producer resume here
        overlapped.append(resumed[item].wait(timeout=5))

    consume_overlapped(produce(), consume)
    assert overlapped == [True, True, True]


def test_a_consumer_error_stops_the_loop_at_the_next_item():
    produced = []

    def produce():
        for i in range(10):
            produced.append(i)
            yield i

    def consume(item):
        if item == 2:
            raise ValueError("bad chunk 2")

    with pytest.raises(ValueError, match="bad chunk 2"):
        consume_overlapped(produce(), consume)
    assert len(produced) <= 4  # item 3 may have been produced while 2 failed, no further


def test_a_producer_error_lets_the_item_in_flight_finish_whole():
    finished = []

    def produce():
        yield 0
        raise KeyboardInterrupt

    def consume(item):
        time.sleep(0.05)
        finished.append(item)

    with pytest.raises(KeyboardInterrupt):
        consume_overlapped(produce(), consume)
    assert finished == [0]


def test_no_items_is_fine():
    consume_overlapped(iter(()), lambda item: pytest.fail("nothing to consume"))
