"""Multinomial logistic probes of every layer and task at once, trained by a batched
L-BFGS over full passes of the store.

Each (layer, task) is its own problem: mean cross-entropy over its labelled rows plus
l2/2 |W|² on the raw (centered) features (scikit-learn's C = 1 / (l2 n)). The optimizer
works in whitened coordinates W = M V with M = (cov + l2 I)^(-1/2) from the ridge pass's
covariance: the penalty and the data term then have curvature near the identity together
(BERT features are strongly correlated and anisotropic, which slows L-BFGS on raw or
merely standardized features several-fold). M only re-parameterizes the problem: the
optimum is the raw problem's, and M costs two small [d, d] x [d, C] products per pass.
A pass computes the loss and gradient of every problem at its current trial point with
the fused core op; each problem then keeps its own L-BFGS history, step length
(backtracking Armijo line search) and convergence test, so a problem that converged or
backtracks does not hold the others back.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from .._core import _C
from .features import Rows
from .linear import LinearProbes

HISTORY = 8
ARMIJO = 1e-4
FTOL = 1e-7  # relative decrease at which a problem stops: about the resolution of float32 logits


@dataclass
class LogisticInfo:
    """passes: full passes over the rows; converged: [L, T] bool."""

    passes: int
    converged: np.ndarray


class _Problems:
    """Index helpers for problems (layer, task) whose columns lie side by side."""

    def __init__(self, offsets: torch.Tensor, layers: int):
        widths = (offsets[1:] - offsets[:-1]).tolist()
        self.column_task = torch.repeat_interleave(torch.arange(len(widths)), torch.tensor(widths))
        self.layers, self.tasks = layers, len(widths)

    def per_task(self, values: torch.Tensor, reduce: str = "sum") -> torch.Tensor:
        """[L, C] -> [L, T]."""
        index = self.column_task.expand_as(values)
        out = torch.zeros(self.layers, self.tasks, dtype=values.dtype)
        return out.scatter_reduce_(1, index, values, reduce, include_self=False)

    def spread(self, values: torch.Tensor) -> torch.Tensor:
        """[L, T] -> [L, 1, C] (broadcasts over a parameter block)."""
        return values[:, self.column_task].unsqueeze(1)

    def dot(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.per_task((a * b).sum(1))


@dataclass
class Whitening:
    """M = (cov + floor I)^(-1/2) per layer and its inverse, [L, d, d] float64."""

    forward: torch.Tensor
    inverse: torch.Tensor


def whitening(cov: torch.Tensor, l2: np.ndarray) -> Whitening:
    """The preconditioner of every layer from its covariance [L, d, d]; the floor is the
    layer's smallest l2 (of [L, T])."""
    floor = torch.as_tensor(np.asarray(l2, dtype=np.float64).min(1))
    eigenvalues, basis = torch.linalg.eigh(cov)
    spread = eigenvalues.clamp_min(0) + floor.unsqueeze(1)
    forward = basis @ torch.diag_embed(spread.rsqrt()) @ basis.transpose(1, 2)
    inverse = basis @ torch.diag_embed(spread.sqrt()) @ basis.transpose(1, 2)
    return Whitening(forward, inverse)


def fit_logistic(rows: Rows, labels: np.ndarray, probes: LinearProbes, l2: np.ndarray, whiten: Whitening,
                 *, positions=None, max_passes: int = 100, tol: float = 1e-5, ftol: float = FTOL,
                 chunk_rows: int = 8192,
                 device=None, progress: bool = True,
                 desc: str = "logistic") -> tuple[LinearProbes, LogisticInfo]:
    """Trains the probes (their w, b as the start; shift and scale fixed) on rows with
    labels [n, T] (-1: row not used for that task). l2: [L, T]. A problem stops when its
    gradient's largest entry is below ``tol``, or a step lowers its loss by less than
    ``ftol`` relative, or after ``max_passes`` passes."""
    offsets = probes.offsets
    problems = _Problems(offsets, probes.w.shape[0])
    positions = np.arange(rows.n) if positions is None else np.asarray(positions)
    labels_t = torch.from_numpy(np.ascontiguousarray(labels))
    counts = torch.from_numpy((labels[positions] >= 0).sum(0)).to(torch.float64)
    empty = counts == 0  # (tiny MDL blocks) such a task keeps its start
    counts = counts.clamp_min(1)
    per_column = counts[problems.column_task]  # [C]
    l2_columns = problems.spread(torch.as_tensor(l2, dtype=torch.float64))  # [L, 1, C]
    d = probes.w.shape[1]
    dev = torch.device("cpu") if device is None else torch.device(device)
    shift, scale, offsets_dev = probes.shift.to(dev), probes.scale.to(dev), offsets.to(dev)
    bar = tqdm(total=max_passes, unit="pass", desc=desc, disable=not progress)

    def evaluate(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w, b = whiten.forward @ theta[:, :d], theta[:, d]
        w_dev, b_dev = w.to(dev), b.to(dev)
        loss = torch.zeros(problems.layers, problems.tasks, dtype=torch.float64)
        grad = torch.zeros_like(theta)
        for pos, xs in rows.chunks(chunk_rows, positions):
            part_loss, grad_w, grad_b = _C.logistic_loss_grad(xs.to(dev), shift, scale, w_dev, b_dev,
                                                              labels_t[pos].to(dev), offsets_dev)
            loss += part_loss.cpu()
            grad[:, :d] += grad_w.cpu()
            grad[:, d] += grad_b.cpu()
        bar.update(1)
        value = loss / counts + 0.5 * torch.as_tensor(l2) * problems.per_task(w.square().sum(1))
        grad /= per_column
        grad[:, :d] = whiten.forward @ (grad[:, :d] + l2_columns * w)
        return value, grad

    theta = torch.cat([whiten.inverse @ probes.w.to(torch.float64), probes.b.unsqueeze(1)], 1)
    f, g = evaluate(theta)
    passes = 1
    history: deque = deque(maxlen=HISTORY)
    gamma = torch.ones(problems.layers, problems.tasks, dtype=torch.float64)
    direction = -g
    step = torch.clamp(1.0 / problems.per_task(g.abs().amax(1), "amax"), max=1.0)
    done = (problems.per_task(g.abs().amax(1), "amax") <= tol) | empty.unsqueeze(0)
    while passes < max_passes and not bool(done.all()):
        slope = problems.dot(g, direction)
        uphill = slope >= 0  # a lost direction: restart that problem from the gradient
        if uphill.any():
            direction = torch.where(problems.spread(uphill), -g, direction)
            slope = problems.dot(g, direction)
        moving = problems.spread(step * ~done)
        trial = theta + moving * direction
        f_new, g_new = evaluate(trial)
        passes += 1
        accepted = (f_new <= f + ARMIJO * step * slope) & ~done
        mask = problems.spread(accepted)
        s, y = (trial - theta) * mask, (g_new - g) * mask
        sy = problems.dot(s, y)
        curvature = accepted & (sy > 1e-12 * problems.dot(y, y).sqrt() * problems.dot(s, s).sqrt())
        history.append((s, y, torch.where(curvature, 1.0 / sy.clamp_min(1e-300), 0.0)))
        gamma = torch.where(curvature, sy / problems.dot(y, y).clamp_min(1e-300), gamma)
        decrease = (f - f_new) / torch.maximum(torch.maximum(f.abs(), f_new.abs()), torch.ones_like(f))
        theta = torch.where(mask, trial, theta)
        f = torch.where(accepted, f_new, f)
        g = torch.where(mask, g_new, g)
        gradient_small = problems.per_task(g.abs().amax(1), "amax") <= tol
        # backtrack the rest: the minimizer of the quadratic through f, slope and f_new, within
        # [0.1, 0.5] of the step
        quadratic = -slope * step.square() / (2 * (f_new - f - slope * step)).clamp_min(1e-300)
        shrunk = torch.clamp(quadratic, min=0.1 * step, max=0.5 * step)
        step = torch.where(accepted, torch.ones_like(step), torch.where(done, step, shrunk))
        stalled = ~accepted & (step < 1e-10)
        done = done | (accepted & ((decrease <= ftol) | gradient_small)) | stalled
        direction = torch.where(mask, -_two_loop(g, history, gamma, problems), direction)
    bar.close()
    w, b = (whiten.forward @ theta[:, :d]).contiguous(), theta[:, d].contiguous()
    trained = LinearProbes(probes.shift, probes.scale, w, b, offsets)
    return trained, LogisticInfo(passes, done.numpy())


def _two_loop(g: torch.Tensor, history, gamma: torch.Tensor, problems: _Problems) -> torch.Tensor:
    """H g by the L-BFGS two-loop recursion, each problem with its own history entries
    (entries with rho = 0 are skipped for that problem)."""
    q = g.clone()
    alphas = []
    for s, y, rho in reversed(history):
        alpha = rho * problems.dot(s, q)
        q -= problems.spread(alpha) * y
        alphas.append(alpha)
    r = problems.spread(gamma) * q
    for (s, y, rho), alpha in zip(history, reversed(alphas), strict=True):
        beta = rho * problems.dot(y, r)
        r += problems.spread(alpha - beta) * s
    return r
