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


def core_enum(kind: str, name: str):
    """The core's enum member for one name of a closed set (``_C.Pairs``, ``View``, ``Rdm``,
    ``Compare``, ``CcaMethod``, ``Stream``, ``PairMap``, ``Reducer``): the names users pass
    cross into C++ as enums, checked here, not as strings checked again there."""
    members = getattr(_C, kind).__members__
    if name not in members:
        raise ValueError(f"unknown {kind} {name!r}: choose from {tuple(members)}")
    return members[name]


def moments_core(n_layers: int, p: int, q: int, pairs: str, views) -> MomentsCore:
    """A ``MomentsCore`` from the names of its pairs ("diagonal", "all") and views."""
    return MomentsCore(n_layers, p, q, core_enum("Pairs", pairs), [core_enum("View", v) for v in views])


def build_info() -> dict:
    """What the core was built with: C++ compiler, torch version, CUDA kernels in or not."""
    info = dict(_C.build_info())
    info["torch_runtime"] = torch.__version__
    info["cuda_available"] = torch.cuda.is_available()
    return info


__all__ = ["MomentsCore", "build_info", "check_torch", "core_enum", "moments_core"]
