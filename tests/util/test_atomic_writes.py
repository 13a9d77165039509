"""A writer killed mid-write leaves the earlier file whole, and the next write of the same
file removes the temporary the killed writer left (a report's PNGs among them)."""

import os
import signal
import subprocess
import sys

from ftlens._util import files

WRITER = """
import sys, time
from ftlens._util import files
def slow(tmp):
    open(tmp, "wb").close()
    print("writing", flush=True)
    time.sleep(60)
files.atomic_write(sys.argv[1], slow)
"""


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "cka.png"
    target.write_bytes(b"earlier")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    left = [p.name for p in tmp_path.iterdir() if p.name != "cka.png"]
    assert len(left) == 1 and left[0].startswith(f".cka.png.{proc.pid}.")
    assert target.read_bytes() == b"earlier"
    busy = tmp_path / f".cka.png.{os.getpid()}.live.png"  # a running writer's temporary stays
    busy.write_bytes(b"")
    files.atomic_write(target, lambda tmp: open(tmp, "wb").write(b"new"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["cka.png", busy.name])
    assert target.read_bytes() == b"new"
