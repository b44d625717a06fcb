"""Exact steady-state distributions of a policy (SVERL Def. 15; the p^pi(s) of the paper).

For episodic tasks the steady state is the long-run fraction of decision stages spent in
each non-terminal state when episodes are restarted from the start distribution, i.e. the
expected number of visits per episode, normalised:
    eta^T = d_0^T (I - P_pi)^{-1},   p(s) = eta(s) / sum eta.
For continuing tasks it is the stationary distribution of P_pi on the states reachable
from the start distribution.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import scipy.sparse.linalg as spla

from .policies import check_policy
from .solvers import solve_chain
from .tabular import TabularMDP


def reachable_states(p_pi: sp.spmatrix, sources: np.ndarray) -> np.ndarray:
    """Sorted indices of the states reachable from ``sources`` (inclusive) in the chain."""
    graph = sp.csr_matrix(p_pi)
    n = graph.shape[0]
    # One extra node pointing at every source lets a single BFS cover them all.
    root = sp.csr_matrix(
        (np.ones(len(sources)), (np.zeros(len(sources), int), np.asarray(sources))), shape=(1, n)
    )
    augmented = sp.bmat(
        [[graph, sp.csr_matrix((n, 1))], [root, sp.csr_matrix((1, 1))]], format="csr"
    )
    order = csgraph.breadth_first_order(augmented, n, directed=True, return_predecessors=False)
    return np.sort(order[order != n])


def expected_visits(mdp: TabularMDP, policy: np.ndarray) -> np.ndarray:
    """Expected visits per episode to every non-terminal state, eta = d0^T (I - P_pi)^{-1}."""
    policy = check_policy(mdp, policy)
    p_pi, _ = mdp.chain(policy)
    live = reachable_states(p_pi, np.flatnonzero(mdp.start > 0))
    sub = p_pi[live][:, live]
    eta = np.zeros(mdp.n_states)
    # Transposed system: (I - P)^T eta = d0.
    eta[live] = solve_chain(sub.T.tocsr(), mdp.start[live, None], 1.0)[:, 0]
    return np.clip(eta, 0.0, None)


def stationary_distribution(mdp: TabularMDP, policy: np.ndarray) -> np.ndarray:
    """Stationary distribution of a continuing task's chain, from the start distribution."""
    policy = check_policy(mdp, policy)
    p_pi, _ = mdp.chain(policy)
    live = reachable_states(p_pi, np.flatnonzero(mdp.start > 0))
    sub = p_pi[live][:, live].toarray() if len(live) <= 2000 else p_pi[live][:, live]
    n = len(live)
    # Solve d (P - I) = 0 with sum(d) = 1 by replacing one equation by the normalisation.
    system = (sp.csr_matrix(sub) - sp.eye(n)).T.tolil()
    system[0, :] = np.ones(n)
    rhs = np.zeros(n)
    rhs[0] = 1.0
    d = spla.spsolve(system.tocsc(), rhs)
    if not np.isfinite(d).all() or (d < -1e-9).any():
        raise ValueError(
            "the chain has no unique stationary distribution from the start states (several "
            "closed classes?); pass the steady state explicitly or estimate it from rollouts"
        )
    out = np.zeros(mdp.n_states)
    out[live] = np.clip(d, 0.0, None)
    return out / out.sum()


def steady_state(mdp: TabularMDP, policy: np.ndarray) -> np.ndarray:
    """Exact steady-state distribution p^pi over non-terminal states.

    Episodic tasks: normalised expected visits; continuing tasks: stationary distribution.
    """
    if mdp.is_continuing:
        return stationary_distribution(mdp, policy)
    eta = expected_visits(mdp, policy)
    return eta / eta.sum()


#: Alias for callers whose own parameter is named ``steady_state``.
exact_steady_state = steady_state
