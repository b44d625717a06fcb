"""SVERL: Shapley values for explaining reinforcement learning (Beechey, Smith & Şimşek).

The main entry point is :class:`SVERLExplainer` (or :func:`explain`): exact behaviour,
outcome and prediction explanations of a policy on a tabular MDP. The characteristic
functions are available on their own in :mod:`shaprl.sverl.characteristics`.
"""

from .characteristics import (
    conditional_characteristic,
    first_passage_terms,
    marginal_characteristic,
    outcome_characteristic,
    restrict_to_valid,
)
from .explainer import KINDS, SVERLExplainer, explain
from .explanation import Explanation, KindResult

__all__ = [
    "KINDS",
    "Explanation",
    "KindResult",
    "SVERLExplainer",
    "conditional_characteristic",
    "explain",
    "first_passage_terms",
    "marginal_characteristic",
    "outcome_characteristic",
    "restrict_to_valid",
]
