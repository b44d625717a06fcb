"""Exact reference, the paper's selection policy, and accuracy of an estimate against exact values.

Selection policy (§4.2, App. A.6): the best training set has as many points as the global
cut-off cardinality ``theta``: the indispensable points, then the dispensable points with the
highest values; the worst set takes the lowest values instead. An estimate that reports its own
``theta`` and indispensable points (Algorithm 1, the hybrid) selects with them; the others use
the reference's.

Accuracy is measured on the **dispensable** points of the reference: an indispensable point's
Action Shapley value is 0 by construction (every pair without it has a null side), which the
paper prints as "ind.", so it carries no ranking information.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from ..exact import exact_action_shapley, indispensable_points
from ..game import ValuationGame
from .cutoff import global_cutoff, run_algorithm1
from .result import ActionShapleyResult, UtilityRecorder


def exact_reference(game: ValuationGame) -> ActionShapleyResult:
    """Exact Action Shapley (Eq. 1), the exact indispensable points, and theta from the table.

    ``theta`` comes from Algorithm 1 on the full table: with ``epsilon = 1`` it does not
    depend on the order inside a level (a level either holds a null pair or not).
    """
    n = game.n_players
    recorder = UtilityRecorder(game)
    recorder.utilities(np.arange(1 << n))
    _, theta = run_algorithm1(recorder, epsilon=1, c_f=1.0 / n)
    theta_max, _ = global_cutoff(theta, n)
    return ActionShapleyResult(
        method="exact",
        game="Action Shapley (null pairs dropped)",
        values=exact_action_shapley(game),
        stderr=np.zeros(n),
        counts=np.full(n, 1 << (n - 1), dtype=np.int64),
        evaluations=recorder.evaluations,
        indispensable=tuple(indispensable_points(game)),
        names=game.names,
        theta=theta,
        global_theta=theta_max,
    )


def select_training_set(
    values: np.ndarray, theta: int, indispensable: tuple[int, ...] = (), *, best: bool = True
) -> tuple[int, ...]:
    """The paper's best (or worst) training set of size ``theta``, as sorted point indices."""
    values = np.asarray(values, dtype=float)
    n = values.size
    if not 1 <= theta <= n:
        raise ValueError(f"theta must lie in 1..{n}, got {theta}")
    chosen = list(indispensable)[:theta]
    rest = [k for k in range(n) if k not in indispensable]
    key = -values if best else values
    rest.sort(key=lambda k: (key[k], k))
    return tuple(sorted(chosen + rest[: theta - len(chosen)]))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (NaN when either side is constant or has < 2 points)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def top_k_agreement(estimate: np.ndarray, reference: np.ndarray, k: int) -> float:
    """Fraction of the reference's top ``k`` points that are also the estimate's top ``k``."""
    if k < 1:
        return float("nan")
    top = lambda v: set(np.lexsort((np.arange(len(v)), -np.asarray(v)))[:k].tolist())  # noqa: E731
    return len(top(estimate) & top(reference)) / k


def selected_set(result: ActionShapleyResult, reference: ActionShapleyResult) -> tuple[int, ...]:
    """The best training set chosen from ``result`` (its own theta/ind. if it has them)."""
    theta = result.global_theta if result.global_theta is not None else reference.global_theta
    ind = result.indispensable if result.theta is not None else reference.indispensable
    return select_training_set(result.values, theta, ind)


def accuracy(
    result: ActionShapleyResult,
    reference: ActionShapleyResult,
    *,
    reference_values: np.ndarray | None = None,
) -> dict[str, float]:
    """Spearman, top-k agreement, MAE and same-selection of ``result`` against ``reference``.

    Ranks are always compared with ``reference`` (exact Action Shapley) on its dispensable
    points, ``k`` being the number of points the selection picks beyond the indispensable
    ones. The MAE is against ``reference_values`` when given (the exact values of the game the
    estimator really estimates, e.g. a penalty game), else against ``reference.values``.
    """
    keep = np.array([k not in reference.indispensable for k in range(reference.n_players)])
    k = reference.global_theta - len(reference.indispensable)
    target = reference.values if reference_values is None else np.asarray(reference_values)
    best = selected_set(reference, reference)
    return {
        "evaluations": result.evaluations,
        "spearman": spearman(result.values[keep], reference.values[keep]),
        "top_k": top_k_agreement(result.values[keep], reference.values[keep], k),
        "mae": float(np.mean(np.abs(result.values - target))),
        "same_selection": float(selected_set(result, reference) == best),
    }
