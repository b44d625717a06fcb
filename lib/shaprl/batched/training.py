"""Losses and gradient clipping that keep the members of a batched group independent."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def per_member_loss(
    pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared error of each member over its own batch: ``(R, B, ...) -> (R,)``.

    Optimise ``per_member_loss(...).sum()``: the gradient of the sum with respect to member
    r's weights is the gradient of member r's own loss. ``weight`` (``(R, B)``), if given,
    weights each sample (e.g. importance weights) before averaging over the batch.
    """
    err = (pred - target).pow(2).flatten(2).sum(-1)  # (R, B): summed over output dims
    if weight is not None:
        err = err * weight
    return err.mean(-1)


@torch.no_grad()
def clip_grad_norm_per_member(
    parameters: Iterable[torch.nn.Parameter], max_norm: float, *, eps: float = 1e-6
) -> torch.Tensor:
    """Clip every member's gradient to norm ``max_norm`` by its own norm; return the norms.

    Each parameter's first dimension indexes members. A global clip (as
    ``torch.nn.utils.clip_grad_norm_``) would let one member's large gradient shrink every
    other member's step.
    """
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return torch.zeros(0)
    r = params[0].shape[0]
    sq = torch.zeros(r, device=params[0].grad.device, dtype=params[0].grad.dtype)
    for p in params:
        if p.shape[0] != r:
            raise ValueError("every parameter's first dimension must index the same members")
        sq += p.grad.pow(2).reshape(r, -1).sum(-1)
    norms = sq.sqrt()
    scale = (max_norm / (norms + eps)).clamp(max=1.0)
    for p in params:
        p.grad.mul_(scale.view(r, *([1] * (p.grad.dim() - 1))))
    return norms
