"""Shapley values as a constrained weighted least-squares problem (FastSVERL Eq. 5-6).

The Shapley values are the unique minimiser of
    E_{C ~ p(C)} | v(C) - v(∅) - sum_{i in C} phi_i |^2   s.t.  sum_i phi_i = v(F) - v(∅),
with p(C) proportional to the Shapley kernel (n-1) / (C(n,|C|) |C| (n-|C|)). With every
coalition enumerated this reproduces exact Shapley values; with sampled coalitions it is
KernelSHAP.
"""

from __future__ import annotations

import numpy as np

from .coalitions import full_mask, n_players_of, shapley_kernel_weights


def _bits(masks: np.ndarray, n: int) -> np.ndarray:
    return ((masks[:, None] >> np.arange(n)) & 1).astype(float)


def kernel_shapley(
    values: np.ndarray,
    masks: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    *,
    n_players: int | None = None,
    empty_value: np.ndarray | None = None,
    full_value: np.ndarray | None = None,
) -> np.ndarray:
    """Solve the efficiency-constrained kernel least squares (FastSVERL Eq. 5).

    Parameters
    ----------
    values:
        Without ``masks``: a full game table of shape ``(2**n, ...)``. With ``masks``: the
        values v(C) of those coalitions, shape ``(len(masks), ...)``.
    masks:
        Coalitions (bitmasks) to fit on. ``None`` uses all ``2**n``.
    weights:
        Weight of each coalition in the least squares. ``None`` uses the Shapley kernel
        (Eq. 6), the right choice for enumerated coalitions; coalitions sampled *from* the
        kernel distribution should pass ones.
    n_players, empty_value, full_value:
        Needed with ``masks``: the number of players and v(∅), v(F) that anchor the
        intercept and the efficiency constraint.

    Returns
    -------
    Array ``(n, ...)`` of Shapley values (or estimates, when coalitions are sampled).
    """
    values = np.asarray(values, dtype=float)
    if masks is None:
        n = n_players_of(values)
        masks = np.arange(1 << n, dtype=np.int64)
        empty_value, full_value = values[0], values[full_mask(n)]
    else:
        if n_players is None or empty_value is None or full_value is None:
            raise ValueError(
                "kernel_shapley on a subset of coalitions needs n_players, empty_value "
                "(v of the empty coalition) and full_value (v of all players)."
            )
        n = n_players
        masks = np.asarray(masks, dtype=np.int64)
    trailing = values.shape[1:]
    y = values.reshape(len(masks), -1) - np.asarray(empty_value, dtype=float).reshape(1, -1)
    total = (np.asarray(full_value, float) - np.asarray(empty_value, float)).reshape(-1)
    if n == 1:  # no coalition strictly between empty and full: efficiency decides
        return total.reshape((1,) + trailing)
    if weights is None:
        sizes = ((masks[:, None] >> np.arange(n)) & 1).sum(axis=1)
        weights = shapley_kernel_weights(n, sizes)
    weights = np.asarray(weights, dtype=float)
    keep = np.isfinite(weights) & (weights > 0)
    z = _bits(masks[keep], n)
    zw = z * weights[keep, None]
    gram = zw.T @ z  # A = sum_C k(C) z_C z_C^T
    rhs = zw.T @ y[keep]  # b = sum_C k(C) z_C (v(C) - v(∅))
    # Lagrangian solution of  min (phi' A phi - 2 b' phi)  s.t.  1' phi = total.
    ones = np.ones(n)
    a_inv_b = np.linalg.solve(gram, rhs)
    a_inv_1 = np.linalg.solve(gram, ones)
    nu = (ones @ a_inv_b - total) / (ones @ a_inv_1)
    phi = a_inv_b - a_inv_1[:, None] * nu[None, :]
    return phi.reshape((n,) + trailing)
