"""Algorithm 1 of the paper (Action Shapley Computation with a cut-off cardinality), as printed.

For each point ``k`` the algorithm walks the subsets ``d`` of ``D \\ {k}`` from the top
cardinality ``i = n - 1`` down, adding Eq. 1's term ``C_f (U(d + k) - U(d)) / C(n-1, i)`` for
every pair with no null side. It counts null pairs per cardinality (``mem``, reset at each
level); when ``mem`` reaches the error bound ``epsilon`` it stops and sets the cut-off
cardinality ``theta_k = i + 1`` (the smallest size of ``d + k`` whose whole level was
non-null). Details of the printed algorithm kept on purpose:

* the loop is ``while i > 1``: levels ``i = 1`` and ``i = 0`` are never visited, so even a
  game without nulls is valued with those terms missing (``theta_k`` then stays 1);
* the partial sum of the level where it stops is kept (the pairs met before the
  ``epsilon``-th null one), so the value depends on the order of the subsets inside a level
  (ascending bitmask by default; ``order_seed`` shuffles each level);
* ``U(d + k) = null or U(d) = null`` is evaluated left to right with short-circuit: when
  ``U(d + k)`` is null, ``U(d)`` is not asked for.

A point whose very first pair (``d = D \\ {k}``) is null gets ``theta_k = n``: without it the
remaining data fail, the paper's "indispensable" (ind.). The global cut-off cardinality is the
largest ``theta_k`` over the other points (with the indispensable ones included it would always
be ``n``); Eq. 2 turns it into ``Pcomp = 1 - 2**theta / 2**n``.
"""

from __future__ import annotations

from math import comb

import numpy as np

from ..exact import subset_sizes
from ..game import ValuationGame
from .result import ActionShapleyResult, UtilityRecorder


def _check_common(game: ValuationGame, c_f: float | None) -> float:
    if not isinstance(game, ValuationGame):
        raise TypeError(
            f"expected a ValuationGame (TableGame, FunctionGame, ...), got {type(game).__name__}"
        )
    return 1.0 / game.n_players if c_f is None else float(c_f)


def run_algorithm1(
    recorder: UtilityRecorder,
    *,
    epsilon: int = 1,
    c_f: float,
    order_seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Algorithm 1 for every point on an existing recorder; returns ``(values, theta)``."""
    if int(epsilon) != epsilon or epsilon < 1:
        raise ValueError(f"epsilon counts null pairs and must be an integer >= 1, got {epsilon}")
    epsilon = int(epsilon)
    n = recorder.n_players
    sizes = subset_sizes(n)
    masks = np.arange(1 << n, dtype=np.int64)
    rng = None if order_seed is None else np.random.default_rng(order_seed)
    values = np.zeros(n)
    theta = np.ones(n, dtype=np.int64)
    for k in range(n):
        without_k = masks[(masks >> k) & 1 == 0]
        level_sizes = sizes[without_k]
        total, i, stopped = 0.0, n - 1, False
        while i > 1 and not stopped:
            level = without_k[level_sizes == i]
            if rng is not None:
                level = rng.permutation(level)
            weight = c_f / comb(n - 1, i)
            mem = 0
            for d in level.tolist():
                u_with = recorder.utility(d | (1 << k))
                if u_with != u_with or (u_without := recorder.utility(d)) != u_without:  # NaN
                    mem += 1
                    if mem == epsilon:
                        theta[k], stopped = i + 1, True
                        break
                else:
                    total += weight * (u_with - u_without)
            i -= 1
        values[k] = total
    return values, theta


def global_cutoff(theta: np.ndarray, n: int) -> tuple[int, tuple[int, ...]]:
    """Global cut-off cardinality and Algorithm 1's indispensable points (``theta_k = n``)."""
    indispensable = tuple(int(k) for k in np.flatnonzero(theta == n))
    rest = theta[theta < n]
    return (int(rest.max()) if rest.size else n), indispensable


def algorithm1(
    game: ValuationGame,
    *,
    epsilon: int = 1,
    c_f: float | None = None,
    order_seed: int | None = None,
) -> ActionShapleyResult:
    """Algorithm 1 as printed, for every point; see the module docstring.

    Parameters
    ----------
    game:
        The valuation game (null utilities as NaN).
    epsilon:
        Error bound: null pairs tolerated per cardinality before stopping (the paper uses 1).
    c_f:
        Normalisation constant of Eq. 1; ``1/n`` by default.
    order_seed:
        ``None`` walks each level in ascending bitmask order; a seed shuffles each level.
    """
    c_f = _check_common(game, c_f)
    recorder = UtilityRecorder(game)
    values, theta = run_algorithm1(recorder, epsilon=epsilon, c_f=c_f, order_seed=order_seed)
    n = game.n_players
    theta_max, indispensable = global_cutoff(theta, n)
    return ActionShapleyResult(
        method="algorithm 1",
        game="Action Shapley (null pairs dropped)",
        values=values,
        stderr=np.full(n, np.nan),
        counts=np.zeros(n, dtype=np.int64),
        evaluations=recorder.evaluations,
        indispensable=indispensable,
        names=game.names,
        theta=theta,
        global_theta=theta_max,
        seed=order_seed,
        extra={"epsilon": epsilon},
    )
