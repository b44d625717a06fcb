"""Monte Carlo SVERL's standard errors are honest (issue 19).

Pooled calibration against the exact engine: slippery FrozenLake 4x4 and 8x8, an agent
trained by value iteration (greedy, so deterministic: the case where resampling alone gives
zero spreads), all three kinds, fixed seeds. With honest standard errors z = (estimate -
exact) / s.e. has mean square about 1; no entry may have s.e. 0 and a nonzero error.
States never sampled get NaN and a count, not an abort.
"""

import warnings

import gymnasium as gym
import numpy as np
import pytest

from shaprl import explain_agent
from shaprl.agents import from_q_table
from shaprl.domains.gym_tabular import gym_tabular
from shaprl.mdp import value_iteration

KINDS = ("behaviour", "outcome", "prediction")


def _lake(map_name: str):
    env = gym.make("FrozenLake-v1", map_name=map_name, is_slippery=True)
    g = gym_tabular(env, gamma=0.95)
    q_mdp, _ = value_iteration(g.mdp)
    q = np.zeros((g.n_gym_states, 4))
    q[g.gym_states] = q_mdp
    agent = from_q_table(q)  # greedy: a deterministic trained agent
    exact = explain_agent(env, agent, gamma=0.95, verbose=False)
    return env, agent, exact


def _pooled_z(map_name: str, n_states: int, seeds, n_samples: int):
    env, agent, exact = _lake(map_name)
    states = np.random.default_rng(0).choice(exact.states, n_states, replace=False)
    errors, stderrs = [], []
    for seed in seeds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a state missed by a sample: NaN
            mc = explain_agent(
                env, agent, states=states, gamma=0.95, route="monte carlo",
                n_samples=n_samples, n_rollouts=32, n_permutations=4, seed=seed, verbose=False,
            )  # fmt: skip
        for kind in KINDS:
            for s in mc.states:
                errors.append((mc.phi(kind, s) - exact.phi(kind, s)).to_numpy().ravel())
                stderrs.append(mc.stderr(kind, s).to_numpy().ravel())
    return np.concatenate(errors), np.concatenate(stderrs)


def test_pooled_calibration_frozenlake_4x4_and_8x8():
    d4, e4 = _pooled_z("4x4", 10, range(8), 20_000)
    d8, e8 = _pooled_z("8x8", 12, range(3), 20_000)
    d, e = np.concatenate([d4, d8]), np.concatenate([e4, e8])
    seen = np.isfinite(d)
    d, e = d[seen], e[seen]
    assert len(d) >= 500
    assert not ((e == 0) & (np.abs(d) > 1e-12)).any(), "a zero standard error with an error"
    assert (e > 0).all()
    z2 = (d / e) ** 2
    assert 0.75 <= z2.mean() <= 1.33, z2.mean()


def test_unsampled_states_are_nan_and_counted():
    env, agent, exact = _lake("8x8")
    with pytest.warns(RuntimeWarning, match="never occur in the state sample"):
        mc = explain_agent(
            env, agent, states=exact.states, gamma=0.95, route="monte carlo", n_samples=2_000,
            kinds="behaviour", n_permutations=4, seed=0, verbose=False,
        )  # fmt: skip
    phi = mc.results["behaviour"].phi
    missing = np.isnan(phi).all(axis=(1, 2))
    assert mc.info["missing"] == missing.sum() > 0
    assert len(mc.info["missing_states"]) == mc.info["missing"]
    assert np.isfinite(phi[~missing]).all()
    with pytest.raises(ValueError, match="never occurs"):
        explain_agent(
            env, agent, states=exact.states, gamma=0.95, route="monte carlo", n_samples=2_000,
            kinds="behaviour", n_permutations=4, seed=0, verbose=False, on_missing="raise",
        )  # fmt: skip


def test_deterministic_agent_never_gets_a_zero_stderr():
    # Every sampled row of a greedy agent has a one-hot target: the bootstrap spread is 0
    # for coalitions whose matches all act alike; the Jeffreys bound keeps the s.e. positive.
    env, agent, exact = _lake("4x4")
    mc = explain_agent(
        env, agent, states=exact.states[:4], gamma=0.95, route="monte carlo", n_samples=3_000,
        n_rollouts=8, n_permutations=4, seed=0, verbose=False,
    )  # fmt: skip
    floors = mc.info["stderr_floor"]
    for kind in KINDS:
        err = mc.results[kind].stderr
        assert (err >= floors[kind] - 1e-15).all() and floors[kind] > 0
