"""Numerical checks of the four Shapley axioms (SVERL Sec. 2.2, Axioms 10-13 and analogues).

Each function returns the largest violation (0 up to round-off when the axiom holds), so a
notebook or a user can check an attribution method on their own games.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .coalitions import n_players_of

Attribution = Callable[[np.ndarray], np.ndarray]


def efficiency_gap(values: np.ndarray, phi: np.ndarray) -> float:
    """max |sum_i phi_i - (v(F) - v(∅))| (Efficiency)."""
    return float(np.max(np.abs(phi.sum(axis=0) - (values[-1] - values[0]))))


def swap_players(values: np.ndarray, i: int, j: int) -> np.ndarray:
    """The game with players i and j relabelled: v'(S) = v(S with i and j exchanged)."""
    masks = np.arange(len(values))
    bi, bj = (masks >> i) & 1, (masks >> j) & 1
    swapped = (masks & ~((1 << i) | (1 << j))) | (bi << j) | (bj << i)
    return values[swapped]


def symmetry_gap(values: np.ndarray, attribute: Attribution, i: int, j: int) -> float:
    """Make i and j interchangeable, then max |phi_i - phi_j| (Symmetry)."""
    symmetric = 0.5 * (values + swap_players(values, i, j))
    phi = attribute(symmetric)
    return float(np.max(np.abs(phi[i] - phi[j])))


def nullity_gap(values: np.ndarray, attribute: Attribution, i: int) -> float:
    """Make player i contribute nothing to any coalition, then max |phi_i| (Nullity)."""
    masks = np.arange(len(values))
    null = values[masks & ~(1 << i)]
    return float(np.max(np.abs(attribute(null)[i])))


def linearity_gap(
    v1: np.ndarray, v2: np.ndarray, attribute: Attribution, a: float = 0.3, b: float = 0.7
) -> float:
    """max |phi(a v1 + b v2) - a phi(v1) - b phi(v2)| (Linearity)."""
    return float(np.max(np.abs(attribute(a * v1 + b * v2) - a * attribute(v1) - b * attribute(v2))))


def axiom_report(values: np.ndarray, other: np.ndarray, attribute: Attribution) -> dict[str, float]:
    """All four gaps for one game (``other`` is a second game for linearity)."""
    n = n_players_of(values)
    return {
        "efficiency": efficiency_gap(values, attribute(values)),
        "symmetry": max(symmetry_gap(values, attribute, i, (i + 1) % n) for i in range(n)),
        "nullity": max(nullity_gap(values, attribute, i) for i in range(n)),
        "linearity": linearity_gap(values, other, attribute),
    }
