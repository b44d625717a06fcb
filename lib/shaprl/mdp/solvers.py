"""Dynamic programming on a tabular MDP: value iteration and exact policy evaluation."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .policies import check_policy
from .tabular import TabularMDP


def action_values(mdp: TabularMDP, v: np.ndarray) -> np.ndarray:
    """Q(s, a) = r(s, a) + gamma sum_s' p(s'|s, a) V(s'); invalid actions get -inf."""
    q = mdp.rewards + mdp.gamma * (mdp.transitions @ v).reshape(mdp.n_states, mdp.n_actions)
    return np.where(mdp.valid_actions, q, -np.inf)


def value_iteration(
    mdp: TabularMDP, *, tol: float = 1e-10, max_iter: int = 100_000
) -> tuple[np.ndarray, np.ndarray]:
    """Optimal action values by value iteration (Sutton & Barto, 2018, Sec. 4.4).

    Returns ``(Q, V)``; stops when the largest change of V falls below ``tol``.
    """
    v = np.zeros(mdp.n_states)
    for _ in range(max_iter):
        q = action_values(mdp, v)
        v_new = q.max(axis=1)
        if np.max(np.abs(v_new - v)) < tol:
            return action_values(mdp, v_new), v_new
        v = v_new
    raise RuntimeError(
        f"value iteration on {mdp.name!r} did not converge in {max_iter} sweeps; with gamma=1 "
        "every policy it compares must end episodes (check for reward-free loops)"
    )


def policy_evaluation(
    mdp: TabularMDP, policy: np.ndarray, *, states: np.ndarray | None = None
) -> np.ndarray:
    """Exact V^pi by solving (I - gamma P_pi) V = r_pi (sparse LU).

    ``states`` optionally restricts the solve to a set closed under the policy's
    transitions (e.g. the states reachable from a start set), which keeps undiscounted
    evaluation well-posed when other states are never left.
    """
    policy = check_policy(mdp, policy)
    p_pi, r_pi = mdp.chain(policy)
    if states is None:
        return solve_chain(p_pi, r_pi[:, None], mdp.gamma)[:, 0]
    states = np.asarray(states)
    v = np.full(mdp.n_states, np.nan)
    v[states] = solve_chain(p_pi[states][:, states], r_pi[states, None], mdp.gamma)[:, 0]
    return v


def solve_chain(p: sp.spmatrix, rhs: np.ndarray, gamma: float) -> np.ndarray:
    """Solve (I - gamma P) X = rhs, raising a clear error if the policy never terminates."""
    n = p.shape[0]
    system = (sp.eye(n, format="csc") - gamma * p.tocsc()).tocsc()
    try:
        lu = spla.splu(system)
    except RuntimeError as err:  # exactly singular
        raise ValueError(
            "the policy cannot be evaluated: with gamma=1 some state reachable under it never "
            "reaches a terminal state. Evaluate a proper policy, use gamma < 1, or restrict "
            "the evaluation to states whose episodes end."
        ) from err
    x = lu.solve(np.asarray(rhs, float))
    if not np.isfinite(x).all():
        raise ValueError("policy evaluation produced non-finite values (improper policy?)")
    return x
