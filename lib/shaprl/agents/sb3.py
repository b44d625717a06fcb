"""stable-baselines3 models -> :class:`~shaprl.agents.adapters.AgentFunctions`.

What is explained for each algorithm (observations in, numpy out, no gradient):

* **DQN**: the greedy policy in the Q-network, with tied actions sharing the probability
  (SB3's ``predict`` breaks ties by index), or epsilon-greedy with ``epsilon=``;
  value = sum_a pi(a|s) Q(s, a) (= max_a Q for the greedy policy).
* **PPO, A2C** (discrete actions): the policy's own categorical distribution, the one the
  agent samples from while training (``predict(deterministic=False)``); value = the critic
  V(s). ``greedy=True`` explains the arg-max policy of ``predict(deterministic=True)``
  instead (ties shared).
* **SAC, TD3** (continuous actions, SVERL Sec. 4.4): the explained action is the
  deterministic action tanh(mu(s)) rescaled to the action bounds -- what
  ``predict(deterministic=True)`` executes, and TD3's only action. For SAC it is not the mean
  of the squashed distribution E[tanh(u)], u ~ N(mu, sigma) (Jensen: E[tanh u] is pulled
  towards 0 by the noise); we take tanh(mu) because it is the deployed agent's action and
  the argument the critic is trained to rate, and because it needs no sampling.
  ``sac_action="squashed_mean"`` explains E[tanh(u)] instead, by ``n_samples`` seeded draws.
  Value = min over the twin critics of Q(s, a(s)), the pessimistic estimate SB3's targets
  use (SAC's entropy bonus is left out).
"""

from __future__ import annotations

import numpy as np
import torch

from .adapters import AgentFunctions, from_q_function, greedy_probabilities

SAC_ACTIONS = ("deterministic", "squashed_mean")


def from_sb3(
    model,
    *,
    epsilon: float | None = None,
    greedy: bool = False,
    tie_atol: float = 1e-6,
    sac_action: str = "deterministic",
    n_samples: int = 256,
    seed: int = 0,
) -> AgentFunctions:
    """Adapt a trained SB3 DQN, PPO, A2C, SAC or TD3 model (see the module docstring).

    ``epsilon`` (DQN): explain the epsilon-greedy policy (``"final"`` uses the model's
    ``exploration_final_eps``); default greedy. ``greedy`` (PPO/A2C): explain the arg-max of
    the distribution instead of the distribution. ``tie_atol``: network outputs closer than
    this count as ties.
    """
    kind = type(model).__name__
    policy = getattr(model, "policy", None)
    if policy is None or not hasattr(policy, "obs_to_tensor"):
        raise TypeError(f"{kind} is not a stable-baselines3 model (no .policy.obs_to_tensor)")
    policy.set_training_mode(False)

    def tensor(obs: np.ndarray) -> torch.Tensor:
        t, _ = policy.obs_to_tensor(np.asarray(obs))
        return t

    if kind == "DQN":
        eps = 0.0 if epsilon is None else epsilon
        if eps == "final":
            eps = float(model.exploration_final_eps)

        def q_fn(obs: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return model.q_net(tensor(obs)).cpu().numpy().astype(float)

        agent = from_q_function(q_fn, model.action_space.n, epsilon=eps, tie_atol=tie_atol)
        return AgentFunctions(
            agent.policy, agent.value, agent.n_actions, "SB3 DQN: " + agent.description
        )
    if kind in ("PPO", "A2C"):
        if not hasattr(model.action_space, "n"):
            raise TypeError(f"{kind} with a continuous action space: only discrete is supported")

        def probs(obs: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                p = policy.get_distribution(tensor(obs)).distribution.probs.cpu().numpy()
            p = p.astype(float)
            return greedy_probabilities(p, tie_atol=tie_atol) if greedy else p

        def value(obs: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return policy.predict_values(tensor(obs)).cpu().numpy().reshape(-1).astype(float)

        what = "arg-max of the policy (ties shared)" if greedy else "the policy's distribution"
        return AgentFunctions(
            probs, value, int(model.action_space.n), f"SB3 {kind}: {what}; value = critic V(s)"
        )
    if kind in ("SAC", "TD3"):
        return _continuous(model, kind, tensor, sac_action, n_samples, seed)
    raise TypeError(f"no adapter for SB3 {kind}; supported: DQN, PPO, A2C, SAC, TD3")


def _continuous(model, kind, tensor, sac_action, n_samples, seed) -> AgentFunctions:
    if sac_action not in SAC_ACTIONS:
        raise ValueError(f"sac_action must be one of {SAC_ACTIONS}; got {sac_action!r}")
    policy = model.policy
    low, high = model.action_space.low, model.action_space.high

    def scaled(obs: np.ndarray) -> torch.Tensor:
        """The explained action in SB3's [-1, 1] units (what the critics take)."""
        t = tensor(obs)
        with torch.no_grad():
            if kind == "TD3" or sac_action == "deterministic":
                return policy.actor(t, deterministic=True) if kind == "SAC" else policy.actor(t)
            mean, log_std, _ = policy.actor.get_action_dist_params(t)
            gen = torch.Generator().manual_seed(seed)
            noise = torch.randn((n_samples, *mean.shape), generator=gen, dtype=mean.dtype)
            return torch.tanh(mean[None] + log_std.exp()[None] * noise).mean(dim=0)

    def action(obs: np.ndarray) -> np.ndarray:
        a = scaled(obs).cpu().numpy().astype(float)
        return low + 0.5 * (a + 1.0) * (high - low)

    def value(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            qs = policy.critic(tensor(obs), scaled(obs))
            return torch.min(torch.cat(qs, dim=1), dim=1).values.cpu().numpy().astype(float)

    what = (
        "deterministic action tanh(mu(s)) in env units"
        if kind == "TD3" or sac_action == "deterministic"
        else f"mean of the squashed distribution E[tanh(u)] ({n_samples} draws, seed {seed})"
    )
    desc = f"SB3 {kind}: {what}; value = min of the twin critics at that action"
    return AgentFunctions(None, value, int(np.prod(model.action_space.shape)), desc, action=action)


ALGORITHMS = ("DQN", "PPO", "A2C", "SAC", "TD3")


def make_env(env_id: str, env_kwargs: dict | None = None, max_episode_steps: int | None = None):
    """``gymnasium.make(env_id, **env_kwargs)`` with an optional time limit."""
    import gymnasium as gym

    kwargs = dict(env_kwargs or {})
    if max_episode_steps is not None:
        kwargs["max_episode_steps"] = int(max_episode_steps)
    return gym.make(env_id, **kwargs)


def train_sb3(
    algo: str,
    env_id: str,
    *,
    total_timesteps: int,
    seed: int,
    env_kwargs: dict | None = None,
    max_episode_steps: int | None = None,
    hyper: dict | None = None,
    cache: bool = True,
):
    """Train (or load from the cache) an SB3 agent; returns ``(model, info)``.

    The cache key is the whole configuration (algorithm, environment, budget, seed,
    hyper-parameters, SB3 and torch versions) and the library's code
    (:func:`shaprl.repro.cached`). Training runs on the CPU with one torch thread: these
    networks are tiny, and committed tables come from CPU runs. ``info`` holds the training
    wall time of the run that made the model and whether it came from the cache.
    """
    import io
    import time

    import stable_baselines3 as sb3

    from ..repro import cached

    if algo not in ALGORITHMS:
        raise ValueError(f"algo must be one of {ALGORITHMS}; got {algo!r}")
    cls = getattr(sb3, algo)
    config = {
        "algo": algo,
        "env_id": env_id,
        "env_kwargs": env_kwargs or {},
        "max_episode_steps": max_episode_steps,
        "total_timesteps": int(total_timesteps),
        "seed": int(seed),
        "hyper": hyper or {},
        "sb3": sb3.__version__,
        "torch": torch.__version__,
    }
    fresh = {"trained": False}

    def compute() -> dict:
        torch.set_num_threads(1)
        env = make_env(env_id, env_kwargs, max_episode_steps)
        model = cls("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **(hyper or {}))
        start = time.perf_counter()
        model.learn(total_timesteps=int(total_timesteps))
        buf = io.BytesIO()
        model.save(buf)
        fresh["trained"] = True
        return {"zip": buf.getvalue(), "train_seconds": time.perf_counter() - start}

    blob = cached("sb3_agents", config, compute, enabled=cache)
    env = make_env(env_id, env_kwargs, max_episode_steps)
    model = cls.load(io.BytesIO(blob["zip"]), env=env, device="cpu")
    info = {**config, "train_seconds": blob["train_seconds"], "from_cache": not fresh["trained"]}
    return model, info
