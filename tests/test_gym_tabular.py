"""TabularMDP from gymnasium's transition tables (FrozenLake, CliffWalking, Taxi)."""

import gymnasium as gym
import numpy as np
import pytest

from shaprl.domains import taxi as T
from shaprl.domains.gym_tabular import gym_tabular
from shaprl.mdp import greedy_policy, policy_evaluation, value_iteration
from shaprl.sverl import SVERLExplainer


def test_frozenlake_slippery_model_matches_gymnasium():
    env = gym.make("FrozenLake-v1", is_slippery=True)
    g = gym_tabular(env)
    # 4x4 map: holes 5, 7, 11, 12 and the goal 15 are terminal; the other 11 states kept.
    np.testing.assert_array_equal(g.terminal, [5, 7, 11, 12, 15])
    assert g.mdp.n_states == 11 and g.mdp.feature_names == ("row", "col")
    np.testing.assert_array_equal(g.mdp.features, np.column_stack(np.divmod(g.gym_states, 4)))
    table = env.unwrapped.P
    dense = g.mdp.transitions.toarray()
    for i, s in enumerate(g.gym_states):
        for a in range(4):
            expect = np.zeros(g.mdp.n_states)
            reward = 0.0
            for p, nxt, r, done in table[s][a]:
                reward += p * r
                if not done:
                    expect[g.state(nxt)] += p
            np.testing.assert_allclose(dense[i * 4 + a], expect)
            assert g.mdp.rewards[i, a] == pytest.approx(reward)
    assert g.mdp.start[g.state(0)] == 1.0


def test_frozenlake_optimal_value_matches_known_solution():
    g = gym_tabular(gym.make("FrozenLake-v1", is_slippery=True), gamma=0.99)
    _, v = value_iteration(g.mdp)
    # Known optimum of slippery 4x4 FrozenLake with gamma 0.99: V(start) ~ 0.542.
    assert v[g.state(0)] == pytest.approx(0.5420, abs=2e-3)


def test_cliffwalking_terminal_and_never_entered_states():
    env = gym.make("CliffWalking-v1")
    reach = gym_tabular(env)
    every = gym_tabular(env, keep="all")
    np.testing.assert_array_equal(reach.terminal, [47])
    # Cliff cells 37..46 are never entered (gymnasium sends the agent back to the start).
    assert reach.mdp.n_states == 37 and every.mdp.n_states == 47
    with pytest.raises(ValueError, match="never entered"):
        reach.state(40)
    with pytest.raises(ValueError, match="terminal"):
        reach.state(47)
    q, v = value_iteration(reach.mdp)
    assert v[reach.state(36)] == pytest.approx(-13.0)  # 13 steps along the cliff edge


def test_index_maps_round_trip():
    g = gym_tabular(gym.make("FrozenLake-v1", map_name="8x8"))
    np.testing.assert_array_equal(g.state(g.gym_states), np.arange(g.mdp.n_states))
    np.testing.assert_array_equal(g.observations_of(g.mdp.features), g.gym_states)
    assert g.state(int(g.gym_states[3])) == 3


def test_taxi_built_on_gym_tabular_is_unchanged():
    for keep_unreachable, n in ((True, 500), (False, 400)):
        mdp = T.taxi(keep_unreachable=keep_unreachable)
        g = gym_tabular(gym.make("Taxi-v4"), keep="all" if keep_unreachable else "reachable")
        assert mdp.n_states == n
        np.testing.assert_array_equal(mdp.features, g.mdp.features)
        assert (mdp.transitions != g.mdp.transitions).nnz == 0


def test_policy_table_and_exact_explanation_from_q_table():
    g = gym_tabular(gym.make("FrozenLake-v1", is_slippery=True), gamma=0.99)
    q_mdp, _ = value_iteration(g.mdp)
    q = np.zeros((16, 4))
    q[g.gym_states] = q_mdp
    from shaprl.agents import from_q_table

    agent = from_q_table(q)
    policy = g.policy_table(agent.policy)
    np.testing.assert_allclose(policy, greedy_policy(g.mdp, q_mdp))
    ex = SVERLExplainer(g.mdp, policy, values=g.value_table(agent.value)).explain([g.state(0)])
    v = policy_evaluation(g.mdp, policy)
    # Efficiency: the prediction attributions sum to V(s) - E[V] under the steady state.
    phi = ex.phi("prediction", ex.states[0])["value"].sum()
    table = ex.values("prediction", ex.states[0])["value"]
    assert phi == pytest.approx(table.iloc[-1] - table.iloc[0])
    assert table.iloc[-1] == pytest.approx(v[g.state(0)], abs=1e-6)


def test_errors_name_the_problem():
    class NoTable:
        unwrapped = object()

    with pytest.raises(TypeError, match="unwrapped.P"):
        gym_tabular(NoTable())
    env = gym.make("FrozenLake-v1")
    with pytest.raises(ValueError, match="keep"):
        gym_tabular(env, keep="some")
    with pytest.raises(ValueError, match="same feature row"):
        gym_tabular(env, decoder=lambda s: np.zeros((len(s), 1)))
    env.unwrapped.P[0][0] = [(-0.5, 1, 0.0, False), (1.5, 4, 0.0, False)]
    with pytest.raises(ValueError, match="non-negative"):
        gym_tabular(env)
