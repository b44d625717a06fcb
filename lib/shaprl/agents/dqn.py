"""DQN (Mnih et al. 2013) in the CleanRL style: one file, readable top to bottom.

The agent FastSVERL explains (paper App. H; settings from the authors' code, see
``/work/shared/fastsverl_notes.md``): an MLP Q-network with two ReLU hidden layers, Adam at
learning rate 2.5e-4, gamma = 1, epsilon-greedy exploration decaying linearly from 1 to 0.01
over the first quarter of training, a replay buffer of every transition, a minibatch of 64
every ``train_frequency`` steps once ``learning_starts`` steps are stored, MSE TD loss, and a
soft target update (``tau``) after every training step. Differences from the authors' code:
one environment instead of 16 vector environments (``total_steps`` counts environment steps),
and ``learning_starts`` defaults to a fifth of the budget when that is below 10,000.

The explained policy is the greedy one (one-hot argmax Q, ties to the first action) and the
explained prediction is ``V(s) = max_a Q(s, a)``.

Off-policy explanation (FastSVERL Eq. 17) needs the behaviour policy pi_t of every stored
transition: ``train_dqn(..., record=True)`` keeps the buffer on the agent (``agent.buffer``)
with each step's epsilon and greedy action, from which
pi_t(s_t, a) = epsilon_t / |A| + (1 - epsilon_t) [a = greedy_t] is recomputed exactly.
``hook`` (called after every environment step) lets explanation models train alongside the
agent (FastSVERL Sec. 4, continual explanation). Both default to off: the agent is unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium
import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class DQNConfig:
    """Hyper-parameters of one DQN run (every field enters the cache key)."""

    total_steps: int = 100_000
    hidden: tuple[int, ...] = (64, 64)
    learning_rate: float = 2.5e-4
    gamma: float = 1.0
    tau: float = 0.01
    batch_size: int = 64
    start_e: float = 1.0
    end_e: float = 0.01
    exploration_fraction: float = 0.25
    learning_starts: int | None = None  #: None: min(10_000, total_steps // 5)
    train_frequency: int = 10
    seed: int = 0

    def starts(self) -> int:
        if self.learning_starts is not None:
            return self.learning_starts
        return min(10_000, self.total_steps // 5)


def q_network(obs_dim: int, hidden: tuple[int, ...], n_actions: int) -> nn.Sequential:
    """The Q-network: ``obs_dim -> hidden... -> n_actions`` with ReLU."""
    sizes = [obs_dim, *hidden, n_actions]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def linear_schedule(start: float, end: float, duration: int, t: int) -> float:
    slope = (end - start) / max(duration, 1)
    return max(slope * t + start, end)


@dataclass
class DQNAgent:
    """A trained Q-network with the functions an explainer needs (numpy in, numpy out)."""

    obs_dim: int
    n_actions: int
    hidden: tuple[int, ...]
    state_dict: dict[str, torch.Tensor]
    config: dict[str, Any] = field(default_factory=dict)
    episode_returns: np.ndarray = field(default_factory=lambda: np.zeros(0))
    train_seconds: float = 0.0
    #: with ``record=True``: obs, action, reward, next_obs, done, epsilon, greedy (per step)
    buffer: dict[str, np.ndarray] | None = None

    def network(self) -> nn.Sequential:
        net = q_network(self.obs_dim, self.hidden, self.n_actions)
        net.load_state_dict(self.state_dict)
        return net.eval()

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """``(B, F)`` observations -> ``(B, A)`` Q-values."""
        net = self.__dict__.setdefault("_net", None) or self.network()
        self.__dict__["_net"] = net
        with torch.no_grad():
            return net(torch.as_tensor(np.asarray(obs), dtype=torch.float32)).double().numpy()

    def policy(self, obs: np.ndarray) -> np.ndarray:
        """Greedy action probabilities (one-hot; ties go to the first action)."""
        q = self.q_values(obs)
        return np.eye(self.n_actions)[q.argmax(axis=1)]

    def value(self, obs: np.ndarray) -> np.ndarray:
        """The agent's prediction of its return, ``max_a Q(s, a)``."""
        return self.q_values(obs).max(axis=1)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_net"}


#: ``hook(step, q_net, buffer, loss)``: after environment step ``step`` (0-based); ``buffer``
#: holds the arrays filled up to ``step`` inclusive; ``loss`` is the TD loss of the update made
#: at this step, or None when no update was made.
DQNHook = Callable[[int, nn.Module, dict[str, np.ndarray], float | None], None]


def train_dqn(
    env: gymnasium.Env,
    config: DQNConfig,
    *,
    progress: bool = True,
    record: bool = False,
    hook: DQNHook | None = None,
) -> DQNAgent:
    """Train a DQN agent on ``env`` (discrete actions, vector observations).

    ``record=True`` keeps the replay buffer, with each step's epsilon and greedy action, on the
    returned agent; ``hook`` is called after every environment step (see :data:`DQNHook`).
    Neither changes the agent's random draws or its training.
    """
    from tqdm.auto import tqdm

    if not isinstance(env.action_space, gymnasium.spaces.Discrete):
        raise ValueError("DQN needs a Discrete action space")
    obs_dim = int(np.prod(env.observation_space.shape))
    n_actions = int(env.action_space.n)
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    q_net = q_network(obs_dim, config.hidden, n_actions)
    target = q_network(obs_dim, config.hidden, n_actions)
    target.load_state_dict(q_net.state_dict())
    optimizer = torch.optim.Adam(q_net.parameters(), lr=config.learning_rate)

    # Replay buffer: every transition (buffer size = total steps, as in the authors' runs).
    n = config.total_steps
    obs_buf = np.zeros((n, obs_dim), np.float32)
    next_buf = np.zeros((n, obs_dim), np.float32)
    act_buf = np.zeros(n, np.int64)
    rew_buf = np.zeros(n, np.float32)
    done_buf = np.zeros(n, np.float32)
    eps_buf = np.zeros(n, np.float32)
    greedy_buf = np.zeros(n, np.int64)
    buffers = {
        "obs": obs_buf,
        "action": act_buf,
        "reward": rew_buf,
        "next_obs": next_buf,
        "done": done_buf,
        "epsilon": eps_buf,
        "greedy": greedy_buf,
    }

    start = time.perf_counter()
    returns, ep_return = [], 0.0
    obs, _ = env.reset(seed=config.seed)
    env.action_space.seed(config.seed)
    explore_steps = int(config.exploration_fraction * n)
    learning_starts = config.starts()
    for step in tqdm(range(n), desc="DQN", disable=not progress, leave=False, mininterval=1.0):
        # 1. act epsilon-greedily
        epsilon = linear_schedule(config.start_e, config.end_e, explore_steps, step)
        greedy = -1
        if record or hook is not None:  # the greedy action at this step, for pi_t
            with torch.no_grad():
                greedy = int(q_net(torch.as_tensor(obs[None], dtype=torch.float32)).argmax())
        if rng.random() < epsilon:
            action = int(rng.integers(n_actions))
        elif greedy >= 0:
            action = greedy
        else:
            with torch.no_grad():
                action = int(q_net(torch.as_tensor(obs[None], dtype=torch.float32)).argmax())
        next_obs, reward, terminated, truncated, _ = env.step(action)
        ep_return += float(reward)

        # 2. store the transition (a truncated episode still bootstraps from next_obs)
        obs_buf[step], next_buf[step], act_buf[step] = obs, next_obs, action
        rew_buf[step], done_buf[step] = reward, float(terminated)
        eps_buf[step], greedy_buf[step] = epsilon, greedy
        if terminated or truncated:
            returns.append(ep_return)
            ep_return = 0.0
            obs, _ = env.reset()
        else:
            obs = next_obs

        # 3. learn: one minibatch TD step, then a soft target update
        loss = None
        if step >= learning_starts and step % config.train_frequency == 0:
            idx = torch.as_tensor(rng.integers(step + 1, size=config.batch_size))
            o, o2 = torch.from_numpy(obs_buf)[idx], torch.from_numpy(next_buf)[idx]
            a, r, d = (
                torch.from_numpy(act_buf)[idx],
                torch.from_numpy(rew_buf)[idx],
                torch.from_numpy(done_buf)[idx],
            )
            with torch.no_grad():
                td_target = r + config.gamma * target(o2).max(dim=1).values * (1.0 - d)
            q = q_net(o).gather(1, a[:, None]).squeeze(1)
            loss = nn.functional.mse_loss(q, td_target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                for p_t, p in zip(target.parameters(), q_net.parameters(), strict=True):
                    p_t.mul_(1.0 - config.tau).add_(config.tau * p)
        if hook is not None:
            hook(step, q_net, buffers, None if loss is None else float(loss.detach()))
    return DQNAgent(
        obs_dim=obs_dim,
        n_actions=n_actions,
        hidden=tuple(config.hidden),
        state_dict={k: v.clone() for k, v in q_net.state_dict().items()},
        config=asdict(config),
        episode_returns=np.asarray(returns),
        train_seconds=time.perf_counter() - start,
        buffer={k: v.copy() for k, v in buffers.items()} if record else None,
    )


def trained_dqn(
    domain: str,
    make_env: Any,
    config: DQNConfig,
    *,
    env_config: dict[str, Any] | None = None,
    cache: bool = True,
    record: bool = False,
) -> DQNAgent:
    """Train once per (domain, environment settings, DQN configuration) and cache on disk.

    ``make_env()`` builds a fresh environment; ``domain`` and ``env_config`` name it in the
    cache key (so two domains never share an agent).
    """
    from ..repro import cached

    key = {"domain": domain, "env": env_config or {}, "dqn": asdict(config)}
    if record:  # an agent with its replay buffer (``train_dqn(record=True)``)
        key["record"] = True

    def compute() -> DQNAgent:
        torch_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return train_dqn(make_env(), config, record=record)
        finally:
            torch.set_num_threads(torch_threads)

    # keyed by the DQN and the environments' code only: an edit to an explainer or a
    # notebook helper does not retrain every agent
    return cached(
        "dqn_agent", key, compute, enabled=cache, code=("agents/dqn.py", "domains", "mdp")
    )
