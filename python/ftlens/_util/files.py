"""Atomic file writes: a temporary file in the same folder, then a rename."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from glob import escape as glob_escape
from pathlib import Path

LOCK_FILE = ".lock"


class FolderBusy(RuntimeError):
    """Another process holds the folder's lock (a store being written, a study or a
    fine-tuning running there)."""


class DiskFull(OSError):
    """The disk is full; the message names the folder, the space needed and the space free."""


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Calls ``write(tmp_path)`` and renames the result onto ``path``; an interrupted
    write leaves any earlier file at ``path`` untouched. The temporary's name holds the
    writer's process id, so the next write of ``path`` removes what a killed writer left."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; the file gets the user's usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _remove_orphans(path: Path) -> None:
    """Deletes temporaries of ``path`` whose writer process no longer runs."""
    for tmp in path.parent.glob(f".{glob_escape(path.name)}.*"):
        pid = tmp.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            with contextlib.suppress(OSError):
                tmp.unlink()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, data) -> Path:
    def dump(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")

    return atomic_write(path, dump)


def check_writable(folder: str | os.PathLike) -> Path:
    """Creates ``folder`` and checks that files can be written into it, before any long
    computation; a ValueError says why not."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ValueError(f"cannot write results into {folder} ({err.strerror or err}); pass a writable "
                         "folder") from None
    return folder


@contextlib.contextmanager
def exclusive_lock(folder: str | os.PathLike, busy: str) -> Iterator[None]:
    """An exclusive lock on ``folder`` (its ``.lock`` file) while the block runs, released
    when the process dies; a second holder is refused at once with ``busy`` (what is going
    on there and what to do) as a ``FolderBusy`` error."""
    with open(Path(folder) / LOCK_FILE, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderBusy(busy) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def reserve(file: str | os.PathLike, what: str) -> None:
    """Gives ``file`` its disk blocks now (a memmap written into a sparse file on a full
    disk ends the process with a bus error); a full disk is an OSError naming the folder,
    the space needed and the space free (``what``: whose file it is, for the message)."""
    file = Path(file)
    size = file.stat().st_size
    fd = os.open(file, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        free = shutil.disk_usage(file.parent).free
        raise DiskFull(err.errno, f"the disk holding {file.parent} is full: {what} needs {size / 2**30:.2f} "
                      f"GiB more ({free / 2**30:.2f} GiB free); free space or write to another disk, then "
                      "rerun (finished work is kept)") from None
    finally:
        os.close(fd)
