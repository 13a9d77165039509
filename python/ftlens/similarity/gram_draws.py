"""CKA and RSA of many weighted merges of group moments at once, from Gram forms.

A draw w (how often each of G groups is taken) merges the groups' statistics about one
common shift: n = w.n, U = w.U (row sums about the shift), M = sum_g w_g M_g (raw
co-moments about it), and so on. CKA and RSA read the big [p, q] co-moment blocks only
through Frobenius norms, traces and bilinear forms with the means and partner sums, and
those of a weighted sum are polynomials in w:

    ||M - U V^T / n||^2 = w^T K w - 2 (U^T M V) / n + ||U||^2 ||V||^2 / n^2,
    K[g, h] = <M_g, M_h>,   U^T M V = sum_ghk w_g w_h w_k U_g^T M_h V_k,

so after a one-time pass over the groups ([G, G] Gram matrices, [G, G, G] and [G, G, p]
tensors per block) a draw costs O(G^2 p) instead of O(p q). The finalized statistics and
the measures follow the core's (csrc/measures.cpp: rebase to the mean, ``rdm_sums``,
``varies`` and the RDM floors) term by term; tests hold the two to 1e-10.
"""

from __future__ import annotations

import torch

from .registry import RDM_VIEW

MEASURES = ("cka", "cka_debiased", "rsa")  # what this path computes; others merge explicitly
NORM_TERMS = ("norm2_products", "x_by_partner_norm2", "y_by_partner_norm2")  # a block's RSA row-norm sums


def supports(name: str, options: dict) -> bool:
    return name in MEASURES


class _Side:
    """One layer of one stream over groups: row sums about the shift and norm sums."""

    def __init__(self, states: list[dict], prefix: str):
        first = states[0]
        self.shift = first[prefix + "shift"]
        n = torch.stack([s["n"].double().reshape(()) for s in states])
        self.u = torch.stack([s[prefix + "mean"] - self.shift for s in states]) * n[:, None]  # [G, d]
        self.norm2 = torch.stack([s[prefix + "norm2_sum"] for s in states])  # [G], about the shift


class _Block:
    """One co-moment block over groups, as the Gram forms its draws need."""

    def __init__(self, states: list[dict], prefix: str, a: _Side, b: _Side, own: bool):
        n = torch.stack([s[prefix + "n"].reshape(()) for s in states])
        self.u = torch.stack([s[prefix + "mean_a"] - a.shift for s in states]) * n[:, None]  # [G, p]
        self.v = torch.stack([s[prefix + "mean_b"] - b.shift for s in states]) * n[:, None]  # [G, q]
        centered = torch.stack([s[prefix + "S"] for s in states])
        m = centered + torch.einsum("gp,gq->gpq", self.u, self.v) / n[:, None, None]  # about the shifts
        flat = m.reshape(len(states), -1)
        self.gram = flat @ flat.T                                  # <M_g, M_h>
        self.mv = torch.einsum("hpq,kq->hkp", m, self.v)           # M_h V_k
        self.mtu = self.mv if own else torch.einsum("hpq,kp->hkq", m, self.u)  # M_h^T U_k
        self.umv = torch.einsum("gp,hkp->ghk", self.u, self.mv)    # U_g^T M_h V_k
        self.m_shift = m @ b.shift                                 # M_h c_b  [G, p]
        self.shift_m_shift = self.m_shift @ a.shift                # c_a^T M_h c_b  [G]
        self.trace = m.diagonal(dim1=1, dim2=2).sum(-1) if own else None
        self.norms = {k: torch.stack([s[prefix + k] for s in states]) for k in NORM_TERMS}
        self.a, self.b, self.own = a, b, own


class _Finalized:
    """A block's finalized statistics for every draw (about each draw's mean)."""

    def __init__(self, block: _Block, w: torch.Tensor, n: torch.Tensor):
        a, b = block.a, block.b
        u, v = w @ block.u, w @ block.v
        umv = torch.einsum("dg,dh,dk,ghk->d", w, w, w, block.umv)
        self.frob2 = (torch.einsum("dg,gh,dh->d", w, block.gram, w) - 2 * umv / n
                      + (u * u).sum(1) * (v * v).sum(1) / n**2)
        self.trace = None if block.trace is None else w @ block.trace - (u * v).sum(1) / n
        # sides: the means' offsets from the shifts and the norm sums about the shifts
        ua, ub = w @ a.u, w @ b.u
        s, t = ua / n[:, None], ub / n[:, None]
        self.mean_a, self.mean_b = a.shift + s, b.shift + t
        mt = torch.einsum("dh,dk,hkp->dp", w, w, block.mv) / n[:, None]      # M t, t = V / n
        mts = mt if block.own else torch.einsum("dh,dk,hkq->dq", w, w, block.mtu) / n[:, None]
        # bilinear forms of the finalized S = M - U V^T / n with the draw's means
        m_mean_b = w @ block.m_shift  # (sum_h w_h M_h c_b)
        mean_m_mean = (w @ block.shift_m_shift + (a.shift * mt).sum(1) + (s * m_mean_b).sum(1) + umv / n**2)
        self.quad = mean_m_mean - (self.mean_a * u).sum(1) * (v * self.mean_b).sum(1) / n
        # the row-norm terms moved from the shifts to the means (the core's rebase_block)
        norm_a, norm_b = w @ a.norm2, w @ b.norm2
        p, xb, ya = (w @ block.norms[k] for k in NORM_TERMS)
        ss, tt = (s * s).sum(1), (t * t).sum(1)
        su, tv = n * ss, n * tt
        self.norm2_products = (p - 2 * (t * ya).sum(1) + tt * norm_a - 2 * (s * xb).sum(1)
                               + 4 * (s * mt).sum(1) - 2 * tt * su + ss * norm_b - 2 * ss * tv + n * ss * tt)
        col = torch.Tensor.unsqueeze
        self.x_by_partner = (xb - 2 * mt + col(tt, 1) * ua - s * col(norm_b, 1) + 2 * s * col(tv, 1)
                             - col(n * tt, 1) * s)
        self.y_by_partner = (ya - 2 * mts + col(ss, 1) * ub - t * col(norm_a, 1) + 2 * t * col(su, 1)
                             - col(n * ss, 1) * t)
        # the sides' norm sums about the means (the core's rebase_side)
        self.norm_a = norm_a - (ua * ua).sum(1) / n
        self.norm_b = norm_b - (ub * ub).sum(1) / n


class GramDraws:
    """The statistics of one layer's view, over groups (rebased to common shifts), ready
    for any number of draws: ``measure(name, options, w)`` -> [draws]."""

    def __init__(self, states: list[dict], layer: int, eps: float):
        self.states, self.layer, self.eps = states, layer, eps
        self._views: dict[str, tuple] = {}
        self._n = torch.stack([s["n"].double().reshape(()) for s in states])

    def _view(self, view: str) -> tuple:
        if view not in self._views:
            states, l = self.states, self.layer
            x, y = _Side(states, f"{view}.x.{l}."), _Side(states, f"{view}.y.{l}.")
            self._views[view] = (_Block(states, f"{view}.xx.{l}.", x, x, True),
                                 _Block(states, f"{view}.yy.{l}.", y, y, True),
                                 _Block(states, f"{view}.xy.{l}.", x, y, False))
        return self._views[view]

    def measure(self, name: str, options: dict, w: torch.Tensor) -> torch.Tensor:
        n = w @ self._n
        if name in ("cka", "cka_debiased"):
            return self._cka(w, n, debiased=name == "cka_debiased")
        return self._rsa(w, n, options.get("rdm", "correlation"), options.get("compare", "pearson"))

    def _finalized(self, view: str, w: torch.Tensor, n: torch.Tensor) -> tuple[_Finalized, ...]:
        return tuple(_Finalized(block, w, n) for block in self._view(view))

    def _varies(self, own: _Finalized, mean: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        tol = 64 * self.eps
        return own.trace / n - tol * tol * ((mean * mean).sum(1) + own.trace / n) > 0

    def _cka(self, w, n, debiased: bool) -> torch.Tensor:
        xx, yy, xy = self._finalized("raw", w, n)
        ok = self._varies(xx, xx.mean_a, n) & self._varies(yy, yy.mean_a, n) & (n >= (4 if debiased else 2))
        hxy, hxx, hyy = xy.frob2, xx.frob2, yy.frob2
        if debiased:
            c1, c2 = n / (n - 2), 1.0 / ((n - 1) * (n - 2))
            a1, b1 = xx.norm_a, yy.norm_a
            hxy = hxy - c1 * xy.norm2_products + c2 * a1 * b1
            hxx = hxx - c1 * xx.norm2_products + c2 * a1 * a1
            hyy = hyy - c1 * yy.norm2_products + c2 * b1 * b1
            ok = ok & (hxx > 0) & (hyy > 0)
        return torch.where(ok, hxy / (hxx * hyy).sqrt(), torch.nan)

    def _rsa(self, w, n, rdm: str, compare: str) -> torch.Tensor:
        xx, yy, xy = self._finalized(RDM_VIEW[rdm], w, n)
        big_n = n * (n - 1)
        a1, b1, a2, b2 = xx.norm_a, yy.norm_a, xx.norm2_products, yy.norm2_products
        if rdm == "sqeuclidean":
            sx, sy = 2 * n * a1, 2 * n * b1
            sxx = 2 * n * a2 + 2 * a1 * a1 + 4 * xx.frob2
            syy = 2 * n * b2 + 2 * b1 * b1 + 4 * yy.frob2
            sxy = 2 * n * xy.norm2_products + 2 * a1 * b1 + 4 * xy.frob2
            offset_x = offset_y = torch.zeros_like(n)
        else:
            mx, my = xx.mean_a, yy.mean_a
            qxx, qyy, qxy = xx.quad, yy.quad, xy.quad
            sx, sy = -a1, -b1
            sxx = 2 * n * qxx + xx.frob2 - (4 * qxx + 4 * (mx * xx.x_by_partner).sum(1) + a2)
            syy = 2 * n * qyy + yy.frob2 - (4 * qyy + 4 * (my * yy.x_by_partner).sum(1) + b2)
            sxy = 2 * n * qxy + xy.frob2 - (4 * qxy + 2 * (mx * xy.x_by_partner).sum(1)
                                            + 2 * (my * xy.y_by_partner).sum(1) + xy.norm2_products)
            kappa, sigma = (0.0, 1.0) if rdm == "inner" else (1.0, -1.0)
            offset_x, offset_y = kappa + sigma * (mx * mx).sum(1), kappa + sigma * (my * my).sum(1)
            if rdm != "inner":
                sx, sy = -sx, -sy
        mean_x, mean_y = offset_x + sx / big_n, offset_y + sy / big_n
        cxx, cyy = sxx - sx * sx / big_n, syy - sy * sy / big_n
        cxy = sxy - sx * sy / big_n
        ok = (cxx - self._rdm_floor(rdm, xx, n, big_n) > 0) & (cyy - self._rdm_floor(rdm, yy, n, big_n) > 0)
        ok = ok & (n >= 3)
        if compare == "pearson":
            return torch.where(ok, cxy / (cxx * cyy).sqrt(), torch.nan)
        num = cxy + big_n * mean_x * mean_y
        den = ((cxx + big_n * mean_x * mean_x) * (cyy + big_n * mean_y * mean_y)).sqrt()
        return torch.where(ok, num / den, torch.nan)

    def _rdm_floor(self, rdm: str, own: _Finalized, n, big_n) -> torch.Tensor:
        """Below this, sum (D_ij - mean)^2 counts as a constant RDM (the core's floors)."""
        if rdm in ("cosine", "correlation"):
            return big_n * 1e-24
        tol = 64 * self.eps
        scale = (own.mean_a * own.mean_a).sum(1) + own.norm_a / n
        return big_n * (tol * scale) ** 2 if rdm == "inner" else big_n * (tol * tol * scale) ** 2
