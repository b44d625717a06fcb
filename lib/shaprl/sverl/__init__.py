"""SVERL: Shapley values for explaining reinforcement learning (Beechey, Smith & Şimşek).

The main entry point is :class:`SVERLExplainer` (or :func:`explain`): exact behaviour,
outcome and prediction explanations of a policy on a tabular MDP. The characteristic
functions are available on their own in :mod:`shaprl.sverl.characteristics`.

Without a model, :class:`MonteCarloSVERL` estimates the same explanations from a simulator
(:class:`GymSimulator`), a policy function and a sample of visited states (SVERL Sec. 10.2),
with standard errors. Every route returns an :class:`Explanation`.

Explaining your own agent (:func:`shaprl.explain_agent`) lives above this package, in
:mod:`shaprl.explain`; ``shaprl.sverl.explain_agent`` still resolves, with a
DeprecationWarning (the one import of this package that points upwards, made lazily).
"""

import warnings

from ..simulators import GymSimulator, Simulator, StateSample, collect_states
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
    "first_passage_terms",
    "marginal_characteristic",
    "outcome_characteristic",
    "restrict_to_valid",
]


def __getattr__(name: str):
    """PEP 562: the deprecated ``shaprl.sverl.explain_agent`` (now ``shaprl.explain_agent``)."""
    if name == "explain_agent":
        warnings.warn(
            "shaprl.sverl.explain_agent moved to shaprl.explain_agent (shaprl.explain); "
            "the old path will be removed",
            DeprecationWarning,
            stacklevel=2,
        )
        from ..explain import explain_agent

        return explain_agent
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
