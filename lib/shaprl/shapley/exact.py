"""Exact Shapley values by enumerating every coalition (Shapley, 1953; SVERL Eq. 1)."""

from __future__ import annotations

import numpy as np

from .coalitions import check_exact_size, coalition_sizes, marginal_weights, n_players_of


def exact_shapley(values: np.ndarray) -> np.ndarray:
    """Shapley values of a game tabulated on all ``2**n`` coalitions.

    Implements phi_i = sum_{S not containing i} w(|S|) [v(S + i) - v(S)] with
    w(k) = k!(n-k-1)!/n! (SVERL Eq. 1), rearranged so that each coalition's value is read once:
    phi_i = sum_{S containing i} a(|S|) v(S) - sum_S w(|S|) v(S), where a(k) = w(k-1) + w(k)
    and w(-1) = w(n) = 0. Cost O(n 2**n) per output, no extra tables.

    Parameters
    ----------
    values:
        Array of shape ``(2**n, ...)``; row ``mask`` is v of the coalition ``mask``.

    Returns
    -------
    Array of shape ``(n, ...)``: one Shapley value per player and trailing output.
    """
    values = np.asarray(values, dtype=float)
    n = n_players_of(values)
    check_exact_size(n)
    if n == 0:
        return np.zeros((0,) + values.shape[1:])
    trailing = values.shape[1:]
    flat = values.reshape(1 << n, -1)
    sizes = coalition_sizes(n)
    w = np.concatenate([[0.0], marginal_weights(n), [0.0]])  # w[k + 1] = w(k), k = -1..n
    alpha = w[sizes] + w[sizes + 1]  # a(|S|) = w(|S|-1) + w(|S|)
    beta = w[sizes + 1] @ flat  # sum_S w(|S|) v(S)
    weighted = alpha[:, None] * flat
    phi = np.empty((n, flat.shape[1]))
    for i in range(n):
        with_i = weighted.reshape(-1, 2, 1 << i, flat.shape[1])[:, 1]
        phi[i] = with_i.sum(axis=(0, 1)) - beta
    return phi.reshape((n,) + trailing)
