"""The measure registry, data only: every measure by name, with what it needs (the row
views it reads), which options need the pair tiles, and how it reports undefined pairs. ``similarity``,
``LayerMoments``, ``compare_models`` (and the study and report after them) look measures up
here, so a new measure is one entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from .._core import core_enum
from .._util import validation

MOMENT_RDMS = ("inner", "cosine", "correlation", "sqeuclidean")
TILE_RDMS = (*MOMENT_RDMS, "euclidean")  # plain Euclidean distances need the tiles
KERNELS = ("linear", "cosine", "rbf")  # CKA's kernels; only the linear one streams
MOMENT_COMPARES = ("pearson", "cosine")  # how two RDMs are compared from moments
COMPARES = (*MOMENT_COMPARES, "spearman", "kendall")  # ranks need the tiles
RDM_VIEW = {"inner": "raw", "sqeuclidean": "raw", "cosine": "cosine", "correlation": "correlation"}
UNDEFINED = ("raise", "nan")


@dataclass(frozen=True)
class Measure:
    """One measure. ``compute(core, strict, **options)`` returns one value per compared pair
    ([P] float64); ``strict`` raises on a pair where the measure is undefined (a constant
    representation), else such pairs are NaN. ``views(**options)`` names the row views
    ("raw", "cosine", "correlation") it reads."""

    name: str
    summary: str
    compute: Callable[..., torch.Tensor]
    views: Callable[..., tuple[str, ...]] = lambda **options: ("raw",)
    kind: str = "similarity"  # "similarity" (1 = same) or "distance" (0 = same)
    # Options the moments cannot serve (an RBF kernel, Spearman's ranks) need the pair
    # tiles: ``tiles(**options)`` says whether they do (``similarity.functional`` routes).
    tiles: Callable[..., bool] = lambda **options: False


def svcca_k(k) -> int:
    """SVCCA's ``k`` for the core: None (choose by threshold) -> 0, else a positive int."""
    if k is None:
        return 0
    return validation.positive_int(k, "k (SVCCA's number of directions; None chooses by threshold)")


def _rdm_views(rdm: str = "correlation", **_) -> tuple[str, ...]:
    check_rdms([rdm])
    return (RDM_VIEW[rdm],)


def _cca(method: str):
    def compute(core, strict, k=None, threshold=0.99, **_):
        k = svcca_k(k) if method == "svcca" else 0
        return core.cca(core_enum("CcaMethod", method), k, float(threshold), strict)

    return compute


def _cka_tiles(kernel: str = "linear", sigma=None, **_) -> bool:
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}: choose from {KERNELS}")
    if sigma is not None and kernel != "rbf":
        raise ValueError(f"sigma is the RBF bandwidth; the {kernel} kernel takes none")
    return kernel != "linear"


def _rsa_tiles(rdm: str = "correlation", compare: str = "pearson", **_) -> bool:
    if rdm not in TILE_RDMS:
        raise ValueError(f"unknown rdm {rdm!r}: choose from {TILE_RDMS}")
    if compare not in COMPARES:
        raise ValueError(f"unknown compare {compare!r}: choose from {COMPARES}")
    return rdm not in MOMENT_RDMS or compare not in MOMENT_COMPARES


MEASURES: dict[str, Measure] = {m.name: m for m in (
    Measure("cka", "linear CKA (Kornblith et al. 2019)",
            lambda core, strict, **_: core.cka(False, strict), tiles=_cka_tiles),
    Measure("cka_debiased", "linear CKA from the unbiased HSIC (Song et al. 2012); n >= 4",
            lambda core, strict, **_: core.cka(True, strict), tiles=_cka_tiles),
    Measure("rsa", "Pearson or cosine comparison of two RDMs over all pairs i != j",
            lambda core, strict, rdm="correlation", compare="pearson", **_: core.rsa(
                core_enum("Rdm", rdm), core_enum("Compare", compare), strict),
            _rdm_views, tiles=_rsa_tiles),
    Measure("cca", "mean canonical correlation", _cca("mean")),
    Measure("svcca", "SVCCA (Raghu et al. 2017)", _cca("svcca")),
    Measure("pwcca", "projection-weighted CCA (Morcos et al. 2018)", _cca("pwcca")),
    Measure("procrustes", "orthogonal Procrustes distance, in [0, 2]",
            lambda core, strict, **_: core.procrustes(strict), kind="distance"),
)}


def get(name: str) -> Measure:
    """The measure called ``name``, or a ValueError listing the choices."""
    if name not in MEASURES:
        raise ValueError(f"unknown measure {name!r}: choose from {tuple(MEASURES)}")
    return MEASURES[name]


def check_streamable(name: str, options: dict) -> None:
    """Refuses options that only the pairwise tiles compute (they need every pair of rows)."""
    if get(name).tiles(**options):
        shown = ", ".join(f"{k}={v!r}" for k, v in options.items())
        raise ValueError(f"{name} with {shown} needs sample-by-sample kernels over every pair of rows, which "
                         "streaming moments cannot give; compute it with "
                         f"ftlens.{name.split('_')[0]}(X, Y, ...) on the activations (arrays, memmaps or "
                         "store layers)")


def strict(undefined: str) -> bool:
    """The core's ``strict`` flag for an ``undefined=`` policy ("raise" or "nan")."""
    if undefined not in UNDEFINED:
        raise ValueError(f"undefined must be one of {UNDEFINED}, got {undefined!r}")
    return undefined == "raise"


def check_rdms(rdms: Iterable[str]) -> None:
    unknown = [r for r in rdms if r not in MOMENT_RDMS]
    if unknown:
        raise ValueError(f"unknown rdm {unknown[0]!r}: expected one of {MOMENT_RDMS}")


def views_for(rdms: Iterable[str], need_raw: bool = True) -> list[str]:
    """The row views to accumulate for these RDM types (raw rows serve CKA, CCA, ...)."""
    rdms = [rdms] if isinstance(rdms, str) else list(rdms)
    check_rdms(rdms)
    needed = {RDM_VIEW[r] for r in rdms} | ({"raw"} if need_raw else set())
    return [v for v in ("raw", "cosine", "correlation") if v in needed]
