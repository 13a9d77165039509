"""Linear probes of every layer and task side by side, their predictions and scores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._core import _C
from .features import ProbeRows, check_finite


def offsets_of(widths) -> torch.Tensor:
    """[T + 1] column bounds of tasks with these class counts."""
    return torch.tensor(np.concatenate([[0], np.cumsum(widths)]), dtype=torch.int64)


@dataclass
class LinearProbes:
    """logits = ((x - shift) * scale) @ w + b for every layer at once; task t owns the
    columns [offsets[t], offsets[t+1]). shift, scale: [L, d]; w: [L, d, C]; b: [L, C]
    (float64)."""

    shift: torch.Tensor
    scale: torch.Tensor
    w: torch.Tensor
    b: torch.Tensor
    offsets: torch.Tensor

    def to(self, device) -> LinearProbes:
        return LinearProbes(*(t.to(device) for t in (self.shift, self.scale, self.w, self.b)), self.offsets)

    def predict(self, rows: ProbeRows, chunk_rows: int, device=None) -> np.ndarray:
        """Predicted classes [L, n, T] of every row."""
        probes = self.to(device) if device is not None else self
        out = np.empty((self.w.shape[0], rows.n, len(self.offsets) - 1), dtype=np.int64)
        scratch, converted = _C.Scratch(), torch.empty(0, dtype=torch.float32)
        for pos, xs in rows.chunks(chunk_rows, reuse=True):
            xs = check_finite(xs, rows, pos, converted)
            xs = xs.to(device) if device is not None else xs
            out[:, pos] = _C.linear_predict(xs, probes.shift, probes.scale, probes.w, probes.b,
                                            probes.offsets, scratch).cpu().numpy()
        return out


def scores(predicted: np.ndarray, gold: np.ndarray, widths) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(accuracy, macro-F1, rows) per (layer, task) from predictions [L, n, T] and gold
    labels [n, T] (-1: no label, skipped; an unseen label counts as wrong). Macro-F1
    averages over the classes that occur in the gold labels or the predictions."""
    layers, _, tasks = predicted.shape
    accuracy, macro_f1 = np.full((layers, tasks), np.nan), np.full((layers, tasks), np.nan)
    counted = np.zeros(tasks, dtype=np.int64)
    for t in range(tasks):
        keep = gold[:, t] != -1
        y = np.where(gold[keep, t] < 0, widths[t], gold[keep, t])  # unseen -> an extra class
        counted[t] = len(y)
        if not len(y):
            continue
        k = widths[t] + 1
        for layer in range(layers):
            confusion = np.bincount(y * k + predicted[layer, keep, t], minlength=k * k).reshape(k, k)
            hits = np.diag(confusion).astype(np.float64)
            accuracy[layer, t] = hits.sum() / len(y)
            true, said = confusion.sum(1), confusion.sum(0)
            present = (true + said) > 0
            f1 = 2 * hits[present] / (true[present] + said[present])
            macro_f1[layer, t] = f1.mean()
    return accuracy, macro_f1, counted


def input_counts(predicted: np.ndarray, gold: np.ndarray, inputs: np.ndarray,
                 n_inputs: int) -> tuple[np.ndarray, np.ndarray]:
    """(right [L, T, n_inputs], scored [T, n_inputs]): per eval input (sentence), the rows
    each layer's probe got right and the rows scored, from predictions [L, n, T], gold
    labels [n, T] (as ``scores``) and each row's input [n]. Accuracy on any multiset of
    inputs is sum(right) / sum(scored) over it: what a bootstrap over inputs resamples."""
    layers, _, tasks = predicted.shape
    right = np.zeros((layers, tasks, n_inputs))
    scored = np.zeros((tasks, n_inputs))
    for t in range(tasks):
        keep = gold[:, t] != -1
        at = inputs[keep]
        scored[t] = np.bincount(at, minlength=n_inputs)
        for layer in range(layers):
            right[layer, t] = np.bincount(at, weights=predicted[layer, keep, t] == gold[keep, t],
                                          minlength=n_inputs)
    return right, scored
