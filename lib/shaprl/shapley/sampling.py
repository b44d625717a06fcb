"""Monte Carlo Shapley values by sampling permutations, with antithetic pairs.

Shapley values are the expected marginal contribution of each player when players join
in a uniformly random order. Pairing every order with its reverse (antithetic sampling)
cancels much of the variance for games that are close to additive.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ShapleyEstimate:
    """Sampled Shapley values with their Monte Carlo standard errors."""

    values: np.ndarray  #: (n, ...) estimated Shapley values
    stderr: np.ndarray  #: (n, ...) standard error of each estimate
    n_permutations: int  #: orders evaluated (an antithetic pair counts as two)
    n_evaluations: int  #: calls of v on single coalitions


def permutation_shapley(
    game: Callable[[np.ndarray], np.ndarray],
    n_players: int,
    n_permutations: int,
    *,
    seed: int,
    antithetic: bool = True,
    batch_size: int = 256,
) -> ShapleyEstimate:
    """Estimate Shapley values from random player orders.

    Parameters
    ----------
    game:
        Maps an int64 array of coalition bitmasks to an array of values ``(len, ...)``.
    n_players:
        Number of players ``n``.
    n_permutations:
        Number of orders to evaluate (rounded up to an even number when antithetic).
    seed:
        Seed of the random orders; the same seed gives the same estimate.
    antithetic:
        Evaluate each sampled order together with its reverse.
    batch_size:
        Orders evaluated per call of ``game``.
    """
    if n_players > 62:
        raise ValueError(
            f"{n_players} players do not fit int64 coalition bitmasks (at most 62); use "
            "permutation_shapley_along_orders, which never forms bitmasks"
        )
    return permutation_shapley_along_orders(
        lambda orders: _values_along(game, orders),
        n_players,
        n_permutations,
        seed=seed,
        antithetic=antithetic,
        batch_size=batch_size,
    )


def permutation_shapley_along_orders(
    chain: Callable[[np.ndarray], np.ndarray],
    n_players: int,
    n_permutations: int,
    *,
    seed: int,
    antithetic: bool = True,
    batch_size: int = 256,
) -> ShapleyEstimate:
    """:func:`permutation_shapley` for games evaluated along whole orders at once.

    ``chain(orders)`` maps a ``(k, n)`` array of player orders to the values ``(k, n + 1, ...)``
    of the nested coalitions along each order: column j is v({orders[:, 0..j-1]}), from the
    empty coalition (j = 0) to the grand coalition (j = n). Games whose coalitions share work
    along an order (a conditional expectation over ever fewer matching samples, say) are
    cheaper this way than coalition by coalition. Same orders and estimate as
    :func:`permutation_shapley` for the same seed.
    """
    if n_permutations < 2:
        raise ValueError("permutation_shapley needs n_permutations >= 2 to report a standard error")
    rng = np.random.default_rng(seed)
    n_draws = -(-n_permutations // 2) if antithetic else n_permutations
    samples = []
    for start in range(0, n_draws, batch_size):
        k = min(batch_size, n_draws - start)
        orders = np.argsort(rng.random((k, n_players)), axis=1)
        contrib = _contributions(chain, orders)
        if antithetic:
            contrib = 0.5 * (contrib + _contributions(chain, orders[:, ::-1]))
        samples.append(contrib)
    draws = np.concatenate(samples, axis=0)  # (draws, n, ...)
    mean = draws.mean(axis=0)
    stderr = draws.std(axis=0, ddof=1) / np.sqrt(len(draws))
    n_orders = len(draws) * (2 if antithetic else 1)
    return ShapleyEstimate(mean, stderr, n_orders, n_orders * (n_players + 1))


def _values_along(game, orders: np.ndarray) -> np.ndarray:
    """Values ``(k, n + 1, ...)`` of the bitmask game on the prefixes of each order."""
    k, n = orders.shape
    bits = np.left_shift(np.int64(1), orders.astype(np.int64))
    masks = np.concatenate([np.zeros((k, 1), np.int64), np.cumsum(bits, axis=1)], axis=1)
    vals = np.asarray(game(masks.reshape(-1)), dtype=float)
    return vals.reshape((k, n + 1) + vals.shape[1:])


def _contributions(chain, orders: np.ndarray) -> np.ndarray:
    """Marginal contribution of each player along each order: shape (orders, n, ...)."""
    k = len(orders)
    vals = np.asarray(chain(orders), dtype=float)
    steps = vals[:, 1:] - vals[:, :-1]  # contribution of orders[:, j]
    out = np.empty_like(steps)
    rows = np.arange(k)[:, None]
    out[rows, orders] = steps
    return out
