"""Run folders: an activation store, a fine-tuning run, a study's output. Each records what
it holds; a folder that holds something else is refused (naming what differs), one that
holds the same work is resumed or reused by its owner, and one process works in it at a
time."""

from __future__ import annotations

import json
from pathlib import Path

from . import files

SHORT = 60  # values longer than this (fingerprints, option sets) are named, not shown


def refuse_other(path: Path, holds: str, recorded: dict, identity: dict, fix: str) -> None:
    """A ValueError when ``recorded`` (what the folder holds) differs from ``identity`` in
    any key: ``holds`` says what it is ("a store"), ``fix`` what to pass instead."""
    different = [k for k in identity if recorded.get(k) != identity[k]]
    if not different:
        return
    shown = [f"{k} {recorded.get(k)!r}, this one {identity[k]!r}" for k in different
             if len(repr(recorded.get(k))) + len(repr(identity[k])) <= SHORT]
    details = f" ({'; '.join(shown)})" if shown else ""
    raise ValueError(f"{path} holds {holds} with other settings ({different} differ){details}: {fix}, or "
                     "delete that folder to start over")


def claim(path: Path, marker: str, holds: str, identity: dict, fix: str) -> None:
    """Records ``identity`` in ``path/marker`` for a new folder; refuses one whose marker
    records another."""
    where = path / marker
    if where.exists():
        refuse_other(path, holds, json.loads(where.read_text(encoding="utf-8")), identity, fix)
    else:
        files.write_json(where, identity)


def one_worker(path: Path, doing: str, fix: str):
    """Held while this process works in ``path``: a second process is refused at once
    (``files.FolderBusy``), naming what the first is doing there."""
    return files.exclusive_lock(path, f"another process is {doing} in {path}; wait for it to finish (then "
                                      f"rerun to reuse its result), or {fix}")
