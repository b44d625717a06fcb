"""Algorithm 2 (per-cardinality Monte Carlo), corrected and as printed, and the hybrid.

Eq. 1 with ``m_i`` the mean of ``Delta(d) = U(d + k) - U(d)`` over the ``C(n-1, i)`` subsets
``d`` of ``D \\ {k}`` of size ``i``, null pairs counted as 0 (dropped from the sum), reads

.. math::

    \\phi_k = C_f \\sum_{i=0}^{n-1} m_i .

Sampling ``M`` subsets uniformly at each size and averaging gives the unbiased stratified
estimator ``C_f \\sum_i \\bar\\Delta_i`` (the **corrected** Algorithm 2, the default). Line 6 of
the printed algorithm divides each sample once more by ``C(n-1, i)`` although the uniform draw
already accounts for the ``C(n-1, i)`` subsets of the level, so its expectation is
``C_f \\sum_i m_i / C(n-1, i)`` (``variant="printed"``;
:func:`printed_algorithm2_expectation` gives it in closed form from the table). Null pairs
count as zero in the average over the ``M`` draws: they contribute nothing to Eq. 1's sum, so
dividing by the number of non-null draws instead would be biased.

Standard error: the levels are independent strata, so
``stderr^2 = C_f^2 \\sum_i s_i^2 / M_i`` (``s_i^2`` the sample variance of the level, times the
finite-population factor ``1 - M_i / C(n-1, i)`` when drawing without replacement; NaN with
fewer than two draws at a level unless the draws cover it).

The **hybrid** runs Algorithm 1 to find ``theta_k`` and then the corrected estimator on the
sizes where ``d + k`` has at least ``theta_k`` points (``|d| >= theta_k - 1``: ``theta_k`` is
"the minimum subset size required for non-null utility when training action k is included",
§2). It drops every level below, so it is unbiased only when those levels hold no non-null
pair. ``cutoff_level="exclude"`` reads the bound as ``|d| >= theta_k`` instead; every such
level was already enumerated by Algorithm 1, so that hybrid makes no new evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb
from typing import Literal

import numpy as np

from ..exact import subset_sizes
from ..game import ValuationGame
from .cutoff import _check_common, global_cutoff, run_algorithm1
from .result import ActionShapleyResult, UtilityRecorder

Variant = Literal["corrected", "printed"]
_MAX_POOL_PLAYERS = 21  # subsets of D \ {k} are enumerated per size up to this n


class _SubsetPool:
    """Uniform draws of a size-``i`` subset of ``D \\ {k}`` as ``n``-bit masks."""

    def __init__(self, n: int) -> None:
        if n > _MAX_POOL_PLAYERS:
            raise ValueError(
                f"Algorithm 2 enumerates subsets per size and supports n <= {_MAX_POOL_PLAYERS}; "
                f"got n = {n}"
            )
        self.n = n
        small = np.arange(1 << (n - 1), dtype=np.int64)
        sizes = subset_sizes(n - 1) if n > 1 else np.zeros(1, dtype=np.int64)
        order = np.argsort(sizes, kind="stable")
        bounds = np.searchsorted(sizes[order], np.arange(n + 1))
        self._by_size = [small[order[bounds[i] : bounds[i + 1]]] for i in range(n)]

    def draw(self, k: int, i: int, m: int, rng: np.random.Generator, replace: bool) -> np.ndarray:
        pool = self._by_size[i]
        if replace:
            picked = pool[rng.integers(pool.size, size=m)]
        else:
            picked = pool[rng.choice(pool.size, size=min(m, pool.size), replace=False)]
        low = picked & ((1 << k) - 1)  # insert a 0 at bit k: an (n-1)-bit mask over D \ {k}
        return low | ((picked >> k) << (k + 1))


def run_stratified(
    recorder: UtilityRecorder,
    sizes_per_point: Sequence[Sequence[int]],
    samples_per_size: int,
    *,
    rng: np.random.Generator,
    variant: Variant,
    replace: bool,
    c_f: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-cardinality estimator on an existing recorder: ``(values, stderr, counts)``."""
    n = recorder.n_players
    pool = _SubsetPool(n)
    draws = []  # (k, i, masks of d)
    for k in range(n):
        for i in sizes_per_point[k]:
            draws.append((k, i, pool.draw(k, i, samples_per_size, rng, replace)))
    if draws:
        without = np.concatenate([d for _, _, d in draws])
        with_k = np.concatenate([d | (1 << k) for k, _, d in draws])
        delta = recorder.utilities(with_k) - recorder.utilities(without)
    values, var, counts = np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64)
    start = 0
    for k, i, d in draws:
        x = np.nan_to_num(delta[start : start + d.size], nan=0.0)  # null pair -> 0 in Eq. 1
        start += d.size
        scale = c_f / comb(n - 1, i) if variant == "printed" else c_f
        values[k] += scale * x.mean()
        counts[k] += d.size
        fpc = 1.0 if replace else 1.0 - d.size / comb(n - 1, i)
        if fpc == 0.0:  # the whole level was enumerated: exact
            continue
        if d.size < 2:
            var[k] = np.nan
            continue
        var[k] += scale**2 * x.var(ddof=1) / d.size * fpc
    return values, np.sqrt(var), counts


def _check_variant(variant: str) -> None:
    if variant not in ("corrected", "printed"):
        raise ValueError(f"variant must be 'corrected' or 'printed', got {variant!r}")


def algorithm2(
    game: ValuationGame,
    samples_per_size: int,
    *,
    seed: int,
    variant: Variant = "corrected",
    replace: bool = True,
    c_f: float | None = None,
) -> ActionShapleyResult:
    """Algorithm 2: ``samples_per_size`` uniform subsets at every size ``0..n-1`` per point.

    ``variant="corrected"`` (default) is unbiased for Eq. 1; ``"printed"`` keeps line 6's
    extra division by ``C(n-1, i)``. ``replace=False`` draws distinct subsets per level (the
    level is then exact once ``samples_per_size >= C(n-1, i)``).
    """
    c_f = _check_common(game, c_f)
    _check_variant(variant)
    if samples_per_size < 1:
        raise ValueError(f"samples_per_size must be >= 1, got {samples_per_size}")
    n = game.n_players
    recorder = UtilityRecorder(game)
    values, stderr, counts = run_stratified(
        recorder,
        [range(n)] * n,
        samples_per_size,
        rng=np.random.default_rng(seed),
        variant=variant,
        replace=replace,
        c_f=c_f,
    )
    return ActionShapleyResult(
        method=f"algorithm 2 ({variant})",
        game="Action Shapley (null pairs dropped)",
        values=values,
        stderr=stderr,
        counts=counts,
        evaluations=recorder.evaluations,
        indispensable=recorder.observed_indispensable(),
        names=game.names,
        seed=seed,
        extra={"samples_per_size": samples_per_size, "replace": replace},
    )


def hybrid(
    game: ValuationGame,
    samples_per_size: int,
    *,
    seed: int,
    epsilon: int = 1,
    cutoff_level: Literal["include", "exclude"] = "include",
    replace: bool = True,
    c_f: float | None = None,
) -> ActionShapleyResult:
    """Algorithm 1 for ``theta_k``, then the corrected Algorithm 2 on sizes at or above it.

    With ``cutoff_level="include"`` (default) the sizes are ``|d| >= theta_k - 1``; with
    ``"exclude"``, ``|d| >= theta_k``. Utilities are shared between the two stages, so
    :attr:`~ActionShapleyResult.evaluations` counts each subset once.
    """
    c_f = _check_common(game, c_f)
    if cutoff_level not in ("include", "exclude"):
        raise ValueError(f"cutoff_level must be 'include' or 'exclude', got {cutoff_level!r}")
    n = game.n_players
    recorder = UtilityRecorder(game)
    _, theta = run_algorithm1(recorder, epsilon=epsilon, c_f=c_f)
    shift = 1 if cutoff_level == "include" else 0
    sizes = [range(max(int(t) - shift, 0), n) for t in theta]
    values, stderr, counts = run_stratified(
        recorder,
        sizes,
        samples_per_size,
        rng=np.random.default_rng(seed),
        variant="corrected",
        replace=replace,
        c_f=c_f,
    )
    theta_max, indispensable = global_cutoff(theta, n)
    return ActionShapleyResult(
        method="hybrid",
        game="Action Shapley (null pairs dropped)",
        values=values,
        stderr=stderr,
        counts=counts,
        evaluations=recorder.evaluations,
        indispensable=indispensable,
        names=game.names,
        theta=theta,
        global_theta=theta_max,
        seed=seed,
        extra={"samples_per_size": samples_per_size, "cutoff_level": cutoff_level},
    )


def printed_algorithm2_expectation(game: ValuationGame, c_f: float | None = None) -> np.ndarray:
    """Expectation of the printed Algorithm 2: ``C_f sum_i m_i / C(n-1, i)`` (full table)."""
    c_f = _check_common(game, c_f)
    n = game.n_players
    table = game.table()
    sizes = subset_sizes(n)
    masks = np.arange(1 << n, dtype=np.int64)
    binom = np.array([comb(n - 1, i) for i in range(n)], dtype=float)
    out = np.zeros(n)
    for k in range(n):
        without = masks[(masks >> k) & 1 == 0]
        x = np.nan_to_num(table[without | (1 << k)] - table[without], nan=0.0)
        level_means = np.bincount(sizes[without], weights=x, minlength=n) / binom
        out[k] = c_f * np.sum(level_means / binom)
    return out
