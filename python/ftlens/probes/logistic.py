"""Multinomial logistic probes of every layer and task at once: a few epochs of
preconditioned minibatch SGD, then a batched L-BFGS over full passes of the store.

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

Full-batch L-BFGS alone needs 20-40 passes here, mostly to grow the large weights of
memorizing tasks (control tasks, rare classes), where the softmax flattens the loss. An
epoch of minibatch steps moves every problem a hundred times per pass, so the hybrid
(Friedlander & Schmidt 2012: stochastic steps early, full gradients late) starts L-BFGS
near the optimum. On 100,000 EWT words (7 layers; UPOS, XPOS, their control tasks and edge
relation labels), 5 warm-up epochs and 6 passes came within 0.37 point of scikit-learn's
accuracy everywhere, 3 epochs and 12 passes within 0.45 in a fifth more time, 20 passes of
L-BFGS alone within 0.62 in twice the time: an epoch costs about 1.3 passes and does
more. The warm-up steps in the same whitened coordinates
(W -= lr M M grad, curvature at most about 1/2, so one step size fits every problem) and
averages the last epoch's iterates (Polyak-Ruppert); a problem whose warm-up loss rose
goes back to its start.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from .._core import _C
from .features import ProbeRows
from .linear import LinearProbes

HISTORY = 8
ARMIJO = 1e-4
FTOL = 1e-7  # relative decrease at which a problem stops: about the resolution of float32 logits
WARMUP_EPOCHS = 5
WARMUP_BATCH = 1024
WARMUP_LR = 2.0


@dataclass
class LogisticInfo:
    """passes: full passes over the rows after ``epochs`` warm-up epochs; converged: [L, T]
    bool."""

    passes: int
    converged: np.ndarray
    epochs: int = 0


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


def fit_logistic(rows: ProbeRows, labels: np.ndarray, probes: LinearProbes, l2: np.ndarray, whiten: Whitening,
                 *, positions=None, max_passes: int = 100, tol: float = 1e-5, ftol: float = FTOL,
                 warmup_epochs: int = WARMUP_EPOCHS, chunk_rows: int = 8192, seed: int = 0,
                 device=None, progress: bool = True, penalize_bias: bool = False,
                 desc: str = "logistic") -> tuple[LinearProbes, LogisticInfo]:
    """Trains the probes (their w, b as the start; shift and scale fixed) on rows with
    labels [n, T] (-1: row not used for that task). l2: [L, T]. ``warmup_epochs`` of
    minibatch steps (none on fewer than 4 minibatches of rows) precede L-BFGS; a problem
    stops when its gradient's largest entry is below ``tol``, or a step lowers its loss by
    less than ``ftol`` relative, or after ``max_passes`` passes. ``penalize_bias``: l2/2 |b|²
    as well, so that rows lacking a class still have a finite optimum (without it that
    class's bias runs to -inf and the result depends on where the optimizer stops)."""
    positions = np.arange(rows.n) if positions is None else np.asarray(positions)
    epochs = warmup_epochs if len(positions) >= 4 * WARMUP_BATCH else 0
    if epochs:
        probes = _warm_up(rows, labels, probes, l2, whiten, positions, epochs, chunk_rows, seed, device,
                          progress, desc, penalize_bias)
    offsets = probes.offsets
    problems = _Problems(offsets, probes.w.shape[0])
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
    scratch = _C.Scratch()

    def evaluate(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w, b = whiten.forward @ theta[:, :d], theta[:, d]
        w_dev, b_dev = w.to(dev), b.to(dev)
        loss = torch.zeros(problems.layers, problems.tasks, dtype=torch.float64)
        grad = torch.zeros_like(theta)
        for pos, xs in rows.chunks(chunk_rows, positions, reuse=True):
            part_loss, grad_w, grad_b = _C.logistic_loss_grad(xs.to(dev), shift, scale, w_dev, b_dev,
                                                              labels_t[pos].to(dev), offsets_dev, scratch)
            loss += part_loss.cpu()
            grad[:, :d] += grad_w.cpu()
            grad[:, d] += grad_b.cpu()
        bar.update(1)
        penalty = w.square().sum(1) + (b.square() if penalize_bias else 0.0)
        value = loss / counts + 0.5 * torch.as_tensor(l2) * problems.per_task(penalty)
        grad /= per_column
        grad[:, :d] = whiten.forward @ (grad[:, :d] + l2_columns * w)
        if penalize_bias:
            grad[:, d] += l2_columns[:, 0] * b
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
    return trained, LogisticInfo(passes, done.numpy(), epochs)


def _warm_up(rows: ProbeRows, labels: np.ndarray, probes: LinearProbes, l2: np.ndarray, whiten: Whitening,
             positions: np.ndarray, epochs: int, chunk_rows: int, seed: int, device, progress: bool,
             desc: str, penalize_bias: bool = False) -> LinearProbes:
    """``epochs`` of minibatch steps W -= lr M M (grad + l2 W), b -= lr grad_b on every
    problem at once (chunks in a seeded random order, minibatches shuffled within a chunk);
    returns the mean of the last epoch's iterates. A problem whose mean minibatch loss in
    the last epoch is not below the first minibatches' (or not finite) keeps its start."""
    problems = _Problems(probes.offsets, probes.w.shape[0])
    dev = torch.device("cpu") if device is None else torch.device(device)
    start = probes
    probes = probes.to(dev)
    w, b = probes.w.clone(), probes.b.clone()
    precondition = (whiten.forward @ whiten.forward).float().to(dev)
    l2_columns = problems.spread(torch.as_tensor(l2, dtype=torch.float64)).to(dev)
    column_task, offsets = problems.column_task.to(dev), probes.offsets.to(dev)
    labels_t = torch.from_numpy(np.ascontiguousarray(labels))
    rng = np.random.default_rng([seed, 11])
    blocks = [positions[i : i + chunk_rows] for i in range(0, len(positions), chunk_rows)]
    first, last = torch.zeros_like(l2_columns[:, 0]), torch.zeros_like(l2_columns[:, 0])  # [L, C]
    first_count = last_count = 0
    mean_w, mean_b = torch.zeros_like(w), torch.zeros_like(b)  # the last epoch's iterates, averaged
    scratch = _C.Scratch()
    with tqdm(total=epochs, unit="epoch", desc=f"{desc} warm-up", disable=not progress) as bar:
        for epoch in range(epochs):
            order = np.concatenate([blocks[i] for i in rng.permutation(len(blocks))])
            for pos, xs in rows.chunks(chunk_rows, order, reuse=True):
                xs, chunk_labels = xs.to(dev), labels_t[pos].to(dev)
                shuffle = torch.from_numpy(rng.permutation(len(pos))).to(dev)
                for batch in shuffle.split(WARMUP_BATCH):
                    batch_labels = chunk_labels[batch]
                    loss, grad_w, grad_b = _C.logistic_loss_grad(xs[:, batch], probes.shift, probes.scale,
                                                                 w, b, batch_labels, offsets, scratch)
                    count = (batch_labels >= 0).sum(0).clamp_min(1).to(torch.float64)  # [T]
                    mean_loss = (loss / count)[:, column_task]
                    if epoch == 0 and first_count < 8:
                        first, first_count = first + mean_loss, first_count + 1
                    per_column = count[column_task]
                    grad_w = (grad_w / per_column + l2_columns * w).float()
                    w -= WARMUP_LR * torch.bmm(precondition, grad_w).double()
                    b -= WARMUP_LR * (grad_b / per_column + (l2_columns[:, 0] * b if penalize_bias else 0.0))
                    if epoch == epochs - 1:
                        last, last_count = last + mean_loss, last_count + 1
                        mean_w += w
                        mean_b += b
            bar.update(1)
    worse = ~(last / max(last_count, 1) < first / max(first_count, 1))  # NaN counts as worse
    keep = problems.per_task(worse.cpu().to(torch.float64), "amax").bool()  # [L, T]
    mask = problems.spread(keep)  # [L, 1, C]
    w = torch.where(mask, start.w, mean_w.cpu() / last_count)
    b = torch.where(mask[:, 0], start.b, mean_b.cpu() / last_count)
    return LinearProbes(start.shift, start.scale, w.contiguous(), b.contiguous(), start.offsets)


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
