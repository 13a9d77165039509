"""``ProbeOptions``: how ``ftlens.probe`` trains and scores its probes, checked once, before
any store is read (the study checks its probe options with it before its first stage)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._util.options import option
from .._util.validation import finite_number, positive_int
from .features import COMBINE
from .ridge import DEFAULT_ALPHAS

KINDS = ("logistic", "ridge")


@dataclass(frozen=True)
class ProbeOptions:
    """Args:
        layers: layer indices to probe (default: all).
        kind: "logistic" (multinomial, L2; warm-started from the ridge fit) or "ridge".
        control: add a control task per word-level row task and report selectivity.
        mdl: also the online codelength (logistic probes, whatever ``kind``).
        l2: the logistic L2 strength (on the mean cross-entropy: scikit-learn's C = 1 / (l2
            n)), a number or [layers, tasks]; None chooses per (layer, task) from ``L2_GRID``
            on a tenth of the training inputs held out.
        alphas: ridge strengths, chosen per (layer, task) by exact ``folds``-fold CV
            (``kind="ridge"``; logistic probes start from one ridge fit without it).
        edge_features: "concat" ([h_dep; h_head]) or "product" (h_dep * h_head).
        rank, epochs: the structural probes' rank and training epochs.
        max_passes, tol: the logistic optimizer's budget of passes over the store and
            gradient tolerance.
        seed: folds, held-out rows, control labels and arc samples.
        device: where the logistic passes run ("cuda" uses the CUDA kernels).
        chunk_rows: rows read per chunk (bounds the memory).
    """

    layers: tuple[int, ...] | None = option(None, help="layer indices to probe (default: all)")
    kind: str = option("logistic", choices=KINDS, help="logistic (L2) or ridge probes")
    control: bool = option(True, help="control tasks and selectivity")
    mdl: bool = option(False, help="also the online codelength (MDL)")
    l2: float | tuple[float, ...] | None = option(None, help="logistic L2 strength (None: chosen on held-out "
                                                             "data)")
    alphas: tuple[float, ...] = option(DEFAULT_ALPHAS, help="ridge strengths, chosen by cross-validation")
    folds: int = option(5, help="ridge cross-validation folds")
    edge_features: str = option("concat", choices=COMBINE, help="features of a (dependent, head) pair")
    rank: int = option(64, help="the structural probes' rank")
    epochs: int = option(10, help="the structural probes' epochs")
    max_passes: int = option(100, help="the logistic optimizer's passes over the store")
    tol: float = option(1e-5, help="the logistic optimizer's gradient tolerance")
    seed: int = option(0, help="folds, held-out rows, control labels, arc samples")
    device: str | None = option(None, help='where the logistic passes run, e.g. "cuda"')
    chunk_rows: int = option(8192, help="rows read per chunk (bounds the memory)")

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.edge_features not in COMBINE:
            raise ValueError(f"edge_features must be one of {COMBINE}, got {self.edge_features!r}")
        for name in ("control", "mdl"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        for name in ("folds", "rank", "epochs", "max_passes", "chunk_rows"):
            positive_int(getattr(self, name), name)
        finite_number(self.seed, "seed", low=0, high=2**32 - 1, integer=True)
        finite_number(self.tol, "tol", low=0, low_open=True)
        for name in ("l2", "alphas") if self.l2 is not None else ("alphas",):
            values = getattr(self, name)
            try:
                array = np.asarray(values, dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be a positive number or an array of them, got {values!r}") \
                    from None
            if array.size == 0 or not np.all(np.isfinite(array)) or np.any(array <= 0):
                raise ValueError(f"{name} must hold finite positive numbers, got {values!r}")
        if self.layers is not None:
            for i in np.atleast_1d(np.asarray(self.layers, dtype=object)):
                finite_number(i, "layers (each a layer index)", low=0, integer=True)
        if self.device is not None and not isinstance(self.device, str):
            object.__setattr__(self, "device", str(self.device))
