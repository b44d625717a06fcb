"""Exact Action Shapley (Eq. 1) from a game's full utility table.

.. math::

    \\phi_k = C_f \\sum_{d \\subseteq D \\setminus \\{k\\}}
        \\frac{U(d \\cup \\{k\\}) - U(d)}{\\binom{n-1}{|d|}}

with ``C_f = 1/n`` (then, without nulls, ``phi`` is the Shapley value and the values sum to
``U(D) - U(\\emptyset)``). A marginal term with a **null** utility on either side contributes
nothing (Algorithms 1 and 2, line 5): the pair is dropped, not counted as zero utility, so
efficiency no longer holds when nulls occur.

One pass over the ``2**n`` table values every point at once: for each bit ``k``, the subsets
without ``k`` are the masks with bit ``k`` clear, and their partners are ``mask | 1 << k``.
"""

from __future__ import annotations

from math import comb

import numpy as np

from .game import ValuationGame


def subset_sizes(n: int) -> np.ndarray:
    """Cardinality of every bitmask ``0 .. 2**n - 1``."""
    sizes = np.zeros(1 << n, dtype=np.int64)
    for k in range(n):
        sizes[1 << k : 1 << (k + 1)] = sizes[: 1 << k] + 1
    return sizes


def exact_action_shapley(game: ValuationGame, c_f: float | None = None) -> np.ndarray:
    """Eq. 1 for every player, null pairs dropped; ``c_f`` defaults to ``1/n``."""
    n = game.n_players
    table = game.table()
    c_f = 1.0 / n if c_f is None else float(c_f)
    sizes = subset_sizes(n)
    weight = 1.0 / np.array([comb(n - 1, s) for s in range(n)], dtype=float)
    masks = np.arange(1 << n)
    phi = np.zeros(n)
    for k in range(n):
        without = masks[(masks >> k) & 1 == 0]
        delta = table[without | (1 << k)] - table[without]
        keep = ~np.isnan(delta)
        phi[k] = c_f * np.sum(delta[keep] * weight[sizes[without[keep]]])
    return phi


def indispensable_points(game: ValuationGame) -> list[int]:
    """Points without which every subset is null ("ind." in Tables 1 and 3).

    Point ``k`` is indispensable when U(d) is null for every ``d`` not containing ``k`` while
    some subset containing it is not null.
    """
    n = game.n_players
    table = game.table()
    masks = np.arange(1 << n)
    out = []
    for k in range(n):
        has = (masks >> k) & 1 == 1
        if np.isnan(table[~has]).all() and not np.isnan(table[has]).all():
            out.append(k)
    return out
