"""Loads the compiled core (``ftlens._C``) with a clear message when it is missing."""

from __future__ import annotations

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
    import torch

    info = dict(_C.build_info())
    info["torch_runtime"] = torch.__version__
    info["cuda_available"] = torch.cuda.is_available()
    return info


__all__ = ["MomentsCore", "build_info"]
