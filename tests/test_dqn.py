"""DQN agent (CleanRL style): learns the Gridworld's optimal policy; seeded runs are identical."""

from __future__ import annotations

import numpy as np
import torch

from shaprl.agents import DQNConfig, train_dqn
from shaprl.domains.gridworlds import five_state_grid
from shaprl.domains.tabular_env import TabularEnv

torch.set_num_threads(1)


def test_dqn_learns_gridworld():
    mdp = five_state_grid()
    agent = train_dqn(TabularEnv(mdp), DQNConfig(total_steps=20_000, seed=1), progress=False)
    # optimal: east in (0, 0), north elsewhere; values 6, 7, 8, 9, 8 (App. G)
    assert agent.policy(mdp.features).argmax(1).tolist() == [1, 0, 0, 0, 0]
    np.testing.assert_allclose(agent.value(mdp.features), [6, 7, 8, 9, 8], atol=1.0)
    assert agent.policy(mdp.features).sum(1).tolist() == [1.0] * 5


def test_dqn_is_deterministic_per_seed():
    mdp = five_state_grid()
    cfg = DQNConfig(total_steps=1_500, seed=4)
    a = train_dqn(TabularEnv(mdp), cfg, progress=False)
    b = train_dqn(TabularEnv(mdp), cfg, progress=False)
    for k in a.state_dict:
        assert torch.equal(a.state_dict[k], b.state_dict[k])
    np.testing.assert_array_equal(a.episode_returns, b.episode_returns)
