"""The feature rows a probe reads from a store, chunk by chunk: plain rows, or pairs of
rows ([h_dep; h_head] for edge probes). Nothing holds a whole layer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

COMBINE = ("concat", "product")


@dataclass
class ProbeRows:
    """Rows of one store that a group of probes reads. ``first`` [n] are store rows;
    with ``second`` [n] each row is a pair with features [x_first; x_second] ("concat")
    or x_first * x_second ("product")."""

    store: object
    layers: list[int]
    first: np.ndarray
    second: np.ndarray | None = None
    combine: str = "concat"

    @property
    def n(self) -> int:
        return len(self.first)

    @property
    def dim(self) -> int:
        return self.store.dim * (2 if self.second is not None and self.combine == "concat" else 1)

    @property
    def inputs(self) -> np.ndarray:
        """[n] the input (sentence) each row belongs to."""
        return self.store.rows[self.first, 0]

    def chunks(self, chunk_rows: int, positions: np.ndarray | None = None,
               reuse: bool = False) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """Yields (positions [m] into these rows, features [L, m, dim] in the store's dtype,
        float16 or float32), in order; ``positions`` restricts and orders the rows read
        (a chunk of consecutive rows is read as one slice, the fastest). With ``reuse`` every
        chunk is read into the same buffer: each yielded tensor is overwritten by the next
        (for loops that consume a chunk at once; a fresh multi-megabyte array per chunk
        costs more in page faults than the read). The first pass over rows (ridge,
        prediction) checks them with ``check_finite``."""
        positions = np.arange(self.n) if positions is None else positions
        arrays = [self.store.layer(i) for i in self.layers]
        product = self.second is not None and self.combine == "product"
        dtype = np.result_type(arrays[0].dtype, np.float32) if product else arrays[0].dtype
        buffer = np.empty((len(arrays), min(chunk_rows, len(positions)), self.dim), dtype) if reuse else None
        d = self.store.dim
        for start in range(0, len(positions), chunk_rows):
            self.store.check_intact(self.layers)
            pos = positions[start : start + chunk_rows]
            out = buffer[:, : len(pos)] if reuse else np.empty((len(arrays), len(pos), self.dim), dtype)
            if self.second is None:
                _read(arrays, self.first[pos], out)
            elif self.combine == "concat":
                _read(arrays, self.first[pos], out[:, :, :d])
                _read(arrays, self.second[pos], out[:, :, d:])
            else:
                _read(arrays, self.first[pos], out)
                for layer, array in enumerate(arrays):
                    out[layer] *= array[self.second[pos]]
            yield pos, torch.from_numpy(out)


def _read(arrays: list[np.ndarray], rows: np.ndarray, out: np.ndarray) -> None:
    """Writes the given store rows of every layer into out [L, m, d] (one slice per layer
    when the rows are consecutive)."""
    consecutive = len(rows) and rows[-1] - rows[0] == len(rows) - 1 and np.all(np.diff(rows) == 1)
    for layer, array in enumerate(arrays):
        out[layer] = array[rows[0] : rows[-1] + 1] if consecutive else array[rows]


def check_finite(xs: torch.Tensor, rows: ProbeRows, pos: np.ndarray,
                 buffer: torch.Tensor | None = None) -> torch.Tensor:
    """xs [L, m, dim] as float32 (float64 stays), after checking that every value is finite;
    the error names the layer, the store row and its (input, word). A float32 ``buffer``
    receives the conversion (resized to fit; the result is overwritten by the next call)."""
    if xs.dtype != torch.float64 and buffer is not None:
        if buffer.numel() < xs.numel():
            buffer.resize_(xs.numel())
        xs = buffer[: xs.numel()].view(xs.shape).copy_(xs)
    elif xs.dtype != torch.float64:
        xs = xs.float()
    if bool(torch.isfinite(xs.sum(2)).all()):  # NaN and Inf reach the row sums
        return xs
    bad = ~torch.isfinite(xs)
    layer, m, _ = (int(v) for v in bad.nonzero()[0])
    store_row = int(rows.first[pos[m]])
    item, unit = rows.store.rows[store_row]
    name = rows.store.manifest["layers"][rows.layers[layer]]
    raise ValueError(f"layer {rows.layers[layer]} ({name}), store row {store_row} (input {item}, word "
                     f"{unit}) holds NaN or Inf; probes need finite activations. Rewrite the store "
                     "(float32 if float16 overflowed) or drop those inputs")


def word_row_lookup(store) -> callable:
    """A function (inputs [k], words [k]) -> store rows [k] (-1 where the store has none)."""
    index = store.rows
    width = int(index[:, 1].max()) + 2 if len(index) else 1
    keys = index[:, 0] * width + index[:, 1]
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]

    def lookup(inputs: np.ndarray, words: np.ndarray) -> np.ndarray:
        valid = (words >= 0) & (words < width - 1)
        wanted = inputs * width + np.where(valid, words, 0)
        at = np.clip(np.searchsorted(sorted_keys, wanted), 0, max(len(keys) - 1, 0))
        found = valid & (sorted_keys[at] == wanted) if len(keys) else np.zeros(len(inputs), bool)
        return np.where(found, order[at], -1)

    return lookup


def head_rows(store) -> np.ndarray:
    """[rows] the store row of each row's head word (-1 for the root and for heads the
    store lacks, e.g. words cut by truncation)."""
    heads, _ = store.labels("head")
    index = store.rows
    out = word_row_lookup(store)(index[:, 0], heads - 1)
    return np.where(heads > 0, out, -1)


def edge_rows(store, layers: list[int], combine: str) -> ProbeRows:
    """Gold (dependent, head) pairs of every non-root word whose head the store holds."""
    heads = head_rows(store)
    dependents = np.flatnonzero(heads >= 0)
    return ProbeRows(store, layers, dependents, heads[dependents], combine)


def arc_rows(store, layers: list[int], combine: str, seed: int) -> tuple[ProbeRows, np.ndarray]:
    """Arc detection pairs: every gold (dependent, head) pair (label 1) and, for each, one
    pair of the dependent with another word of its sentence that is not its head (label
    0), drawn with ``seed``. Returns (rows, labels [n])."""
    gold = edge_rows(store, layers, combine)
    index = store.rows
    lengths = np.bincount(index[:, 0])
    dep_input, dep_word = index[gold.first, 0], index[gold.first, 1]
    head_word = index[gold.second, 1]
    rng = np.random.default_rng(seed)
    n_words = lengths[dep_input]
    usable = n_words >= 3
    # a word other than the dependent and its head: draw from n - 2 slots and skip both
    draw = (rng.random(len(dep_word)) * np.maximum(n_words - 2, 1)).astype(np.int64)
    low, high = np.minimum(dep_word, head_word), np.maximum(dep_word, head_word)
    other = draw + (draw >= low) + ((draw + (draw >= low)) >= high)
    negative = word_row_lookup(store)(dep_input[usable], other[usable])
    keep = negative >= 0
    first = np.concatenate([gold.first, gold.first[usable][keep]])
    second = np.concatenate([gold.second, negative[keep]])
    labels = np.concatenate([np.ones(gold.n, np.int64), np.zeros(int(keep.sum()), np.int64)])
    order = np.argsort(first, kind="stable")
    return ProbeRows(store, layers, first[order], second[order], combine), labels[order]
