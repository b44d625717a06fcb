"""Policies as (S, A) arrays of action probabilities."""

from __future__ import annotations

import numpy as np

from .tabular import TabularMDP


def check_policy(mdp: TabularMDP, policy: np.ndarray, *, atol: float = 1e-8) -> np.ndarray:
    """Validate a policy table and return it as a float array.

    Raises a ValueError naming the first offending state when a row is not a probability
    distribution over that state's valid actions.
    """
    policy = np.asarray(policy, dtype=float)
    if policy.shape != (mdp.n_states, mdp.n_actions):
        raise ValueError(
            f"policy must have shape (n_states, n_actions) = ({mdp.n_states}, {mdp.n_actions}); "
            f"got {policy.shape}"
        )
    if not np.isfinite(policy).all():
        s = int(np.flatnonzero(~np.isfinite(policy).all(axis=1))[0])
        raise ValueError(
            f"policy has NaN or infinite probabilities in state {s} ({mdp.label(s)}); "
            f"row: {policy[s].tolist()}. Fix the agent's output (e.g. a diverged network)."
        )
    if (policy < -atol).any():
        s = int(np.flatnonzero((policy < -atol).any(axis=1))[0])
        raise ValueError(f"policy has a negative probability in state {s} ({mdp.label(s)})")
    sums = policy.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > atol)
    if bad.size:
        s = int(bad[0])
        raise ValueError(
            f"policy probabilities in state {s} ({mdp.label(s)}) sum to {sums[s]:.6g}, not 1 "
            f"({bad.size} such states). Normalise each row, e.g. policy / policy.sum(1, keepdims=True)."
        )
    invalid = (policy > atol) & ~mdp.valid_actions
    if invalid.any():
        s = int(np.flatnonzero(invalid.any(axis=1))[0])
        raise ValueError(
            f"policy gives probability to an unavailable action in state {s} ({mdp.label(s)}); "
            "zero those entries and renormalise over mdp.valid_actions."
        )
    return policy


def uniform_policy(mdp: TabularMDP) -> np.ndarray:
    """Uniform distribution over each state's valid actions."""
    valid = mdp.valid_actions.astype(float)
    return valid / valid.sum(axis=1, keepdims=True)


def greedy_policy(mdp: TabularMDP, q: np.ndarray, *, tie_atol: float = 1e-9) -> np.ndarray:
    """Uniform over the valid actions whose value is within ``tie_atol`` of the best.

    The authors' code treats values equal to two decimals as ties (``tie_atol=5e-3``
    approximates that); the default keeps only exact ties up to round-off.
    """
    q = np.where(mdp.valid_actions, q, -np.inf)
    best = q.max(axis=1, keepdims=True)
    chosen = (q >= best - tie_atol) & mdp.valid_actions
    return chosen / chosen.sum(axis=1, keepdims=True)
