"""The Trainer's checkpoint folders as a resume point: the newest *complete* one (a kill or
a full disk while ``checkpoint-N`` was written leaves it partial; such a folder is set
aside, not resumed from), and a full disk as one clear error."""

from __future__ import annotations

import errno
import json
import re
import shutil
import warnings
from pathlib import Path

import torch

from .._util.files import DiskFull

# What the Trainer writes into every checkpoint, trainer_state.json last
WEIGHTS = ("model.safetensors", "pytorch_model.bin")
REQUIRED = ("optimizer.pt", "scheduler.pt", "trainer_state.json")
SET_ASIDE = "incomplete-"  # does not match the Trainer's checkpoint-* glob


def _step(folder: Path) -> int:
    match = re.fullmatch(r"checkpoint-(\d+)", folder.name)
    return int(match.group(1)) if match else -1


def is_complete(folder: Path) -> bool:
    """Every file the Trainer writes is there and non-empty, and trainer_state.json (written
    last) parses with the folder's step."""
    files = [folder / name for name in REQUIRED]
    if not any((folder / name).is_file() and (folder / name).stat().st_size > 0 for name in WEIGHTS):
        return False
    if not all(f.is_file() and f.stat().st_size > 0 for f in files):
        return False
    try:
        state = json.loads((folder / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return state.get("global_step") == _step(folder)


def resume_point(checkpoints: Path, set_aside: bool = True) -> str | None:
    """The newest complete checkpoint under ``checkpoints`` (None: start over); partial
    ones are renamed ``incomplete-checkpoint-N`` with a warning (with ``set_aside``: by one
    process of a distributed run), so the Trainer neither resumes from nor rotates them."""
    if not checkpoints.is_dir():
        return None
    found = sorted((f for f in checkpoints.iterdir() if f.is_dir() and _step(f) >= 0), key=_step)
    complete = [f for f in found if is_complete(f)]
    for folder in found if set_aside else ():
        if folder not in complete:
            aside = folder.with_name(SET_ASIDE + folder.name)
            shutil.rmtree(aside, ignore_errors=True)
            folder.rename(aside)
            warnings.warn(f"{folder} is incomplete (interrupted while it was written); set aside as "
                          f"{aside.name} and resumed from "
                          f"{complete[-1].name if complete else 'the start'}; delete it to free its space",
                          stacklevel=3)
    return str(complete[-1]) if complete else None


def checkpoint_bytes(model: torch.nn.Module) -> int:
    """About what one checkpoint takes: the weights and Adam's two moments of the trained ones."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    trained = sum(p.numel() * 4 for p in model.parameters() if p.requires_grad)
    return weights + 2 * trained


def disk_full_error(err: OSError, folder: Path, model: torch.nn.Module, kept: int) -> DiskFull | None:
    """``err`` as one message naming the folder, the space free and the space needed (``kept``
    checkpoints and the final model), or None if it is not a full disk."""
    if err.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    one = checkpoint_bytes(model)
    free = shutil.disk_usage(folder if folder.exists() else folder.parent).free
    return DiskFull(err.errno, f"the disk holding {folder} is full ({free / 2**30:.2f} GiB free); this run "
                   f"needs about {(kept + 1) * one / 2**30:.2f} GiB ({kept} checkpoints of "
                   f"{one / 2**30:.2f} GiB and the final model): free space or pass "
                   "an out_dir on another disk, then rerun (it resumes from the last complete checkpoint)")
