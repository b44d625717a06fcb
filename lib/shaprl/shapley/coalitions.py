"""Bitmask encoding of coalitions and the weights that Shapley values put on them."""

from __future__ import annotations

from collections.abc import Sequence
from math import comb

import numpy as np

#: Largest number of players for which exact enumeration of all 2**n coalitions is attempted.
MAX_EXACT_PLAYERS = 24


def full_mask(n: int) -> int:
    """Bitmask of the grand coalition of ``n`` players."""
    return (1 << n) - 1


def n_players_of(values: np.ndarray) -> int:
    """Number of players of a game tabulated over all coalitions (rows = 2**n)."""
    rows = np.shape(values)[0]
    n = int(rows).bit_length() - 1
    if rows < 1 or (1 << n) != rows:
        raise ValueError(
            f"a game table needs one row per coalition, i.e. 2**n rows; got {rows} rows. "
            "Tabulate v(S) for every bitmask S = 0 .. 2**n - 1 (see shaprl.shapley.tabulate_game)."
        )
    return n


def check_exact_size(n: int) -> None:
    """Refuse exact enumeration when 2**n coalitions would not fit in a sensible budget."""
    if n > MAX_EXACT_PLAYERS:
        raise ValueError(
            f"exact Shapley values need all 2**{n} coalitions, more than the limit of "
            f"2**{MAX_EXACT_PLAYERS}. Estimate them instead: shaprl.shapley.permutation_shapley "
            "(antithetic permutation sampling) or shaprl.shapley.kernel_shapley with sampled "
            "coalitions."
        )


def coalition_sizes(n: int) -> np.ndarray:
    """|S| for every bitmask S in 0 .. 2**n - 1 (popcount), as int64."""
    sizes = np.zeros(1 << n, dtype=np.int64)
    for i in range(n):
        # Rows whose bit i is set are the second half of every block of 2**(i+1) rows.
        sizes.reshape(-1, 2, 1 << i)[:, 1, :] += 1
    return sizes


def marginal_weights(n: int) -> np.ndarray:
    """w(k) = k! (n-k-1)! / n!, the weight of coalitions of size k in the Shapley sum."""
    return np.array([1.0 / (n * comb(n - 1, k)) for k in range(n)])


def shapley_kernel_weights(n: int, sizes: np.ndarray | None = None) -> np.ndarray:
    """Shapley-kernel weight (n-1) / (C(n,|S|) |S| (n-|S|)) (FastSVERL Eq. 6).

    The empty and grand coalitions get weight ``inf``: kernel least squares pins them
    through the intercept and the efficiency constraint rather than through weights.
    """
    if sizes is None:
        sizes = coalition_sizes(n)
    sizes = np.asarray(sizes)
    out = np.full(sizes.shape, np.inf)
    inner = (sizes > 0) & (sizes < n)
    k = sizes[inner]
    out[inner] = (n - 1) / (np.array([comb(n, int(s)) for s in k]) * k * (n - k))
    return out


def mask_to_members(mask: int, n: int) -> list[int]:
    """Indices of the players in ``mask``."""
    return [i for i in range(n) if mask >> i & 1]


def coalition_label(mask: int, names: Sequence[str]) -> str:
    """Human-readable label of a coalition, e.g. ``{x, y}`` or ``∅``."""
    members = [names[i] for i in mask_to_members(mask, len(names))]
    return "{" + ", ".join(members) + "}" if members else "∅"
