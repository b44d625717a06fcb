"""Standard data-valuation estimators (pyDVL 0.10, shapiq 1.4.1) on an explicitly stated game.

These libraries need a number for every subset. No single number per subset reproduces Eq. 1's
rule of dropping every marginal pair with a null side, so they value a different game: the
**penalty game** :class:`PenaltyGame`, ``U_p(d) = U(d)`` where ``U(d)`` is not null and a fixed
failure penalty ``p`` where it is. Each baseline is therefore compared with the exact values of
the penalty game it estimates (:func:`exact_penalty_shapley`, :func:`exact_banzhaf`), and with
exact Action Shapley by rank only.

Every utility request goes through the game (memoised, counted by a
:class:`~.result.UtilityRecorder`); pyDVL's exact sampler would otherwise call ``U`` about
``n 2**n`` times. Budgets are in **distinct utility evaluations**: a run stops at the first
check after reaching ``budget`` distinct subsets (or after ``50 * budget`` requests, which
ends runs whose budget exceeds ``2**n``). The pyDVL runs are sequential in-process
(``n_jobs=1``) because the recorder lives in this process; the expensive part, the utility,
is the game's and is computed (or read from a table) there.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from ...shapley import exact_shapley
from ..game import ValuationGame
from .result import ActionShapleyResult, UtilityRecorder

_CALLS_PER_EVALUATION = 50


class PenaltyGame(ValuationGame):
    """``U(d)``, with every null replaced by the fixed failure penalty ``penalty``."""

    def __init__(self, base: ValuationGame, penalty: float) -> None:
        if not np.isfinite(penalty):
            raise ValueError(f"the failure penalty must be a finite number, got {penalty}")
        super().__init__(base.n_players, base.names)
        self.base = base
        self.penalty = float(penalty)

    @property
    def description(self) -> str:
        return f"penalty game (null -> {self.penalty:.4g})"

    def _evaluate(self, masks: np.ndarray) -> np.ndarray:
        values = self.base.utilities(masks)
        return np.where(np.isnan(values), self.penalty, values)


def worst_utility_penalty(game: ValuationGame) -> float:
    """The lowest non-null utility of the table: a failure counts as the worst success."""
    table = game.table()
    if np.isnan(table).all():
        raise ValueError("every subset is null: no utility to base a penalty on")
    return float(np.nanmin(table))


def exact_penalty_shapley(game: PenaltyGame) -> np.ndarray:
    """Exact Shapley values (``C_f = 1/n``) of the penalty game, from its full table."""
    return exact_shapley(game.table())


def exact_banzhaf(game: ValuationGame) -> np.ndarray:
    """Exact Banzhaf values ``2^{-(n-1)} sum_{d not containing k} (U(d + k) - U(d))``."""
    table = game.table()
    if np.isnan(table).any():
        raise ValueError("Banzhaf values need a number for every subset: use a PenaltyGame")
    n = game.n_players
    masks = np.arange(1 << n, dtype=np.int64)
    out = np.empty(n)
    for k in range(n):
        without = masks[(masks >> k) & 1 == 0]
        out[k] = np.mean(table[without | (1 << k)] - table[without])
    return out


def _describe(game: ValuationGame) -> str:
    return getattr(game, "description", "the game as given")


class _BudgetedRecorder(UtilityRecorder):
    """A recorder that refuses nulls (the libraries need numbers) and knows its budget."""

    def __init__(self, game: ValuationGame, budget: int) -> None:
        if budget < 1:
            raise ValueError(f"budget (distinct utility evaluations) must be >= 1, got {budget}")
        super().__init__(game)
        self.budget = int(budget)

    @property
    def exhausted(self) -> bool:
        return self.evaluations >= self.budget or self.calls >= _CALLS_PER_EVALUATION * self.budget

    def _check(self, values: np.ndarray) -> np.ndarray:
        if np.isnan(values).any():
            raise ValueError(
                "this estimator needs a number for every subset but the game has nulls; "
                "wrap it: PenaltyGame(game, penalty=...)"
            )
        return values

    def utilities(self, masks: np.ndarray) -> np.ndarray:
        return self._check(super().utilities(masks))

    def utility(self, mask: int) -> float:
        return float(self._check(np.array([super().utility(mask)]))[0])


def _result(
    method: str,
    game: ValuationGame,
    recorder: UtilityRecorder,
    values: np.ndarray,
    stderr: np.ndarray,
    counts: np.ndarray,
    seed: int,
    budget: int,
) -> ActionShapleyResult:
    return ActionShapleyResult(
        method=method,
        game=_describe(game),
        values=np.asarray(values, dtype=float),
        stderr=np.asarray(stderr, dtype=float),
        counts=np.asarray(counts, dtype=np.int64),
        evaluations=recorder.evaluations,
        indispensable=(),
        names=game.names,
        seed=seed,
        extra={"budget": budget},
    )


# --------------------------------------------------------------------------------------- pyDVL
def _pydvl_run(
    method: str, game: ValuationGame, budget: int, seed: int, make
) -> ActionShapleyResult:
    from joblib import parallel_config

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notices of pyDVL's dependencies
        from pydvl.utils.status import Status
        from pydvl.valuation import Dataset
        from pydvl.valuation.stopping import StoppingCriterion
        from pydvl.valuation.utility.base import UtilityBase

    recorder = _BudgetedRecorder(game, budget)

    class SubsetUtility(UtilityBase):
        def __call__(self, sample) -> float:
            subset = () if sample is None else np.asarray(sample.subset, dtype=np.int64)
            mask = int(np.bitwise_or.reduce(np.int64(1) << subset)) if len(subset) else 0
            return recorder.utility(mask)

    class EvaluationBudget(StoppingCriterion):
        def _check(self, result) -> Status:
            done = recorder.exhausted
            self._converged = np.full(len(result), done)
            return Status.Converged if done else Status.Pending

        def completion(self) -> float:
            return min(1.0, recorder.evaluations / recorder.budget)

    n = game.n_players
    data = Dataset(np.arange(n).reshape(-1, 1), np.zeros(n))
    values, stderr, counts = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
    with warnings.catch_warnings(), parallel_config(n_jobs=1):
        warnings.simplefilter("ignore")  # pyDVL's deprecation notices; sqrt of 0/0 variances
        res = make(SubsetUtility(), EvaluationBudget(), seed).fit(data).result
        order = np.asarray(res.indices, dtype=np.int64)
        values[order], stderr[order], counts[order] = res.values, res.stderr, res.counts
    stderr[~np.isfinite(stderr)] = np.nan
    return _result(method, game, recorder, values, stderr, counts, seed, budget)


def pydvl_tmc_shapley(game: ValuationGame, budget: int, *, seed: int) -> ActionShapleyResult:
    """pyDVL's truncated Monte Carlo Shapley (permutations, relative truncation 1%)."""
    from pydvl.valuation import TMCShapleyValuation

    def make(utility, is_done, seed):
        return TMCShapleyValuation(utility, is_done=is_done, seed=seed, show_warnings=False)

    return _pydvl_run("pyDVL TMC Shapley", game, budget, seed, make)


def pydvl_stratified_shapley(game: ValuationGame, budget: int, *, seed: int) -> ActionShapleyResult:
    """pyDVL's stratified Shapley sampler, indices and sizes drawn at random (not one pass)."""
    from pydvl.valuation import ShapleyValuation
    from pydvl.valuation.samplers import (
        ConstantSampleSize,
        RandomIndexIteration,
        RandomSizeIteration,
        StratifiedSampler,
    )

    def make(utility, is_done, seed):
        sampler = StratifiedSampler(
            sample_sizes=ConstantSampleSize(),
            sample_sizes_iteration=RandomSizeIteration,
            index_iteration=RandomIndexIteration,
            seed=seed,
        )
        return ShapleyValuation(utility, sampler, is_done, show_warnings=False)

    return _pydvl_run("pyDVL stratified Shapley", game, budget, seed, make)


def pydvl_msr_banzhaf(game: ValuationGame, budget: int, *, seed: int) -> ActionShapleyResult:
    """pyDVL's Banzhaf values with maximum sample reuse (compare by rank only)."""
    from pydvl.valuation import MSRBanzhafValuation

    def make(utility, is_done, seed):
        return MSRBanzhafValuation(utility, is_done, seed=seed, show_warnings=False)

    return _pydvl_run("pyDVL MSR Banzhaf", game, budget, seed, make)


# -------------------------------------------------------------------------------------- shapiq
SHAPIQ_APPROXIMATORS = ("SVARM", "KernelSHAP", "PermutationSamplingSV", "StratifiedSamplingSV")


def shapiq_shapley(
    game: ValuationGame, budget: int, *, seed: int, approximator: str = "SVARM"
) -> ActionShapleyResult:
    """One of shapiq's Shapley-value approximators, at ``budget`` game evaluations."""
    if approximator not in SHAPIQ_APPROXIMATORS:
        raise ValueError(
            f"approximator must be one of {SHAPIQ_APPROXIMATORS}, got {approximator!r}"
        )
    import shapiq.approximator as approximators

    recorder = _BudgetedRecorder(game, budget)
    n = game.n_players
    bits = np.int64(1) << np.arange(n, dtype=np.int64)

    def value_function(coalitions: np.ndarray) -> np.ndarray:
        masks = np.atleast_2d(np.asarray(coalitions, dtype=bool)).astype(np.int64) @ bits
        return recorder.utilities(masks)

    cls: Callable = getattr(approximators, approximator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = cls(n=n, random_state=seed).approximate(budget=int(budget), game=value_function)
    phi = np.array([values[(k,)] for k in range(n)], dtype=float)
    counts = np.full(n, recorder.calls, dtype=np.int64)
    return _result(
        f"shapiq {approximator}", game, recorder, phi, np.full(n, np.nan), counts, seed, budget
    )
