"""Sampling episodes from a tabular MDP, and the trajectory estimator of the steady state."""

from __future__ import annotations

import numpy as np

from .policies import check_policy
from .tabular import TabularMDP


def sample_episodes(
    mdp: TabularMDP, policy: np.ndarray, n_steps: int, *, seed: int, max_episode_steps: int = 10_000
) -> np.ndarray:
    """Visited non-terminal states over ``n_steps`` decision stages, restarting episodes.

    Episodes restart from the start distribution when they terminate, or after
    ``max_episode_steps`` stages (for continuing tasks this is one long run).
    """
    policy = check_policy(mdp, policy)
    rng = np.random.default_rng(seed)
    a_count = mdp.n_actions
    indptr, indices, probs = mdp.transitions.indptr, mdp.transitions.indices, mdp.transitions.data
    visited = np.empty(n_steps, dtype=np.int64)
    s = rng.choice(mdp.n_states, p=mdp.start)
    t_episode = 0
    cdf = np.cumsum(policy, axis=1)
    start_cdf = np.cumsum(mdp.start)
    draws = rng.random((n_steps, 3))  # action, successor, restart
    for t in range(n_steps):
        visited[t] = s
        a = min(int(np.searchsorted(cdf[s], draws[t, 0], side="right")), a_count - 1)
        lo, hi = indptr[s * a_count + a], indptr[s * a_count + a + 1]
        u, acc, nxt = draws[t, 1], 0.0, -1
        for k in range(lo, hi):  # successor rows are short: a linear scan beats numpy here
            acc += probs[k]
            if u < acc:
                nxt = int(indices[k])
                break
        t_episode += 1
        if nxt < 0 or t_episode >= max_episode_steps:
            s = min(int(np.searchsorted(start_cdf, draws[t, 2], side="right")), mdp.n_states - 1)
            t_episode = 0
        else:
            s = nxt
    return visited


def estimate_steady_state(
    mdp: TabularMDP, policy: np.ndarray, n_steps: int, *, seed: int
) -> np.ndarray:
    """Empirical state frequencies from ``n_steps`` sampled decision stages.

    This is the estimator the SVERL authors use (10^6 steps); the exact counterpart is
    :func:`shaprl.mdp.steady_state`.
    """
    counts = np.bincount(sample_episodes(mdp, policy, n_steps, seed=seed), minlength=mdp.n_states)
    return counts / counts.sum()
