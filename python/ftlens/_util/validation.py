"""Input validation and conversion: numpy arrays, memmaps or torch tensors -> row chunks.

Rows are samples. Half precision is upcast to float32; float64 stays float64, and a
float32/float64 mix is computed in float64. Large inputs (e.g. ``np.memmap``) are
converted one chunk of rows at a time, so memory stays flat.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch

DEFAULT_CHUNK_ROWS = 8192

_NUMPY_FLOATS = (np.float16, np.float32, np.float64)


def _kind(a, name: str):
    """Returns the array itself (numpy or torch), checking that it holds floats."""
    if isinstance(a, torch.Tensor):
        if a.is_meta:
            raise ValueError(f"{name} is a meta tensor (a shape without data, e.g. from a model loaded "
                             "with device='meta'); compute real activations first")
        if not a.is_floating_point():
            raise TypeError(
                f"{name} must hold floating-point values, got {a.dtype}; "
                f"convert it with {name}.float()"
            )
        return a.detach()
    if isinstance(a, np.ndarray):
        if a.dtype.kind == "f" and a.dtype.type not in _NUMPY_FLOATS:
            raise TypeError(f"{name} holds {a.dtype} ({a.dtype.itemsize * 8}-bit extended precision), which "
                            f"ftlens does not compute in; convert it with {name}.astype(np.float64)")
        if a.dtype.type not in _NUMPY_FLOATS:
            raise TypeError(
                f"{name} must hold floating-point values, got dtype {a.dtype}; "
                f"convert it with {name}.astype(np.float32)"
            )
        return a
    if isinstance(a, (list, tuple)):
        return _kind(np.asarray(a, dtype=np.float64), name)
    raise TypeError(
        f"{name} must be a numpy array or a torch tensor, got {type(a).__name__}"
    )


def _is_double(a) -> bool:
    if isinstance(a.dtype, torch.dtype):
        return a.dtype == torch.float64
    return a.dtype.type is np.float64  # either byte order


def compute_dtype(*arrays) -> torch.dtype:
    """float64 if any input is float64, else float32."""
    return torch.float64 if any(_is_double(a) for a in arrays if a is not None) else torch.float32


def _to_tensor(chunk, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(chunk, np.ndarray):
        if not chunk.dtype.isnative:  # big-endian data (e.g. from another machine's file)
            chunk = chunk.astype(chunk.dtype.newbyteorder("="))
        if not chunk.flags.writeable or not chunk.flags.c_contiguous:
            chunk = np.array(chunk)  # read-only memmaps: one chunk's copy
        chunk = torch.from_numpy(chunk)
    return chunk.to(dtype).contiguous()


def compute_tensors(x, y) -> tuple[torch.Tensor, torch.Tensor]:
    """x and y as tensors of their compute dtype, views of the inputs where they already are
    (any strides): for reading once, e.g. to copy them."""
    dtype = compute_dtype(x, y)

    def view(a) -> torch.Tensor:
        if isinstance(a, np.ndarray):
            if not (a.dtype.isnative and a.flags.writeable) or any(s < 0 for s in a.strides):
                return _to_tensor(a, dtype)
            a = torch.from_numpy(a)
        return a.to(dtype)

    return view(x), view(y)


def as_matrix(a, name: str):
    """Validates a 2-D [rows, features] input and returns it (numpy or torch)."""
    a = _kind(a, name)
    if a.ndim != 2:
        hint = (
            f"; a single feature column is {name}.reshape(-1, 1)"
            if a.ndim == 1
            else "; for a stack of layers [L, rows, dim] use ftlens.LayerMoments"
            if a.ndim == 3
            else ""
        )
        raise ValueError(f"{name} must be 2-D [rows, features], got shape {tuple(a.shape)}{hint}")
    if a.shape[1] == 0:
        raise ValueError(f"{name} has no features (shape {tuple(a.shape)})")
    return a


def as_stack(a, name: str, n_layers: int, dim: int):
    """Validates a layer stack [L, rows, dim]; a sequence of L [rows, dim] arrays is stacked."""
    if isinstance(a, Sequence) and not isinstance(a, (np.ndarray, torch.Tensor)):
        if len(a) == 0:
            raise ValueError(f"{name} is an empty sequence; expected {n_layers} layers")
        a = torch.stack([torch.as_tensor(_kind(part, f"{name}[{i}]")) for i, part in enumerate(a)])
    a = _kind(a, name)
    if a.ndim != 3:
        raise ValueError(
            f"{name} must be 3-D [layers, rows, dim], got shape {tuple(a.shape)}; "
            "for a single representation use ftlens.Moments"
        )
    if a.shape[0] != n_layers or a.shape[2] != dim:
        raise ValueError(
            f"{name} must be [{n_layers}, rows, {dim}] to match these moments, "
            f"got {tuple(a.shape)}"
        )
    return a


def positive_int(value, name: str) -> int:
    """``value`` as an int >= 1, or a ValueError naming ``name`` (2.5, 0, -3, "8" refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def finite_number(value, name: str, *, low: float | None = None, high: float | None = None,
                  low_open: bool = False, high_open: bool = False, integer: bool = False):
    """``value`` as a float (an int with ``integer``) in [low, high] (open ends where asked),
    or a ValueError naming ``name`` and the range: NaN, inf, True, "1e-4" and 2.5 for an
    integer are refused."""
    numeric = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    ok = not isinstance(value, bool) and isinstance(value, numeric) and math.isfinite(value)
    ok = ok and (low is None or (value > low if low_open else value >= low))
    ok = ok and (high is None or (value < high if high_open else value <= high))
    if not ok:
        left = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        right = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
        where = " and ".join(part for part in (left, right) if part)
        kind = "an integer" if integer else "a finite number"
        raise ValueError(f"{name} must be {kind}{' ' + where if where else ''}, got {value!r}")
    return int(value) if integer else float(value)


def check_same_rows(x, y, xname: str = "X", yname: str = "Y", axis: int = 0) -> None:
    if x.shape[axis] != y.shape[axis]:
        raise ValueError(
            f"{xname} and {yname} must have the same number of rows (one per sample), "
            f"got {x.shape[axis]} and {y.shape[axis]}"
        )


def row_chunks(
    x, y, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Yields aligned [L, rows, dim] tensor chunks of layer stacks x (and y, or None).

    Pass a 2-D input as ``x[None]`` (a view: memmaps stay on disk).
    """
    chunk_rows = positive_int(chunk_rows, "chunk_rows")
    dtype = compute_dtype(x, y)
    for start in range(0, x.shape[1], chunk_rows):
        stop = min(start + chunk_rows, x.shape[1])
        xc = _to_tensor(x[:, start:stop], dtype)
        yc = None if y is None else _to_tensor(y[:, start:stop], dtype)
        if yc is not None and yc.device != xc.device:
            raise ValueError(
                f"X and Y must be on the same device, got {xc.device} and {yc.device}"
            )
        yield xc, yc
