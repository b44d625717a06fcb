"""Monte Carlo SVERL's standard errors against the exact engine (issue 19): coverage.

Slippery FrozenLake 4x4 and 8x8, a greedy agent from value iteration, all three kinds,
several seeds: the share of entries whose error is within 2 standard errors (target >= 93 %;
95 % for a normal error) and the mean z^2 (1 when the errors are honest).
"""

from __future__ import annotations

import time
import warnings

import gymnasium as gym
import numpy as np

from shaprl import explain_agent
from shaprl.agents import from_q_table
from shaprl.domains.gym_tabular import gym_tabular
from shaprl.mdp import value_iteration

from .harness import Result

KINDS = ("behaviour", "outcome", "prediction")
TARGET_COVERAGE = 0.93


def _z(map_name: str, n_states: int, seeds, n_samples: int) -> np.ndarray:
    env = gym.make("FrozenLake-v1", map_name=map_name, is_slippery=True)
    g = gym_tabular(env, gamma=0.95)
    q_mdp, _ = value_iteration(g.mdp)
    q = np.zeros((g.n_gym_states, 4))
    q[g.gym_states] = q_mdp
    agent = from_q_table(q)
    exact = explain_agent(env, agent, gamma=0.95, verbose=False)
    states = np.random.default_rng(0).choice(exact.states, n_states, replace=False)
    z = []
    for seed in seeds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mc = explain_agent(
                env, agent, states=states, gamma=0.95, route="monte carlo",
                n_samples=n_samples, n_rollouts=32, n_permutations=4, seed=seed, verbose=False,
            )  # fmt: skip
        for kind in KINDS:
            for s in mc.states:
                d = (mc.phi(kind, s) - exact.phi(kind, s)).to_numpy().ravel()
                e = mc.stderr(kind, s).to_numpy().ravel()
                ok = np.isfinite(d)
                z.append(d[ok] / e[ok])
    return np.concatenate(z)


def run() -> list[Result]:
    start = time.perf_counter()
    z = np.concatenate([_z("4x4", 10, range(16), 20_000), _z("8x8", 12, range(6), 20_000)])
    t = time.perf_counter() - start
    cover = float(np.mean(np.abs(z) <= 2))
    met = "met" if cover >= TARGET_COVERAGE else "NOT met"
    note = (
        f"{len(z)} entries: {100 * cover:.1f} % within 2 s.e. (target >= 93 %: {met}); "
        f"mean z^2 {np.mean(z**2):.2f}; max |z| {np.abs(z).max():.1f}"
    )
    return [Result("monte carlo s.e. coverage, FrozenLake 4x4 + 8x8, 3 kinds", t, None, note)]
