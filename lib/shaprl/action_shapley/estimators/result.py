"""The result of an Action Shapley estimator, and the recorder that counts its utility calls.

Every estimator reads utilities through a :class:`UtilityRecorder` wrapped around the game. The
recorder forwards each request to the game (which memoises and trains at most once per subset)
and remembers which distinct subsets *this* estimator asked for, so
:attr:`ActionShapleyResult.evaluations` is the cost of the estimator run on its own, even
when the game already knew some utilities from an earlier run.

Eq. 2 of the paper prices Algorithm 1 at ``Pcomp = 1 - 2**theta / 2**n`` of an exhaustive
search (theta the global cut-off cardinality); :attr:`ActionShapleyResult.pcomp_measured` is
the same saving computed from the evaluations actually made, ``1 - evaluations / 2**n``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..game import ValuationGame


class UtilityRecorder:
    """Forwards utility requests to ``game`` and records the distinct subsets asked for."""

    def __init__(self, game: ValuationGame) -> None:
        self.game = game
        self.n_players = game.n_players
        self.asked: dict[int, float] = {}
        self.calls = 0  #: subsets requested, repeats included

    @property
    def evaluations(self) -> int:
        """Distinct subsets this estimator has asked for."""
        return len(self.asked)

    def utilities(self, masks: np.ndarray) -> np.ndarray:
        masks = np.asarray(masks, dtype=np.int64).reshape(-1)
        values = self.game.utilities(masks)
        self.asked.update(zip(masks.tolist(), values.tolist(), strict=True))
        self.calls += masks.size
        return values

    def utility(self, mask: int) -> float:
        """One subset's utility (fast path for sequential algorithms)."""
        self.calls += 1
        value = self.asked.get(mask)
        if value is None:
            value = float(self.game.utilities([mask])[0])
            self.asked[mask] = value
        return value

    def observed_indispensable(self) -> tuple[int, ...]:
        """Points every *asked* subset without which is null, while one with them is not.

        The sample version of :func:`~shaprl.action_shapley.exact.indispensable_points`: it
        only sees the subsets the estimator evaluated.
        """
        masks = np.fromiter(self.asked.keys(), dtype=np.int64, count=len(self.asked))
        null = np.isnan(np.fromiter(self.asked.values(), dtype=float, count=len(self.asked)))
        out = []
        for k in range(self.n_players):
            has = (masks >> k) & 1 == 1
            if (~has).any() and null[~has].all() and (~null[has]).any():
                out.append(k)
        return tuple(out)


@dataclass(frozen=True)
class ActionShapleyResult:
    """Values of the ``n`` training points from one estimator run (pyDVL's result, in spirit).

    ``stderr`` is NaN where the method defines none; ``theta`` (cut-off cardinality per
    point) and ``global_theta`` are set only by methods that find a cut-off (Algorithm 1, the
    hybrid, the exact reference).
    """

    method: str  #: e.g. "algorithm 1", "algorithm 2 (corrected)", "pyDVL TMC Shapley"
    game: str  #: which game's values these estimate (Action Shapley, or a penalty game)
    values: np.ndarray  #: (n,) estimated values
    stderr: np.ndarray  #: (n,) Monte Carlo standard errors, NaN where undefined
    counts: np.ndarray  #: (n,) marginal contributions (or samples) behind each value
    evaluations: int  #: distinct subsets whose utility this run asked for
    indispensable: tuple[int, ...]  #: points the method declares indispensable
    names: tuple[str, ...]
    theta: np.ndarray | None = None  #: (n,) cut-off cardinality per point
    global_theta: int | None = None  #: max theta over the dispensable points
    seed: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def n_players(self) -> int:
        return len(self.values)

    @property
    def pcomp(self) -> float | None:
        """Eq. 2: ``1 - 2**theta / 2**n``, the saving the paper quotes (None without theta)."""
        if self.global_theta is None:
            return None
        return 1.0 - 2.0 ** (self.global_theta - self.n_players)

    @property
    def pcomp_measured(self) -> float:
        """The saving actually achieved: ``1 - evaluations / 2**n``."""
        return 1.0 - self.evaluations / 2.0**self.n_players

    def ranking(self) -> np.ndarray:
        """Point indices from the highest value to the lowest (ties by index)."""
        return np.lexsort((np.arange(self.n_players), -self.values))

    def to_frame(self) -> pd.DataFrame:
        """One row per point: value ("ind." marked), stderr, theta, counts."""
        frame = pd.DataFrame(
            {"value": self.values, "stderr": self.stderr, "counts": self.counts},
            index=pd.Index(self.names, name="point"),
        )
        if self.theta is not None:
            frame["theta"] = self.theta
        frame["indispensable"] = [k in self.indispensable for k in range(self.n_players)]
        return frame

    def __repr__(self) -> str:
        theta = "" if self.global_theta is None else f", theta={self.global_theta}"
        return (
            f"ActionShapleyResult({self.method!r}, n={self.n_players}, "
            f"evaluations={self.evaluations}{theta})"
        )
