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
    trans = mdp.transitions
    visited = np.empty(n_steps, dtype=np.int64)
    s = rng.choice(mdp.n_states, p=mdp.start)
    t_episode = 0
    cdf = np.cumsum(policy, axis=1)
    for t in range(n_steps):
        visited[t] = s
        a = min(int(np.searchsorted(cdf[s], rng.random(), side="right")), a_count - 1)
        row = trans[s * a_count + a]
        u = rng.random()
        nxt = np.searchsorted(np.cumsum(row.data), u, side="right")
        t_episode += 1
        if nxt >= len(row.indices) or t_episode >= max_episode_steps:
            s = rng.choice(mdp.n_states, p=mdp.start)
            t_episode = 0
        else:
            s = int(row.indices[nxt])
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
