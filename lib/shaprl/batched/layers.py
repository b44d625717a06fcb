"""Stacked linear layers and MLPs: R independent networks evaluated in one ``baddbmm``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "identity": nn.Identity}


class BatchedLinear(nn.Module):
    """R independent affine maps: ``y[r] = x[r] @ W[r] + b[r]``.

    ``x`` has shape ``(R, B, in)`` (or ``(B, in)``, then shared by every member); the output
    is ``(R, B, out)``. ``weight`` is ``(R, in, out)``, ``bias`` is ``(R, 1, out)``.
    """

    def __init__(self, n_members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.n_members, self.in_features, self.out_features = n_members, in_features, out_features
        self.weight = nn.Parameter(torch.empty(n_members, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(n_members, 1, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.expand(self.n_members, *x.shape)
        if x.dim() != 3 or x.shape[0] != self.n_members or x.shape[-1] != self.in_features:
            raise ValueError(
                f"BatchedLinear expects inputs of shape ({self.n_members}, batch, "
                f"{self.in_features}) or (batch, {self.in_features}); got {tuple(x.shape)}"
            )
        return torch.baddbmm(self.bias, x, self.weight)

    @torch.no_grad()
    def load_member(self, r: int, layer: nn.Linear) -> None:
        """Copy an ``nn.Linear``'s weights into member ``r``."""
        self.weight[r].copy_(layer.weight.T)
        self.bias[r, 0].copy_(layer.bias)

    def member(self, r: int) -> nn.Linear:
        """Member ``r`` as a plain ``nn.Linear`` (a copy)."""
        layer = nn.Linear(self.in_features, self.out_features)
        with torch.no_grad():
            layer.weight.copy_(self.weight[r].T)
            layer.bias.copy_(self.bias[r, 0])
        return layer


class BatchedMLP(nn.Module):
    """R independent MLPs ``in -> hidden... -> out`` with the same architecture.

    Member ``r`` is initialised exactly like ``plain_mlp(...)`` under
    ``torch.manual_seed(seeds[r])``, so a batched group and single runs with the same seeds
    start from identical weights.
    """

    def __init__(
        self,
        seeds: Sequence[int],
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        *,
        activation: str = "relu",
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
            )
        if len(seeds) == 0:
            raise ValueError("BatchedMLP needs at least one member seed")
        self.seeds = [int(s) for s in seeds]
        self.sizes = [int(in_features), *map(int, hidden), int(out_features)]
        self.activation = activation
        r = len(self.seeds)
        self.layers = nn.ModuleList(
            BatchedLinear(r, a, b) for a, b in zip(self.sizes[:-1], self.sizes[1:], strict=True)
        )
        self.act = _ACTIVATIONS[activation]()
        for i, seed in enumerate(self.seeds):
            torch.manual_seed(seed)
            self.load_member(i, plain_mlp(self.sizes, activation))
        if device is not None:
            self.to(device)

    @property
    def n_members(self) -> int:
        return len(self.seeds)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.act(x)
        return x

    def load_member(self, r: int, mlp: nn.Sequential) -> None:
        """Copy a plain MLP (as built by :func:`plain_mlp`) into member ``r``."""
        linears = [m for m in mlp if isinstance(m, nn.Linear)]
        if len(linears) != len(self.layers):
            raise ValueError(f"expected {len(self.layers)} linear layers, got {len(linears)}")
        for layer, linear in zip(self.layers, linears, strict=True):
            layer.load_member(r, linear)

    def member(self, r: int) -> nn.Sequential:
        """Member ``r`` as a plain ``nn.Sequential`` (a copy), e.g. to deploy one run."""
        mods: list[nn.Module] = []
        for i, layer in enumerate(self.layers):
            mods.append(layer.member(r))
            if i < len(self.layers) - 1:
                mods.append(_ACTIVATIONS[self.activation]())
        return nn.Sequential(*mods).to(self.layers[0].weight.device)

    @classmethod
    def from_modules(cls, mlps: Sequence[nn.Sequential], *, activation: str = "relu") -> BatchedMLP:
        """Stack existing plain MLPs of one architecture into a batched group."""
        linears = [m for m in mlps[0] if isinstance(m, nn.Linear)]
        sizes = [linears[0].in_features] + [m.out_features for m in linears]
        out = cls(list(range(len(mlps))), sizes[0], sizes[1:-1], sizes[-1], activation=activation)
        for r, mlp in enumerate(mlps):
            out.load_member(r, mlp)
        return out


def plain_mlp(sizes: Sequence[int], activation: str = "relu") -> nn.Sequential:
    """The single-run network a :class:`BatchedMLP` member corresponds to."""
    mods: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        mods.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            mods.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*mods)
