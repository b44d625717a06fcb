"""Global views of many states (issue 19): states='all', n_states=, mean |phi|, plots."""

import gymnasium as gym
import matplotlib
import numpy as np
import pytest

from shaprl import explain_agent
from shaprl.agents import from_q_table
from shaprl.domains.gym_tabular import gym_tabular
from shaprl.mdp import value_iteration
from shaprl.sverl import SVERLExplainer

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def lake8():
    env = gym.make("FrozenLake-v1", map_name="8x8", is_slippery=True)
    g = gym_tabular(env, gamma=0.95)
    q_mdp, _ = value_iteration(g.mdp)
    q = np.zeros((g.n_gym_states, 4))
    q[g.gym_states] = q_mdp
    return env, g, from_q_table(q, epsilon=0.1)


def test_all_states_in_chunks_equal_one_call_and_keep_no_tables(lake8):
    env, g, agent = lake8
    whole = explain_agent(env, agent, gamma=0.95, verbose=False)  # the support, with tables
    chunked = explain_agent(env, agent, states="all", chunk_size=7, gamma=0.95, verbose=False)
    np.testing.assert_array_equal(chunked.states, whole.states)
    assert chunked.info["chunks"] == -(-len(whole.states) // 7)
    for kind in ("behaviour", "outcome", "prediction"):
        np.testing.assert_allclose(chunked.results[kind].phi, whole.results[kind].phi)
        assert chunked.results[kind].characteristic is None


@pytest.mark.parametrize("kinds", [("behaviour", "prediction"), ("prediction",)])
def test_values_only_path_equals_the_per_state_engine(lake8, kinds):
    # Behaviour and prediction share one zeta transform per state, in joblib chunks.
    env, g, agent = lake8
    whole = explain_agent(env, agent, kinds=kinds, gamma=0.95, verbose=False)
    fast = explain_agent(env, agent, states="all", kinds=kinds, chunk_size=5, gamma=0.95,
                         verbose=False)  # fmt: skip
    assert fast.kinds == whole.kinds and fast.is_exact
    np.testing.assert_array_equal(fast.states, whole.states)
    for kind in kinds:
        np.testing.assert_allclose(fast.results[kind].phi, whole.results[kind].phi, atol=1e-12)
    assert fast.state_labels == whole.state_labels


def test_mean_abs_and_prop45_steady_state_average_is_zero(lake8):
    env, g, agent = lake8
    ex = explain_agent(env, agent, states="all", gamma=0.95, verbose=False)
    explainer = SVERLExplainer(g.mdp, g.policy_table(agent.policy))
    p = explainer.steady_state[g.state(ex.states)]
    for kind in ("behaviour", "prediction"):  # SVERL Prop. 45 / Cor. 46 (Eq. 12)
        avg = np.tensordot(p / p.sum(), ex.results[kind].phi, axes=1)
        np.testing.assert_allclose(avg, 0.0, atol=1e-10)
        imp = ex.mean_abs(kind)
        np.testing.assert_allclose(imp.to_numpy(), np.abs(ex.results[kind].phi).mean(axis=0))
        assert (imp.to_numpy() > 0).all()


def test_n_states_draws_that_many_and_plots_draw(lake8):
    import matplotlib.pyplot as plt

    env, g, agent = lake8
    ex = explain_agent(env, agent, n_states=5, seed=3, gamma=0.95, verbose=False)
    assert len(ex.states) == 5 and len(set(ex.states.tolist())) == 5
    fig, axes = plt.subplots(1, 2)
    ex.plot_bar("outcome", ax=axes[0])
    ex.plot_beeswarm("behaviour", "Down", ax=axes[1])
    assert len(axes[0].patches) == 2 and len(axes[1].collections) == 2
    plt.close(fig)
    with pytest.raises(ValueError, match="n_states= draws the states itself"):
        explain_agent(env, agent, states=[0], n_states=3, verbose=False)
    with pytest.raises(ValueError, match="'all'"):
        explain_agent(env, agent, states="some", verbose=False)


def test_monte_carlo_all_visited_states(lake8):
    env, g, agent = lake8
    ex = explain_agent(
        env, agent, states="all", kinds="behaviour", route="monte carlo", n_samples=3_000,
        n_permutations=4, gamma=0.95, verbose=False,
    )  # fmt: skip
    assert len(ex.states) > 8 and ex.info["missing"] == 0
    assert np.isfinite(ex.mean_abs("behaviour").to_numpy()).all()
