"""Streaming moment accumulators: ``Moments`` (two representations) and ``LayerMoments``
(two stacks of layers). One pass over the rows gives every measure exactly.

They follow the torchmetrics protocol: ``update()``, the measure methods, ``merge()``
(exact: shards and ranks combine), ``reset()``, ``state_dict()`` / ``load_state_dict()``.
"""

from __future__ import annotations

import copy
import threading
import warnings
from collections.abc import Iterable

import numpy as np
import torch

from .._core import MomentsCore, core_enum, moments_core
from .._util import validation
from . import registry
from .registry import MOMENT_RDMS

PAIRS = ("diagonal", "all")
# Rows of small updates are held back and added as one chunk: each chunk costs a pass over the
# float64 totals (O(L p^2), ~10 ms at L=7, p=q=384), which 64-row updates would pay per call.
HOLD_BYTES = 128 * 2**20
CORE_ARGS = ("n_layers", "p", "q", "pairs", "views")  # the configuration keys, in MomentsCore's order


def _empty_core(config: dict) -> MomentsCore:
    """A core with no rows for a configuration as ``LayerMoments._config()`` writes it."""
    return moments_core(*(config[k] for k in CORE_ARGS))
CCA_METHODS = {"mean": "cca", "svcca": "svcca", "pwcca": "pwcca"}


def warn_undefined_spread(values: dict) -> None:
    """Warns where ``dim_std_max_over_median`` is NaN (half or more dimensions constant)."""
    bad = np.flatnonzero(np.isnan(np.atleast_1d(values["dim_std_max_over_median"])))
    if len(bad):
        warnings.warn(
            f"dim_std_max_over_median is NaN at layer(s) {bad.tolist()}: half or more of the "
            "dimensions are constant there (see n_constant_dims), so the median std is zero",
            stacklevel=3,
        )


class LayerMoments:
    """Moments of two layer stacks X [L, n, p] and Y [L, n, q], streamed in row chunks.

    pairs="diagonal" compares layer l of X with layer l of Y (results [L]); pairs="all"
    compares every layer of X with every layer of Y (results [L, L], X layers on rows).
    Each layer's own moments are kept once and shared by all of its pairs.

    Args:
        n_layers, p, q: stack depth and feature widths of X and Y.
        pairs: "diagonal" or "all".
        rdms: RDM types that ``rsa()`` will be asked for; "cosine" and "correlation" each
            cost one more set of GEMMs per chunk, so leave out those you do not need.
        chunk_rows: rows per internal chunk (bounds the temporary memory). Updates of fewer
            rows are held back (copied, at most ``chunk_rows`` rows and 128 MiB) and added as one
            chunk, so small batches cost per row what large ones do; reading any result, ``n``,
            ``merge``, ``sync`` or ``state_dict`` adds them first.
    """

    def __init__(
        self,
        n_layers: int,
        p: int,
        q: int,
        pairs: str = "diagonal",
        *,
        rdms: Iterable[str] = MOMENT_RDMS,
        chunk_rows: int = validation.DEFAULT_CHUNK_ROWS,
    ) -> None:
        if pairs not in PAIRS:
            raise ValueError(f"pairs must be one of {PAIRS}, got {pairs!r}")
        self.rdms = tuple([rdms] if isinstance(rdms, str) else rdms)
        self.chunk_rows = validation.positive_int(chunk_rows, "chunk_rows")
        positive = validation.positive_int
        self._raw = moments_core(positive(n_layers, "n_layers"), positive(p, "p"),
                                 positive(q, "q"), pairs, registry.views_for(self.rdms))
        self._start_holding()

    def _start_holding(self) -> None:
        self._held: tuple[torch.Tensor, torch.Tensor] | None = None  # rows of small updates, in order
        self._held_rows = 0
        self._lock = threading.RLock()  # threads may share an accumulator

    @property
    def _core(self) -> MomentsCore:
        """The statistics, with every held-back row added."""
        self.flush()
        return self._raw

    # -- configuration ---------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return self._raw.n_layers

    @property
    def p(self) -> int:
        return self._raw.p

    @property
    def q(self) -> int:
        return self._raw.q

    @property
    def pairs(self) -> str:
        return self._raw.pairs.name

    @property
    def n(self) -> int:
        """Rows accumulated so far."""
        with self._lock:
            return self._raw.n + self._held_rows

    def _config(self) -> dict:
        return {
            "n_layers": self.n_layers,
            "p": self.p,
            "q": self.q,
            "pairs": self.pairs,
            "views": [view.name for view in self._raw.views],
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_layers={self.n_layers}, p={self.p}, q={self.q}, "
            f"pairs={self.pairs!r}, rdms={self.rdms}, n={self.n})"
        )

    # -- streaming protocol ----------------------------------------------------------
    def update(self, xs, ys) -> LayerMoments:
        """Adds rows. xs: [L, b, p], ys: [L, b, q] (numpy, memmap, torch, or a sequence of
        L [b, dim] arrays such as selected rows of HF ``hidden_states``)."""
        xs = validation.as_stack(xs, "X", self.n_layers, self.p)
        ys = validation.as_stack(ys, "Y", self.n_layers, self.q)
        validation.check_same_rows(xs, ys, axis=1)
        self._feed(xs, ys)
        return self

    def _feed(self, xs, ys) -> None:
        row_bytes = xs.shape[0] * (xs.shape[2] + ys.shape[2]) * validation.compute_dtype(xs, ys).itemsize
        hold = min(self.chunk_rows, HOLD_BYTES // row_bytes)
        if xs.shape[1] >= hold:
            with self._lock:
                self.flush()
                self._add(xs, ys)
            return
        xs, ys = validation.compute_tensors(xs, ys)
        with self._lock:
            self._raw.check(xs, ys, self._held_rows)  # a bad row is refused now, by its place in the stream
            self._hold(xs, ys, hold)

    def _hold(self, xs: torch.Tensor, ys: torch.Tensor, hold: int) -> None:
        """Copies the rows of a small update after those held, adding the buffer to the
        statistics each time it holds ``hold`` rows (whole, so the core reads it in place)."""
        if self._held is not None and (self._held[0].dtype, self._held[0].device) != (xs.dtype, xs.device):
            self.flush(release=True)
        done, rows = 0, xs.shape[1]
        while done < rows:
            start = self._held_rows
            take = min(rows - done, hold - start)
            self._reserve(start + take, hold, xs, ys)
            self._held[0][:, start:start + take] = xs[:, done:done + take]
            self._held[1][:, start:start + take] = ys[:, done:done + take]
            self._held_rows, done = start + take, done + take
            if self._held_rows == hold:
                self.flush()

    def _reserve(self, rows: int, hold: int, xs: torch.Tensor, ys: torch.Tensor) -> None:
        """Grows the buffer (doubling, at most ``hold`` rows) to fit ``rows``."""
        if self._held is not None and self._held[0].shape[1] >= rows:
            return
        capacity = min(hold, max(2 * rows, 256))
        grown = tuple(a.new_empty((a.shape[0], capacity, a.shape[2])) for a in (xs, ys))
        if self._held is not None:
            for new, old in zip(grown, self._held, strict=True):
                new[:, :self._held_rows] = old[:, :self._held_rows]
        self._held = grown

    def _add(self, xs, ys) -> None:
        for xc, yc in validation.row_chunks(xs, ys, self.chunk_rows):
            self._raw.update(xc, yc)

    def flush(self, release: bool = False) -> None:
        """Adds the rows held back from small updates (every read does this itself).

        release: also free the buffer that held them (else it is reused)."""
        with self._lock:
            if self._held_rows:
                n = self._held_rows
                self._add(self._held[0][:, :n], self._held[1][:, :n])  # on an error the rows stay held
                self._held_rows = 0
            if release:
                self._held = None

    @property
    def held_bytes(self) -> int:
        """Memory of the buffer for rows of small updates."""
        return 0 if self._held is None else sum(a.nbytes for a in self._held)

    def merge(self, other: LayerMoments | dict) -> LayerMoments:
        """Adds another accumulator's rows (exact); shapes and options must match. ``other``
        may also be a ``state_dict()`` of such an accumulator (e.g. from another process)."""
        if isinstance(other, dict):
            other = self._from_state(other)
        if not isinstance(other, LayerMoments):
            name = type(self).__name__
            raise TypeError(f"can only merge {name} or its state dict, got {type(other).__name__}")
        if other is self:
            other = copy.deepcopy(other)
        self._core.merge(other._core)
        return self

    def sync(self, group=None) -> LayerMoments:
        """Combines the accumulators of every rank of a torch.distributed process group:
        afterwards each rank holds the statistics of all ranks' rows, merged exactly (each
        rank's state merged in rank order with Chan's rule, not a sum of raw sums).

        group: the process group (None: the default group). Every rank must call it."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError("sync() needs an initialized torch.distributed process group (see "
                               "torch.distributed.init_process_group); merge() combines accumulators in "
                               "one process")
        states = [None] * dist.get_world_size(group)
        dist.all_gather_object(states, self.state_dict(), group=group)
        self._raw.reset()
        for state in states:
            self.merge(state)
        return self

    def _from_state(self, state: dict) -> LayerMoments:
        other = self.empty_like()
        other.load_state_dict(state)
        return other

    def empty_like(self) -> LayerMoments:
        """An accumulator of the same configuration with no rows (``empty_like().merge(m)``
        copies ``m`` far faster than ``copy.deepcopy``, which goes through the state dict)."""
        other = object.__new__(type(self))  # not copy.copy: that would go through the state dict
        other.rdms, other.chunk_rows = self.rdms, self.chunk_rows
        other._raw = _empty_core(self._config())
        other._start_holding()
        return other

    def reset(self) -> None:
        """Forgets every row and releases the chunk-sized working buffers (to a pool of at
        most 256 MiB that the next accumulator reuses)."""
        with self._lock:
            self._held, self._held_rows = None, 0
            self._raw.reset()

    def state_dict(self) -> dict:
        """Configuration and float64 statistics (CPU tensors); ``torch.save``-able."""
        return {"config": self._config(), **self._core.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Loads what ``state_dict()`` gave, after checking that it is one: a mapping of
        float64 tensors with finite values and this accumulator's configuration."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be the dict state_dict() returns, got {type(state).__name__}")
        state = dict(state)
        config = state.pop("config", None)
        if config is not None and not isinstance(config, dict):
            raise ValueError(f"state dict's 'config' must be the dict state_dict() saved, got {config!r}: "
                             "the state dict is damaged")
        for key, value in state.items():
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"state dict entry {key!r} must be a tensor, got {type(value).__name__}: "
                                 "the state dict is damaged or not from these moments")
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                raise ValueError(f"state dict entry {key!r} holds NaN or Inf: the state dict is damaged "
                                 "(accumulated statistics are always finite)")
        if config is not None and config != self._config():
            diff = {k: (config.get(k), v) for k, v in self._config().items() if config.get(k) != v}
            raise ValueError(
                "state dict does not fit these moments: saved vs. here "
                + ", ".join(f"{k}={a!r} vs {b!r}" for k, (a, b) in diff.items())
                + ". Create the accumulator with the saved configuration first."
            )
        with self._lock:
            self._held_rows = 0
            self._raw.load_state_dict(state)

    # pickle and copy.deepcopy go through the state dict (the core is a C++ object)
    def __getstate__(self) -> dict:
        return {"rdms": self.rdms, "chunk_rows": self.chunk_rows, "state": self.state_dict()}

    def __setstate__(self, saved: dict) -> None:
        self.rdms, self.chunk_rows = saved["rdms"], saved["chunk_rows"]
        self._raw = _empty_core(saved["state"]["config"])
        self._start_holding()
        self.load_state_dict(saved["state"])

    # -- measures --------------------------------------------------------------------
    def _shape(self, values: torch.Tensor) -> np.ndarray:
        out = values.detach().cpu().numpy()
        return out.reshape(self.n_layers, self.n_layers) if self.pairs == "all" else out

    def measure(self, name: str, *, undefined: str = "raise", **options) -> np.ndarray:
        """Any registered measure by name (``ftlens.registry.MEASURES``), e.g.
        ``measure("rsa", rdm="cosine")``; the named methods below are shortcuts.

        undefined: "raise" (default) on a pair where a representation is constant, or
        "nan" to get NaN for such pairs (e.g. the [CLS] row of the embedding layer)."""
        if name == "rsa":
            rdm = options.get("rdm", "correlation")
            if rdm in MOMENT_RDMS and rdm not in self.rdms:
                raise ValueError(
                    f"rdm={rdm!r} was not requested when these moments were created "
                    f"(rdms={self.rdms}); create them with rdms including {rdm!r}"
                )
        registry.check_streamable(name, options)
        values = registry.get(name).compute(self._core, registry.strict(undefined), **options)
        return self._shape(values)

    def cka(self, debiased: bool = False, *, undefined: str = "raise") -> np.ndarray:
        """Linear CKA per pair; debiased uses the unbiased HSIC (needs n >= 4)."""
        return self.measure("cka_debiased" if debiased else "cka", undefined=undefined)

    def rsa(self, rdm: str = "correlation", compare: str = "pearson", *,
            undefined: str = "raise") -> np.ndarray:
        """Pearson or cosine comparison of the off-diagonal RDM entries per pair.

        rdm: "inner", "cosine" (1 - cosine similarity), "correlation" (1 - Pearson
        correlation of rows) or "sqeuclidean".
        """
        return self.measure("rsa", undefined=undefined, rdm=rdm, compare=compare)

    def cca(self, method: str = "mean", k: int | None = None, threshold: float = 0.99, *,
            undefined: str = "raise"):
        """CCA similarity per pair: "mean" canonical correlation, "svcca" (top ``k``
        principal directions, or those holding ``threshold`` of the variance), "pwcca"."""
        if method not in CCA_METHODS:
            raise ValueError(f"method must be 'mean', 'svcca' or 'pwcca', got {method!r}")
        return self.measure(CCA_METHODS[method], undefined=undefined, k=k, threshold=threshold)

    def procrustes(self, *, undefined: str = "raise") -> np.ndarray:
        """Orthogonal Procrustes distance per pair (0 = same up to rotation), in [0, 2]."""
        return self.measure("procrustes", undefined=undefined)

    def isotropy(self, which: str = "x", top_k: int = 10, *,
                 undefined: str = "raise") -> dict[str, np.ndarray]:
        """Isotropy diagnostics of X's (or Y's) layers; one value per layer per key (see
        ``ftlens.isotropy``). undefined="nan" gives NaN at constant layers (e.g. [CLS] at
        the embeddings) instead of raising."""
        top_k = validation.positive_int(top_k, "top_k")
        values = self._core.isotropy(core_enum("Stream", which), top_k, registry.strict(undefined))
        out = {key: v.cpu().numpy() for key, v in values.items()}
        warn_undefined_spread(out)
        out["top_k"] = np.full(self.n_layers, min(int(top_k), self.p if which == "x" else self.q))
        return out


class Moments(LayerMoments):
    """Moments of two representations X [n, p] and Y [n, q], streamed in row chunks: every
    moment measure of the pair from O(p² + q² + pq) memory, whatever n.

    ``update(X, Y)`` adds rows (numpy arrays or torch tensors, [b, p] and [b, q]); each
    chunk is centered at its own mean before its GEMMs and merged in float64 (Chan's rule),
    so large offsets such as BERT's dimensions with means in the tens keep their digits.
    The measures (``cka``, ``rsa``, ``cca``, ``procrustes``, ``isotropy``, or
    ``measure(name)``) return floats and can be read at any point; ``merge`` adds another
    accumulator's rows (chunks from other processes or files), ``sync()`` sums them across
    torch.distributed ranks, and ``state_dict`` / ``load_state_dict`` save and resume a
    stream. RSA reads the RDMs named in ``rdms``
    ("inner", "cosine", "correlation", "sqeuclidean"); leave out those you will not ask
    for, each costs one more set of GEMMs per chunk. Measures that need the n x n pair
    space (RBF CKA, Spearman or Kendall RSA) are not moments: see ``ftlens.cka`` and
    ``ftlens.rsa`` with their tile options.

    Args:
        p, q: the feature widths of X and Y.
        rdms: the RDMs ``rsa()`` will be asked for.
        chunk_rows: rows per internal chunk (bounds the temporary memory).

    Example::

        m = ftlens.Moments(768, 768)
        for xb, yb in batches:
            m.update(xb, yb)
        m.cka(), m.rsa(rdm="correlation"), m.n
    """

    def __init__(
        self,
        p: int,
        q: int,
        *,
        rdms: Iterable[str] = MOMENT_RDMS,
        chunk_rows: int = validation.DEFAULT_CHUNK_ROWS,
    ) -> None:
        super().__init__(1, p, q, "diagonal", rdms=rdms, chunk_rows=chunk_rows)

    def __repr__(self) -> str:
        return f"Moments(p={self.p}, q={self.q}, rdms={self.rdms}, n={self.n})"

    def update(self, X, Y) -> Moments:
        """Adds rows. X: [b, p], Y: [b, q]."""
        X = validation.as_matrix(X, "X")
        Y = validation.as_matrix(Y, "Y")
        validation.check_same_rows(X, Y)
        for a, name, d in ((X, "X", self.p), (Y, "Y", self.q)):
            if a.shape[1] != d:
                raise ValueError(
                    f"{name} has {a.shape[1]} columns, but these moments were created for {d}"
                )
        self._feed(X[None], Y[None])
        return self

    def _shape(self, values: torch.Tensor) -> float:
        return float(values.reshape(-1)[0])

    def isotropy(self, which: str = "x", top_k: int = 10, *, undefined: str = "raise") -> dict[str, float]:
        values = super().isotropy(which, top_k, undefined=undefined)
        out = {k: float(v[0]) for k, v in values.items()}
        out["n_constant_dims"], out["top_k"] = int(out["n_constant_dims"]), int(out["top_k"])
        return out
