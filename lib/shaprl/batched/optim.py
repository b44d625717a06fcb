"""Adam over stacked members where only some members step: :class:`MemberAdam`.

A batched group whose members make different numbers of updates (FastSVERL's continual
explanation: one group holds the 1:1, 2:1, 10:1 and 50:1 models, and at sub-step k only the
members with ratio > k update) cannot use ``torch.optim.Adam``: a member with a zero gradient
would still move by its momentum and advance its bias correction. Here every member keeps its
own step count t_r and the Adam update (Kingma & Ba 2015, Alg. 1)

    m_r <- b1 m_r + (1 - b1) g_r,   v_r <- b2 v_r + (1 - b2) g_r^2,   t_r <- t_r + 1,
    theta_r <- theta_r - lr / (1 - b1^t_r) * m_r / (sqrt(v_r / (1 - b2^t_r)) + eps)

is applied to the active members only; inactive members' weights, moments and counts are left
exactly as they were. With every member active it is ``torch.optim.Adam`` (same arithmetic;
tested to float rounding).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class MemberAdam:
    """Adam on parameters whose leading axis is the member axis ``R``; ``step(active)``."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        n_members: int,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = list(params)
        bad = [tuple(p.shape) for p in self.params if p.ndim == 0 or p.shape[0] != n_members]
        if bad:
            raise ValueError(
                f"every parameter needs the member axis first (size {n_members}); got shapes {bad}"
            )
        self.lr, (self.b1, self.b2), self.eps = float(lr), betas, float(eps)
        device = self.params[0].device if self.params else None
        # per-member step counts live beside the parameters (a GPU run never mixes devices)
        self.steps = torch.zeros(n_members, dtype=torch.float64, device=device)
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, active: torch.Tensor | int) -> None:
        """One Adam step of the members where ``active`` (bool ``(R,)``) is true; an int ``n``
        steps the first ``n`` members (a prefix: slices instead of masks, cheaper)."""
        if isinstance(active, int):
            sl = slice(0, active)
            self.steps[sl] += 1.0
            on = None
        else:
            sl = slice(None)
            self.steps += active.double()
            on = active
        t = self.steps[sl].clamp_min(1.0)
        c1 = (self.lr / (1.0 - self.b1**t)).float()
        c2 = (1.0 - self.b2**t).sqrt().float()
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            if p.grad is None:
                continue
            shape = (-1,) + (1,) * (p.ndim - 1)
            g, pm, mm, vm = p.grad[sl], p.data[sl], m[sl], v[sl]
            new_m = mm.lerp(g, 1.0 - self.b1)
            new_v = vm * self.b2 + (1.0 - self.b2) * g * g
            upd = new_m / (new_v.sqrt() / c2.view(shape) + self.eps) * c1.view(shape)
            if on is not None:
                mask = on.view(shape)
                new_m, new_v = torch.where(mask, new_m, mm), torch.where(mask, new_v, vm)
                upd = torch.where(mask, upd, torch.zeros_like(upd))
            mm.copy_(new_m)
            vm.copy_(new_v)
            pm.sub_(upd)
