"""A gymnasium environment that samples from any :class:`~shaprl.mdp.TabularMDP`.

FastSVERL's Gridworld (``gridworlds.five_state_grid``) and Hypercube
(``hypercube.hypercube_model``) are defined by their exact models; this wrapper turns such a
model into an environment an agent (e.g. :mod:`shaprl.agents.dqn`) trains on, so the agent
and the exact SVERL engine see the same MDP. Observations are the state's feature vector
(``float32``); an episode ends when the sampled successor is terminal (the row's missing
probability mass). Rewards are the model's expected rewards r(s, a), exact for the
deterministic-reward domains used here.
"""

from __future__ import annotations

import gymnasium
import numpy as np

from ..mdp.tabular import TabularMDP


class TabularEnv(gymnasium.Env):
    """Gymnasium view of a tabular MDP (see the module docstring).

    ``max_steps`` truncates an episode (``truncated=True``) so that a poor policy cannot loop
    for ever in an episodic task. ``info["state"]`` is the state's index in the model.
    """

    metadata = {"render_modes": []}

    def __init__(self, mdp: TabularMDP, *, max_steps: int = 200) -> None:
        self.mdp = mdp
        self.max_steps = int(max_steps)
        feats = mdp.features.astype(np.float32)
        self.observation_space = gymnasium.spaces.Box(
            low=feats.min(axis=0), high=feats.max(axis=0), dtype=np.float32
        )
        self.action_space = gymnasium.spaces.Discrete(mdp.n_actions)
        p = mdp.transitions.tocsr()
        self._p = p
        self._state = -1
        self._t = 0

    def _obs(self) -> np.ndarray:
        return self.mdp.features[self._state].astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._state = int(self.np_random.choice(self.mdp.n_states, p=self.mdp.start))
        self._t = 0
        return self._obs(), {"state": self._state}

    def step(self, action: int):
        if self._state < 0:
            raise RuntimeError("the episode has ended; call reset() before step()")
        a = int(action)
        if not 0 <= a < self.mdp.n_actions or not self.mdp.valid_actions[self._state, a]:
            raise ValueError(f"action {action} is not available in state {self._state}")
        reward = float(self.mdp.rewards[self._state, a])
        row = self._p[self._state * self.mdp.n_actions + a]
        u = self.np_random.random()
        cum = np.cumsum(row.data)
        k = int(np.searchsorted(cum, u, side="right"))
        self._t += 1
        if k >= len(row.data):  # the missing mass: the episode ends
            obs = self._obs()
            self._state = -1
            return obs, reward, True, False, {"state": -1}
        self._state = int(row.indices[k])
        truncated = self._t >= self.max_steps
        obs = self._obs()
        info = {"state": self._state}
        if truncated:
            self._state = -1
        return obs, reward, False, truncated, info
