"""SVERL: Shapley values for explaining reinforcement learning (Beechey, Smith & Şimşek).

The main entry point is :class:`SVERLExplainer` (or :func:`explain`): exact behaviour,
outcome and prediction explanations of a policy on a tabular MDP. The characteristic
functions are available on their own in :mod:`shaprl.sverl.characteristics`.

Without a model, :class:`MonteCarloSVERL` estimates the same explanations from a simulator
(:class:`GymSimulator`), a policy function and a sample of visited states (SVERL Sec. 10.2),
with standard errors. Every route returns an :class:`Explanation`.
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
from .monte_carlo import MonteCarloSVERL
from .routes import explain_agent
from .simulators import GymSimulator, Simulator, StateSample, collect_states

__all__ = [
    "KINDS",
    "Explanation",
    "GymSimulator",
    "KindResult",
    "MonteCarloSVERL",
    "SVERLExplainer",
    "Simulator",
    "StateSample",
    "collect_states",
    "conditional_characteristic",
    "explain",
    "explain_agent",
    "first_passage_terms",
    "marginal_characteristic",
    "outcome_characteristic",
    "restrict_to_valid",
]
