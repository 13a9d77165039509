"""The measure registry: every measure computed from moments, by name, with what it needs
(the row views it reads) and how it reports undefined pairs. ``similarity``,
``LayerMoments``, ``compare_models`` (and the study and report after them) look measures up
here, so a new measure is one entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from . import _inputs

RDMS = ("inner", "cosine", "correlation", "sqeuclidean")
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


def svcca_k(k) -> int:
    """SVCCA's ``k`` for the core: None (choose by threshold) -> 0, else a positive int."""
    if k is None:
        return 0
    return _inputs.positive_int(k, "k (SVCCA's number of directions; None chooses by threshold)")


def _rdm_views(rdm: str = "correlation", **_) -> tuple[str, ...]:
    check_rdms([rdm])
    return (RDM_VIEW[rdm],)


def _cca(method: str):
    def compute(core, strict, k=None, threshold=0.99, **_):
        return core.cca(method, svcca_k(k) if method == "svcca" else 0, float(threshold), strict)

    return compute


MEASURES: dict[str, Measure] = {m.name: m for m in (
    Measure("cka", "linear CKA (Kornblith et al. 2019)",
            lambda core, strict, **_: core.cka(False, strict)),
    Measure("cka_debiased", "linear CKA from the unbiased HSIC (Song et al. 2012); n >= 4",
            lambda core, strict, **_: core.cka(True, strict)),
    Measure("rsa", "Pearson or cosine comparison of two RDMs over all pairs i != j",
            lambda core, strict, rdm="correlation", compare="pearson", **_: core.rsa(rdm, compare, strict),
            _rdm_views),
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


def strict(undefined: str) -> bool:
    """The core's ``strict`` flag for an ``undefined=`` policy ("raise" or "nan")."""
    if undefined not in UNDEFINED:
        raise ValueError(f"undefined must be one of {UNDEFINED}, got {undefined!r}")
    return undefined == "raise"


def check_rdms(rdms: Iterable[str]) -> None:
    unknown = [r for r in rdms if r not in RDMS]
    if unknown:
        raise ValueError(f"unknown rdm {unknown[0]!r}: expected one of {RDMS}")


def views_for(rdms: Iterable[str], need_raw: bool = True) -> list[str]:
    """The row views to accumulate for these RDM types (raw rows serve CKA, CCA, ...)."""
    rdms = [rdms] if isinstance(rdms, str) else list(rdms)
    check_rdms(rdms)
    needed = {RDM_VIEW[r] for r in rdms} | ({"raw"} if need_raw else set())
    return [v for v in ("raw", "cosine", "correlation") if v in needed]
