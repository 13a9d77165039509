"""Normalizations of the [CLS] embedding before a classifier: the options ``cls_norm``
("layer", "batch", "l2") and IsoBN (Zhou et al. 2021, "IsoBN: Fine-Tuning BERT with
Isotropic Batch Normalization")."""

from __future__ import annotations

import math

import torch
from torch import nn

from .options import CLS_NORMS


class UnitLength(nn.Module):
    """x / ||x|| * sqrt(d): every [CLS] vector on one sphere, at LayerNorm's scale."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(x, dim=-1) * math.sqrt(x.shape[-1])


def cls_norm(kind: str | None, dim: int) -> nn.Module:
    """The module for ``cls_norm=kind``: None (identity), "layer" (LayerNorm with a learned
    scale and shift), "batch" (BatchNorm1d with running statistics) or "l2" (unit length
    times sqrt(d), no parameters)."""
    if kind is None:
        return nn.Identity()
    if kind == "layer":
        return nn.LayerNorm(dim)
    if kind == "batch":
        return nn.BatchNorm1d(dim)
    if kind == "l2":
        return UnitLength()
    raise ValueError(f"cls_norm must be None or one of {CLS_NORMS}, got {kind!r}")


class IsoBN(nn.Module):
    """Isotropic batch normalization of [CLS] vectors [batch, d].

    Running (exponential, ``momentum``) estimates of the covariance C and the standard
    deviations s give each dimension j the scale (gamma_j s_j + eps)^-beta, where gamma_j
    is dimension j's mean squared correlation with all dimensions: dimensions that
    dominate and move together with many others are shrunk, and the scales are then
    renormalized to keep the total variance. Nothing is learned; the statistics are
    buffers (saved with the model, broadcast by DDP), updated in training only."""

    def __init__(self, dim: int, momentum: float = 0.05, beta: float = 0.5, eps: float = 1e-3):
        super().__init__()
        self.momentum, self.beta, self.eps = momentum, beta, eps
        self.register_buffer("cov", torch.zeros(dim, dim))
        self.register_buffer("std", torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                values = x.detach().to(self.cov.dtype)
                centered = values - values.mean(0)
                self.cov.lerp_(centered.T @ centered / len(x), self.momentum)
                self.std.lerp_(centered.square().mean(0).sqrt(), self.momentum)
        return x * self.scale().to(x.dtype)

    @torch.no_grad()
    def scale(self) -> torch.Tensor:
        """The per-dimension scale [d] from the running statistics."""
        outer = torch.outer(self.std, self.std)
        corr = torch.where(outer > 0, self.cov / outer.clamp_min(torch.finfo(outer.dtype).tiny), 0.0)
        gamma = corr.clamp(-1, 1).square().mean(1)
        scale = (gamma * self.std + self.eps).pow(-self.beta)
        variance = self.cov.diagonal()
        return scale * torch.sqrt(variance.sum() / ((variance * scale.square()).sum() + self.eps))
