"""``GroupedMoments``: one ``LayerMoments`` per contiguous group of inputs, so that one
streaming pass gives every measure and its delete-a-group jackknife interval.

Inputs (sentences, not rows) are the resampled unit: input i of n belongs to group
i * G // n, so neighbouring inputs (often one document) stay together and the groups do
not depend on how the inputs were batched or sharded across ranks. Rows cost the same
GEMMs as with one accumulator (each row enters one group); the memory is G accumulators,
and the interval costs G leave-one-out merges and G + 1 evaluations of each measure.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import torch

from .._util.validation import positive_int
from . import moments as moments_module
from .intervals import jackknife
from .moments import LayerMoments


class GroupedMoments:
    """LayerMoments of X [L, n, p] and Y [L, n, q] kept per input group.

    Args:
        n_groups: G, the number of jackknife groups (at least 2, at most n_inputs).
        n_inputs: how many inputs will be streamed (the group of input i is i * G // n).
        *args, **kwargs: as for ``LayerMoments`` (n_layers, p, q, pairs, rdms, ...).
    """

    def __init__(self, n_groups: int, n_inputs: int, *args, **kwargs) -> None:
        self.n_groups = positive_int(n_groups, "n_groups (jackknife groups)")
        self.n_inputs = positive_int(n_inputs, "n_inputs")
        if self.n_groups > self.n_inputs:
            raise ValueError(
                f"n_groups={self.n_groups} is more than the number of inputs ({self.n_inputs}): "
                "pass fewer groups or more inputs"
            )
        self.groups = [LayerMoments(*args, **kwargs) for _ in range(self.n_groups)]

    @property
    def n(self) -> int:
        return sum(g.n for g in self.groups)

    @property
    def n_layers(self) -> int:
        return self.groups[0].n_layers

    def group_of(self, item) -> np.ndarray:
        """The group of each input index."""
        item = np.asarray(item, dtype=np.int64)
        if item.size and (item.min() < 0 or item.max() >= self.n_inputs):
            raise ValueError(f"input indices must lie in [0, {self.n_inputs}), got "
                             f"{item.min()}..{item.max()}: n_inputs counts every input, on every rank")
        return item * self.n_groups // self.n_inputs

    def update(self, xs, ys, item) -> GroupedMoments:
        """Adds rows. xs: [L, b, p], ys: [L, b, q] (torch), item: [b] input index of each row."""
        group = self.group_of(item)
        for g in np.unique(group):
            rows = np.flatnonzero(group == g)
            if len(rows) == len(group):
                self.groups[g].update(xs, ys)
            else:
                index = torch.from_numpy(rows).to(xs.device) if isinstance(xs, torch.Tensor) else rows
                self.groups[g].update(xs[:, index], ys[:, index])
        if sum(g.held_bytes for g in self.groups) > moments_module.HOLD_BYTES:  # one bound for all groups
            self.flush(release=True)
        return self

    def flush(self, release: bool = False) -> GroupedMoments:
        """Adds every group's held rows now (``LayerMoments.flush``). Flushing after each
        chunk makes each group's sums a function of the chunks alone, whichever process
        received them."""
        for g in self.groups:
            g.flush(release=release)
        return self

    def merged(self) -> LayerMoments:
        """The moments of every group, merged exactly."""
        out = self.groups[0].empty_like()
        for g in self.groups:
            out.merge(g)
        return out

    def leave_outs(self) -> Iterator[tuple[int, LayerMoments]]:
        """(g, the moments of every group but g) for each g, in O(G log G) merges and
        O(log G) accumulators: each half of a span of groups is left out in turn, the
        other half merged into the complement carried down."""

        def walk(lo: int, hi: int, complement: LayerMoments | None):
            if hi - lo == 1:
                yield lo, complement
                return
            mid = (lo + hi) // 2
            for keep, (a, b) in (((mid, hi), (lo, mid)), ((lo, mid), (mid, hi))):
                out = self.groups[0].empty_like()
                if complement is not None:
                    out.merge(complement)
                for g in range(*keep):
                    out.merge(self.groups[g])
                yield from walk(a, b, out)

        for g, group in enumerate(self.groups):
            if group.n == 0:
                raise ValueError(f"jackknife group {g} received no rows; use fewer groups")
        yield from walk(0, self.n_groups, None)

    def measures(self, requests: dict[str, dict], level: float | None = None) -> dict:
        """Each measure asked for ({name: options}) on all rows: {name: values}; with
        ``level``, {name: (values, low, high)} with the jackknife interval. Undefined pairs
        are NaN (and so are their bounds)."""
        full = self.merged()
        values = {name: self._measure(full, name, options, warn=True) for name, options in requests.items()}
        if level is None:
            return values
        del full
        leave_outs = {name: [None] * self.n_groups for name in requests}
        for g, moments in self.leave_outs():
            for name, options in requests.items():
                leave_outs[name][g] = self._measure(moments, name, options)
        return {name: (values[name], *jackknife(values[name], np.stack(leave_outs[name]), level))
                for name in requests}

    def _measure(self, moments: LayerMoments, name: str, options: dict, warn: bool = False) -> np.ndarray:
        """A measure, or all NaN (with a warning) where it cannot be computed on these rows,
        e.g. the debiased CKA on fewer than 4: the pass is done, so the others are kept."""
        try:
            return moments.measure(name, undefined="nan", **options)
        except ValueError as err:
            if warn:
                warnings.warn(f"{name} could not be computed: {err}", stacklevel=4)
            shape = (self.n_layers,) if moments.pairs == "diagonal" else (self.n_layers, self.n_layers)
            return np.full(shape, np.nan)

    def sync(self, group=None) -> GroupedMoments:
        """Combines every rank's rows, group by group (``LayerMoments.sync``): afterwards
        each rank holds all of them. Every rank must call it."""
        for moments in self.groups:
            moments.sync(group)
        return self

    def merge(self, other: GroupedMoments) -> GroupedMoments:
        """Adds another GroupedMoments' rows group by group (e.g. another rank's shard)."""
        if other.n_groups != self.n_groups or other.n_inputs != self.n_inputs:
            raise ValueError("can only merge GroupedMoments with the same n_groups and n_inputs")
        for mine, theirs in zip(self.groups, other.groups, strict=True):
            mine.merge(theirs)
        return self
