"""torch's threads sized to the free cores: a fixed count from the environment, else the
usable cores less those other work keeps busy; restored after the block."""

import pytest
import torch
from ftlens._util import threads


@pytest.mark.parametrize(
    ("usable", "busy", "free"),
    [(2, 0.0, 2), (2, 0.5, 2), (2, 0.8, 1), (2, 1.0, 1), (2, 2.0, 1), (16, 3.9, 12), (4, 0.69, 4)],
)
def test_free_cores_are_the_usable_less_the_busy(usable, busy, free):
    assert threads.free_cores(usable, busy) == free


def test_the_environment_fixes_the_count():
    assert threads.chosen_threads({"FTLENS_THREADS": "3"}) == (3, "FTLENS_THREADS=3")
    assert threads.chosen_threads({"OMP_NUM_THREADS": "1"}) == (1, "OMP_NUM_THREADS=1")
    with pytest.raises(ValueError, match="FTLENS_THREADS='two' must be a positive whole number"):
        threads.chosen_threads({"FTLENS_THREADS": "two"})


def test_busy_cores_reads_a_short_sample():
    busy = threads.busy_cores(0.05)
    assert busy is None or 0.0 <= busy <= threads.usable_cores() + 1e-9


def test_threads_are_set_in_the_block_and_restored_after():
    before = torch.get_num_threads()
    lines = []
    with threads.free_core_threads(lines.append, threads=1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    assert lines == ["using 1 thread (--threads; FTLENS_THREADS=N sets it)"]


def test_the_budget_holds_while_the_block_runs():
    from ftlens.activations.overlap import cores_to_spare

    assert threads.core_budget() == threads.usable_cores()
    with threads.free_core_threads(threads=1):
        assert threads.core_budget() == 1
        assert not cores_to_spare()  # no worker thread beside torch's on the one free core
    assert threads.core_budget() == threads.usable_cores()
