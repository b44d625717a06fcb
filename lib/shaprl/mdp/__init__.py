"""Tabular Markov decision processes whose states are feature vectors.

Only non-terminal states are enumerated. A transition row that sums to less than one
terminates the episode with the missing probability; rewards are expected immediate
rewards r(s, a) and so include whatever is paid on termination.
"""

from .policies import check_policy, greedy_policy, uniform_policy
from .rollouts import estimate_steady_state, sample_episodes
from .solvers import action_values, policy_evaluation, value_iteration
from .steady_state import expected_visits, steady_state
from .tabular import TabularMDP

__all__ = [
    "TabularMDP",
    "action_values",
    "check_policy",
    "estimate_steady_state",
    "expected_visits",
    "greedy_policy",
    "policy_evaluation",
    "sample_episodes",
    "steady_state",
    "uniform_policy",
    "value_iteration",
]
