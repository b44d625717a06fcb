"""Shapley values of coalitional games whose coalitions are encoded as bitmasks.

A game with ``n`` players is given either as a table ``values`` of shape ``(2**n, ...)``
where row ``mask`` holds v(S) for the coalition ``S = {i : mask >> i & 1}``, or as a
callable mapping an integer array of masks to their values (for sampling estimators).
Values may be vector-valued (one value per action, say); every estimator works on all
trailing dimensions at once.
"""

from .coalitions import (
    MAX_EXACT_PLAYERS,
    coalition_label,
    coalition_sizes,
    full_mask,
    n_players_of,
    shapley_kernel_weights,
)
from .exact import exact_shapley
from .games import TableGame, tabulate_game
from .kernel import kernel_shapley
from .sampling import ShapleyEstimate, permutation_shapley, permutation_shapley_along_orders

__all__ = [
    "MAX_EXACT_PLAYERS",
    "ShapleyEstimate",
    "TableGame",
    "coalition_label",
    "coalition_sizes",
    "exact_shapley",
    "full_mask",
    "kernel_shapley",
    "n_players_of",
    "permutation_shapley",
    "permutation_shapley_along_orders",
    "shapley_kernel_weights",
    "tabulate_game",
]
