"""Loads the compiled core (``ftlens._C``) with a clear message when it is missing or was
built against another torch release than the one installed."""

from __future__ import annotations

import torch


def _release(version: str) -> tuple[str, ...]:
    return tuple(version.split("+")[0].split(".")[:2])


def check_torch(built: str, running: str) -> None:
    """Raises ImportError when the core was built against another torch release
    (major.minor) than the one running: its binary interface differs."""
    if _release(built) != _release(running):
        release = ".".join(_release(built))
        raise ImportError(
            f"ftlens' compiled core was built against torch {built}, but torch {running} is installed; a "
            "compiled torch extension runs only with the torch release it was built against. Either rebuild "
            "ftlens against this torch (`pip install --no-build-isolation --force-reinstall --no-deps "
            f"ftlens`, or `make install` in a source checkout) or install torch=={release}.*"
        )


try:
    from ._torch_build import TORCH as BUILT_TORCH
except ImportError:  # pragma: no cover - a build from before the version was recorded
    BUILT_TORCH = None
if BUILT_TORCH is not None:
    check_torch(BUILT_TORCH, torch.__version__)

try:
    from . import _C  # noqa: F401
except ImportError as err:  # pragma: no cover - only on a broken install
    raise ImportError(
        "ftlens' compiled core (ftlens._C) could not be imported: "
        f"{err}. Install torch first, then build ftlens against it with "
        "`pip install --no-build-isolation -e .` (or `make test`)."
    ) from err

from ._C import MomentsCore  # noqa: E402


def build_info() -> dict:
    """What the core was built with: C++ compiler, torch version, CUDA kernels in or not."""
    info = dict(_C.build_info())
    info["torch_runtime"] = torch.__version__
    info["cuda_available"] = torch.cuda.is_available()
    return info


__all__ = ["MomentsCore", "build_info", "check_torch"]
