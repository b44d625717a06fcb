"""Coalition sampling and masking for FastSVERL's models (paper Eqs. 4-6, 12-13).

Coalitions are boolean tensors ``(..., F)``: ``True`` = the feature is known.

* Characteristic models (Eqs. 12-13) may use any distribution with full support; like the
  authors' code we keep each feature independently with probability 1/2 (uniform over all
  ``2**F`` coalitions), one coalition per sample.
* Shapley models (Eqs. 10, 21, 23) draw from the Shapley-kernel distribution (Eq. 6)
      p(C) ∝ (F - 1) / (binom(F, |C|) |C| (F - |C|)),   0 < |C| < F,
  i.e. a size ``k`` with probability ∝ 1 / (k (F - k)), then a uniform subset of that size
  (FastSHAP's construction). The authors' code draws one coalition per batch and no paired
  (complementary) coalitions; both are options here.
* Unknown features are replaced by a mask value outside the state space: -2 by default
  (the authors' choice; Mastermind's empty cells are -1, App. H explains why a value close
  to the support trains better than a large one).
"""

from __future__ import annotations

import math

import numpy as np
import torch

MASK_VALUE = -2.0


def kernel_size_probabilities(n_features: int) -> np.ndarray:
    """P(|C| = k) for k = 0..F under the Shapley-kernel distribution (zero at 0 and F)."""
    if n_features < 2:
        raise ValueError(
            f"the Shapley kernel needs at least 2 features (0 < |C| < F); got F={n_features}"
        )
    k = np.arange(n_features + 1, dtype=float)
    with np.errstate(divide="ignore"):
        w = np.where((k > 0) & (k < n_features), 1.0 / (k * (n_features - k)), 0.0)
    return w / w.sum()


def kernel_coalition_probability(n_features: int, size: int) -> float:
    """Probability of one particular coalition of ``size`` features (Eq. 6, normalised)."""
    return float(kernel_size_probabilities(n_features)[size] / math.comb(n_features, size))


def uniform_coalitions(
    shape: tuple[int, ...], n_features: int, gen: torch.Generator
) -> torch.Tensor:
    """Coalitions keeping each feature independently with probability 1/2: ``(*shape, F)``."""
    return torch.rand(*shape, n_features, generator=gen) < 0.5


def kernel_coalitions(
    shape: tuple[int, ...], n_features: int, gen: torch.Generator, *, paired: bool = False
) -> torch.Tensor:
    """Coalitions from the Shapley-kernel distribution (Eq. 6): ``(*shape, F)`` booleans.

    ``paired=True`` replaces every second coalition along the last ``shape`` axis by the
    complement of the one before it (FastSHAP's paired sampling; that axis must be even).
    """
    probs = torch.as_tensor(kernel_size_probabilities(n_features), dtype=torch.float32)
    count = int(np.prod(shape)) if shape else 1
    sizes = torch.multinomial(probs, count, replacement=True, generator=gen).reshape(*shape, 1)
    ranks = torch.rand(*shape, n_features, generator=gen).argsort(dim=-1).argsort(dim=-1)
    coalitions = ranks < sizes
    if paired:
        if not shape or shape[-1] % 2:
            raise ValueError(
                "paired sampling needs an even number of coalitions along the last axis"
            )
        coalitions[..., 1::2, :] = ~coalitions[..., 0::2, :]
    return coalitions


def mask(x: torch.Tensor, coalitions: torch.Tensor, mask_value: float = MASK_VALUE) -> torch.Tensor:
    """Replace the features outside each coalition by ``mask_value`` (broadcasting)."""
    return torch.where(coalitions, x, torch.as_tensor(mask_value, dtype=x.dtype))


def coalition_bits(coalitions: torch.Tensor) -> torch.Tensor:
    """Integer code ``sum_i 2**i [i in C]`` of each coalition (the exact tables' row index)."""
    f = coalitions.shape[-1]
    return (coalitions.long() << torch.arange(f, device=coalitions.device)).sum(-1)


def all_coalitions(n_features: int) -> np.ndarray:
    """``(2**F, F)`` booleans; row ``c`` is the coalition with bit code ``c``."""
    codes = np.arange(1 << n_features, dtype=np.int64)
    return ((codes[:, None] >> np.arange(n_features)) & 1).astype(bool)
