"""Small adapters between game representations (tables and callables)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .coalitions import check_exact_size, n_players_of


class TableGame:
    """A game given by its full table, usable wherever a callable game is expected."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = np.asarray(values, dtype=float)
        self.n_players = n_players_of(self.values)

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        return self.values[np.asarray(masks, dtype=np.int64)]


def tabulate_game(game: Callable[[np.ndarray], np.ndarray], n_players: int) -> np.ndarray:
    """Evaluate a callable game on all ``2**n`` coalitions, giving the table exact methods use."""
    check_exact_size(n_players)
    return np.asarray(game(np.arange(1 << n_players, dtype=np.int64)), dtype=float)
