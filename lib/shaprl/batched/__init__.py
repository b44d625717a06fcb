"""Many small models trained as one: the batched-training module shared by FastSVERL and
Action Shapley.

The papers' experiments are many seeded runs of the same tiny network (FastSVERL: 10-20 runs
of a characteristic or Shapley model; Action Shapley: one agent per training subset). Run one
at a time, each update is dominated by Python and kernel-launch overhead. Here R independent
members live in stacked weights of shape ``(R, ...)`` and one batched matrix product
(``torch.baddbmm``) evaluates all of them:

* member ``r`` sees only its own inputs ``x[r]`` and its own weights, so the gradient of the
  **sum** of per-member losses with respect to member ``r``'s weights is exactly the gradient of
  member ``r``'s loss (never average across members: that would scale each by 1/R);
* Adam and SGD are elementwise, so one optimiser over the stacked parameters is R independent
  optimisers;
* gradient clipping is the one coupling step: :func:`clip_grad_norm_per_member` clips each
  member by its own norm (``torch.nn.utils.clip_grad_norm_`` would use a global one);
* every member is initialised from its own seed, exactly as ``nn.Linear`` would be under
  ``torch.manual_seed(seed)`` (:meth:`BatchedMLP.from_modules` /
  :meth:`BatchedMLP.member` convert both ways, so batched and single runs can be compared).
"""

from __future__ import annotations

from .device import default_device, member_seeds
from .layers import BatchedLinear, BatchedMLP
from .training import clip_grad_norm_per_member, per_member_loss

__all__ = [
    "BatchedLinear",
    "BatchedMLP",
    "clip_grad_norm_per_member",
    "default_device",
    "member_seeds",
    "per_member_loss",
]
