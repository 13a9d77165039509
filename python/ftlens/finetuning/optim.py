"""Adam with decoupled weight decay and optional bias correction: the original BERT
optimizer ran without it, which Zhang et al. (2021) found makes fine-tuning unstable.
torch's AdamW cannot turn it off."""

from __future__ import annotations

import torch


class Adam(torch.optim.Optimizer):
    """AdamW (Loshchilov & Hutter): p -= lr (m_hat / (sqrt(v_hat) + eps) + weight_decay p),
    with m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t) when ``bias_correction``,
    else m and v as they are (BERT's BertAdam)."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, bias_correction: bool = True):
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"invalid Adam settings: lr={lr}, betas={betas}, eps={eps}, "
                             f"weight_decay={weight_decay} (lr, eps, weight_decay >= 0; betas in [0, 1))")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      bias_correction=bias_correction))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.lerp_(p.grad, 1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                p.mul_(1 - group["lr"] * group["weight_decay"])
                if group["bias_correction"]:
                    t = state["step"]
                    step_size = group["lr"] / (1 - beta1**t)
                    denominator = (v / (1 - beta2**t)).sqrt_().add_(group["eps"])
                else:
                    step_size = group["lr"]
                    denominator = v.sqrt().add_(group["eps"])
                p.addcdiv_(m, denominator, value=-step_size)
        return loss
