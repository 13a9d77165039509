"""Permutation tests for every CKA and RSA measure: the rows of Y shuffled (seeded) break
the pairing of samples, and the p-value is the share of shuffles that score at least as
high as the real pairing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._util import validation
from . import registry
from .functional import measure as call


def _permuted(Y, order: np.ndarray):
    """Y's rows in a new order, gathered in memory (a memmap's rows are read once)."""
    if isinstance(Y, torch.Tensor):
        return Y[torch.as_tensor(order, device=Y.device)]
    return np.asarray(Y)[order]


@dataclass(frozen=True)
class Shuffles:
    """``count`` row orders: the successive permutations of numpy's generator seeded with ``seed``."""

    count: int
    seed: int

    def orders(self, n: int):
        rng = np.random.default_rng(self.seed)
        for _ in range(self.count):
            yield rng.permutation(n)


def permutation_test(
    X,
    Y,
    measure: str = "cka",
    permutations: int = 1000,
    seed: int = 0,
    *,
    undefined: str = "raise",
    memory_budget: int | None = None,
    progress: bool = True,
    **options,
) -> dict:
    """Tests whether X [n, p] and Y [n, q] are more similar than under unpaired rows.

    measure: a registered name ("cka", "cka_debiased", "rsa", "cca", ...) with its options
    (kernel="rbf", rdm="euclidean", compare="spearman", ...). Each of ``permutations``
    shuffles of Y's rows (numpy's generator, ``seed``) is scored like the real pairing;
    what does not depend on the order is computed once (the RBF bandwidths from the
    median). Returns a dict: ``value``, ``p_value`` = (1 + shuffles at least as extreme) /
    (1 + permutations), ``null`` [permutations], ``method``, ``seed``, ``reuse``.

    Over pair tiles, when every pair value fits ``memory_budget`` (three float64 copies),
    one extra pass holds them and each shuffle only re-indexes them (``reuse="held
    pairs"``): no tile is computed again. Otherwise each shuffle costs one pass of the
    measure (``reuse="bandwidths"`` or ``"none"``).
    """
    permutations = validation.positive_int(permutations, "permutations")
    entry = registry.get(measure)
    Y = validation.as_matrix(Y, "Y")
    shuffles = Shuffles(permutations, seed)
    observed = call(
        X,
        Y,
        measure,
        undefined=undefined,
        memory_budget=memory_budget,
        shuffles=shuffles,
        progress=progress,
        **options,
    )
    reuse = "held pairs"
    null = observed.get("null")
    if null is None:
        reuse = "none"
        if options.get("kernel") == "rbf" and options.get("sigma") is None:
            options["sigma"] = tuple(observed["sigma"])  # the bandwidths do not depend on the pairing
            reuse = "bandwidths"
        orders = shuffles.orders(Y.shape[0])
        if progress:
            from tqdm.auto import tqdm

            orders = tqdm(orders, total=permutations, desc=f"permutations ({measure})", unit="shuffle")
        null = np.array(
            [
                call(
                    X,
                    _permuted(Y, order),
                    measure,
                    undefined=undefined,
                    memory_budget=memory_budget,
                    **options,
                )["value"]
                for order in orders
            ]
        )
    value = observed["value"]
    extreme = null <= value if entry.kind == "distance" else null >= value
    return {
        "value": value,
        "p_value": (1 + int(extreme.sum())) / (1 + permutations),
        "null": null,
        "permutations": permutations,
        "seed": seed,
        "measure": measure,
        "method": observed["method"],
        "reuse": reuse,
        "alternative": "smaller" if entry.kind == "distance" else "greater",
    }
