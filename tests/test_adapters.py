"""Adapters from SB3 models, Q-tables and callables to the functions SVERL explains."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from shaprl.agents import from_callable, from_q_table, from_sb3
from shaprl.agents.adapters import epsilon_greedy_probabilities, greedy_probabilities

torch.set_num_threads(1)


def test_greedy_shares_ties_and_epsilon_mixes_uniform():
    q = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 1.0, 0.0, -1.0]])
    np.testing.assert_allclose(greedy_probabilities(q), [[0, 0.5, 0.5, 0], [1, 0, 0, 0]])
    eps = epsilon_greedy_probabilities(q, 0.2)
    np.testing.assert_allclose(eps[1], [0.85, 0.05, 0.05, 0.05])
    np.testing.assert_allclose(eps.sum(axis=1), 1.0)


def test_q_table_adapter_values_and_errors():
    q = np.array([[0.0, 1.0], [2.0, 2.0]])
    agent = from_q_table(q)
    np.testing.assert_allclose(agent.probabilities(np.array([0, 1])), [[0, 1], [0.5, 0.5]])
    np.testing.assert_allclose(agent.values(np.array([0, 1])), [1.0, 2.0])
    assert "greedy" in agent.description
    eps = from_q_table(q, epsilon=0.5)
    np.testing.assert_allclose(eps.values(np.array([0])), [0.75 * 1.0])
    with pytest.raises(IndexError):
        agent.policy(np.array([5]))
    bad = from_q_table(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="NaN"):
        bad.policy(np.array([0]))


def test_callable_adapter_rejects_nan_probabilities():
    agent = from_callable(lambda obs: np.full((len(obs), 2), np.nan), n_actions=2)
    with pytest.raises(ValueError, match="NaN or infinite probabilities"):
        agent.probabilities(np.zeros((3, 4)))
    cont = from_callable(lambda obs: obs[:, :1] * 2, output="actions", n_actions=1)
    assert cont.is_continuous
    np.testing.assert_allclose(cont.action(np.ones((2, 3))), [[2.0], [2.0]])


@pytest.fixture(scope="module")
def frozen():
    return gym.make("FrozenLake-v1", is_slippery=True)


def test_sb3_dqn_is_greedy_in_its_q_network(frozen):
    from stable_baselines3 import DQN

    model = DQN("MlpPolicy", frozen, seed=0, learning_starts=0, policy_kwargs={"net_arch": [8]})
    agent = from_sb3(model)
    obs = np.arange(16)
    p = agent.probabilities(obs)
    with torch.no_grad():
        q = model.q_net(model.policy.obs_to_tensor(obs)[0]).numpy()
    np.testing.assert_allclose(p, greedy_probabilities(q, tie_atol=1e-6))
    np.testing.assert_allclose(agent.values(obs), q.max(axis=1), rtol=1e-6)
    actions, _ = model.predict(obs, deterministic=True)
    assert (p[np.arange(16), actions] > 0).all()
    eps = from_sb3(model, epsilon="final")
    assert eps.probabilities(obs).min() > 0 and "epsilon" in eps.description


@pytest.mark.parametrize("algo", ["PPO", "A2C"])
def test_sb3_actor_critic_gives_its_distribution_and_critic(frozen, algo):
    import stable_baselines3 as sb3

    model = getattr(sb3, algo)("MlpPolicy", frozen, seed=0, policy_kwargs={"net_arch": [8]})
    agent = from_sb3(model)
    obs = np.arange(16)
    p = agent.probabilities(obs)
    with torch.no_grad():
        t = model.policy.obs_to_tensor(obs)[0]
        logp = model.policy.get_distribution(t).log_prob(torch.zeros(16, dtype=torch.long))
        v = model.policy.predict_values(t).numpy().ravel()
    np.testing.assert_allclose(p[:, 0], logp.exp().numpy(), rtol=1e-5)
    np.testing.assert_allclose(agent.values(obs), v, rtol=1e-6)
    greedy = from_sb3(model, greedy=True).probabilities(obs)
    actions, _ = model.predict(obs, deterministic=True)
    assert (greedy[np.arange(16), actions] > 0).all()


@pytest.mark.parametrize("algo", ["SAC", "TD3"])
def test_sb3_continuous_action_is_the_deterministic_action(algo):
    import stable_baselines3 as sb3

    env = gym.make("Pendulum-v1")
    model = getattr(sb3, algo)(
        "MlpPolicy", env, seed=0, buffer_size=100, policy_kwargs={"net_arch": [8]}
    )
    agent = from_sb3(model)
    obs = np.random.default_rng(0).uniform(-1, 1, (5, 3)).astype(np.float32)
    actions, _ = model.predict(obs, deterministic=True)
    assert agent.is_continuous and agent.policy is None
    np.testing.assert_allclose(agent.action(obs), actions, rtol=1e-5, atol=1e-6)
    assert agent.values(obs).shape == (5,)
    if algo == "SAC":
        mean = from_sb3(model, sac_action="squashed_mean", n_samples=2000).action(obs)
        # |E tanh(u)| <= |tanh(E u)| for the symmetric noise around a mean of either sign.
        assert (np.abs(mean) <= np.abs(actions) + 1e-3).all()
