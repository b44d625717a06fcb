"""Estimators of Action Shapley: the paper's Algorithms 1 and 2 and hybrid, and library baselines.

* :func:`algorithm1` -- Algorithm 1 as printed (cut-off cardinality, error bound ``epsilon``).
* :func:`algorithm2` -- Algorithm 2, corrected (unbiased) by default, ``variant="printed"``
  keeps the printed double division.
* :func:`hybrid` -- Algorithm 1 for ``theta_k``, then the corrected Algorithm 2 above it.
* :func:`pydvl_tmc_shapley`, :func:`pydvl_stratified_shapley`, :func:`pydvl_msr_banzhaf`,
  :func:`shapiq_shapley` -- standard data-valuation estimators on a :class:`PenaltyGame`.

Each returns an :class:`ActionShapleyResult` (values, stderr, theta, indispensable points,
distinct utility evaluations, Eq. 2's Pcomp next to the measured saving).
"""

from .baselines import (
    SHAPIQ_APPROXIMATORS,
    PenaltyGame,
    exact_banzhaf,
    exact_penalty_shapley,
    pydvl_msr_banzhaf,
    pydvl_stratified_shapley,
    pydvl_tmc_shapley,
    shapiq_shapley,
    worst_utility_penalty,
)
from .compare import (
    accuracy,
    exact_reference,
    select_training_set,
    selected_set,
    spearman,
    top_k_agreement,
)
from .cutoff import algorithm1
from .result import ActionShapleyResult, UtilityRecorder
from .stratified import algorithm2, hybrid, printed_algorithm2_expectation

__all__ = [
    "SHAPIQ_APPROXIMATORS",
    "ActionShapleyResult",
    "PenaltyGame",
    "UtilityRecorder",
    "accuracy",
    "algorithm1",
    "algorithm2",
    "exact_banzhaf",
    "exact_penalty_shapley",
    "exact_reference",
    "hybrid",
    "printed_algorithm2_expectation",
    "pydvl_msr_banzhaf",
    "pydvl_stratified_shapley",
    "pydvl_tmc_shapley",
    "select_training_set",
    "selected_set",
    "shapiq_shapley",
    "spearman",
    "top_k_agreement",
    "worst_utility_penalty",
]
