"""The valuation game of Action Shapley: a utility on subsets of training points, or null.

A subset of the n training points (traces) is a bitmask ``d`` (bit ``k`` set when point ``k``
is in the subset). ``U(d)`` is the cumulative reward of the agent trained on ``d``, or **null**
when the agent fails its objective or no world model can be fitted (Action Shapley §2). Null
is stored as ``NaN``; the estimators decide what a null does (Eq. 1 drops every marginal
term with a null on either side).

Every estimator reads utilities through :meth:`ValuationGame.utilities`, which counts the
distinct subsets it was asked for, so a result can report how many utility evaluations
(agent trainings) it really cost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


class ValuationGame:
    """A utility over the subsets of ``n`` players, null as NaN, with an evaluation counter.

    Subclasses implement :meth:`_evaluate` (utilities of an array of distinct bitmasks); the
    base class memoises them, so asking twice for a subset costs one evaluation.
    """

    def __init__(self, n_players: int, names: Sequence[str] | None = None) -> None:
        if n_players < 1 or n_players > 30:
            raise ValueError(f"a valuation game needs 1..30 players, got {n_players}")
        self.n_players = int(n_players)
        self.names = (
            tuple(names) if names is not None else tuple(f"k{i + 1}" for i in range(n_players))
        )
        if len(self.names) != self.n_players:
            raise ValueError(f"{len(self.names)} names for {self.n_players} players")
        self._memo: dict[int, float] = {}

    @property
    def n_subsets(self) -> int:
        return 1 << self.n_players

    @property
    def evaluations(self) -> int:
        """Distinct subsets whose utility has been asked for since the last reset."""
        return len(self._memo)

    def reset_count(self) -> None:
        """Forget which subsets were asked for (the next estimator starts counting at 0)."""
        self._memo.clear()

    def utilities(self, masks: np.ndarray | Sequence[int]) -> np.ndarray:
        """``U(d)`` for every bitmask in ``masks`` (NaN where null)."""
        masks = np.asarray(masks, dtype=np.int64).reshape(-1)
        if masks.size and (masks.min() < 0 or masks.max() >= self.n_subsets):
            raise ValueError(
                f"subset bitmasks must lie in [0, 2**{self.n_players}); got "
                f"{masks.min()}..{masks.max()}"
            )
        memo = self._memo  # membership per mask: O(len(masks)), not O(len(memo))
        new = np.array(sorted({m for m in masks.tolist() if m not in memo}), dtype=np.int64)
        if new.size:
            values = np.asarray(self._evaluate(new), dtype=float).reshape(-1)
            if values.shape != new.shape:
                raise ValueError(f"_evaluate returned {values.shape} values for {new.size} subsets")
            self._memo.update(zip(new.tolist(), values.tolist(), strict=True))
        return np.array([self._memo[int(m)] for m in masks], dtype=float)

    def utility(self, mask: int) -> float:
        return float(self.utilities([mask])[0])

    def table(self) -> np.ndarray:
        """Every subset's utility, indexed by bitmask (costs ``2**n`` evaluations)."""
        return self.utilities(np.arange(self.n_subsets))

    def _evaluate(self, masks: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class TableGame(ValuationGame):
    """A game read from a precomputed table of ``2**n`` utilities (NaN = null)."""

    def __init__(self, table: np.ndarray | Sequence[float], names: Sequence[str] | None = None):
        table = np.asarray(table, dtype=float).reshape(-1)
        n = int(np.log2(max(table.size, 1)))
        if table.size < 2 or (1 << n) != table.size:
            raise ValueError(
                f"a utility table needs 2**n entries (one per subset), got {table.size}"
            )
        super().__init__(n, names)
        self._table = table

    def _evaluate(self, masks: np.ndarray) -> np.ndarray:
        return self._table[masks]


class FunctionGame(ValuationGame):
    """A game whose utilities come from ``fn(masks) -> values`` (e.g. training agents)."""

    def __init__(
        self,
        n_players: int,
        fn: Callable[[np.ndarray], np.ndarray],
        names: Sequence[str] | None = None,
    ) -> None:
        super().__init__(n_players, names)
        self._fn = fn

    def _evaluate(self, masks: np.ndarray) -> np.ndarray:
        return self._fn(masks)
