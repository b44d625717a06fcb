"""Simulators for Monte Carlo SVERL: environments that can be put into a given state.

This module is at the bottom of the package (beside :mod:`shaprl.mdp`): the estimators
(:mod:`shaprl.sverl`) and the domains (:mod:`shaprl.domains`) both build on it, and it
imports neither. ``shaprl.sverl.simulators`` re-exports it.

Monte Carlo SVERL (SVERL Sec. 10.2) needs no model of the environment, only a simulator
that can (i) start episodes, (ii) be reset to the explained state, and (iii) step. The
:class:`Simulator` protocol names exactly that; :class:`GymSimulator` adapts any
gymnasium environment with a user-supplied ``set_state(env, features)``::

    sim = GymSimulator(
        lambda: gymnasium.make("Taxi-v4").unwrapped,
        set_state=lambda env, f: setattr(env, "s", env.encode(*f)),
        observe=lambda env, obs: np.array(list(env.decode(obs))),
    )

States are identified by their feature rows: the explained agent's policy sees features,
and a state is "revisited" when its feature row recurs. :func:`collect_states` samples the
on-policy (steady-state) distribution by running the policy, fanned out with joblib.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from joblib import Parallel, delayed
from tqdm.auto import tqdm

PolicyFn = Callable[[np.ndarray], np.ndarray]


@runtime_checkable
class Simulator(Protocol):
    """What Monte Carlo SVERL needs from an environment (feature rows in, feature rows out)."""

    n_actions: int

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start an episode from the start distribution; return its first feature row."""

    def reset_to(self, features: np.ndarray) -> None:
        """Put the simulator into the state with these features (the agent to act)."""

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool]:
        """Act; return (next features, reward, terminated, truncated)."""

    def valid_actions(self, features: np.ndarray) -> np.ndarray:
        """``(n_actions,)`` booleans: which actions exist in the state with these features."""


@dataclass
class GymSimulator:
    """A gymnasium environment plus a way to set its state.

    Parameters
    ----------
    env:
        A gymnasium environment, or a zero-argument factory of one. Every parallel job works
        on its own copy, so jobs never share an environment's state.
    set_state:
        ``set_state(env, features)`` puts ``env`` (after a ``reset``) into the state with
        these features. For classic toy-text envs this sets ``env.unwrapped.s``.
    observe:
        ``observe(env, obs)`` turns an observation into the feature row the policy sees
        (default: the observation itself, as a flat array).
    valid_actions:
        ``valid_actions(features)`` -> booleans over actions (default: all valid). The
        outcome characteristic renormalises over them (SVERL Remark 35).
    """

    env: Any
    set_state: Callable[[Any, np.ndarray], None]
    observe: Callable[[Any, Any], np.ndarray] | None = None
    valid_actions_fn: Callable[[np.ndarray], np.ndarray] | None = None

    def __post_init__(self) -> None:
        if callable(self.env) and not hasattr(self.env, "step"):
            self.env = self.env()
        for method in ("reset", "step", "action_space"):
            if not hasattr(self.env, method):
                raise TypeError(f"env must be a gymnasium environment (it has no {method!r})")
        if not hasattr(self.env.action_space, "n"):
            raise TypeError(
                "Monte Carlo SVERL explains discrete actions; the env's action space "
                f"{self.env.action_space} has no .n"
            )
        self.n_actions = int(self.env.action_space.n)

    def _features(self, obs) -> np.ndarray:
        if self.observe is None:
            return np.asarray(obs).reshape(-1)
        return np.asarray(self.observe(self.env, obs)).reshape(-1)

    def reset(self, seed: int | None = None) -> np.ndarray:
        obs, _ = self.env.reset(seed=seed)
        return self._features(obs)

    def reset_to(self, features: np.ndarray) -> None:
        self.env.reset()
        self.set_state(self.env, np.asarray(features))

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool]:
        obs, reward, terminated, truncated, _ = self.env.step(int(action))
        return self._features(obs), float(reward), bool(terminated), bool(truncated)

    def valid_actions(self, features: np.ndarray) -> np.ndarray:
        if self.valid_actions_fn is None:
            return np.ones(self.n_actions, bool)
        valid = np.asarray(self.valid_actions_fn(np.asarray(features)), bool).reshape(-1)
        if valid.shape != (self.n_actions,):
            raise ValueError(
                f"valid_actions returned shape {valid.shape}; need ({self.n_actions},)"
            )
        return valid


def check_simulator(sim: Any) -> Simulator:
    """The simulator itself, or a clear error naming what it lacks."""
    missing = [m for m in ("reset", "reset_to", "step", "valid_actions") if not hasattr(sim, m)]
    if missing or not hasattr(sim, "n_actions"):
        raise TypeError(
            f"{type(sim).__name__} is not a simulator for Monte Carlo SVERL (missing "
            f"{missing or ['n_actions']}). Wrap a gymnasium env as GymSimulator(env, set_state=...)."
        )
    return sim


class PolicySampler:
    """Draws actions of a policy function, memoising its action distribution per feature row."""

    def __init__(
        self,
        policy: PolicyFn,
        n_actions: int,
        rng: np.random.Generator,
        cache: dict[bytes, np.ndarray] | None = None,
    ) -> None:
        self.policy, self.n_actions, self.rng = policy, n_actions, rng
        self._cdf: dict[bytes, np.ndarray] = {} if cache is None else cache

    def __call__(self, features: np.ndarray) -> int:
        key = features.tobytes()
        cdf = self._cdf.get(key)
        if cdf is None:
            p = np.asarray(self.policy(features[None]), float).reshape(-1)
            check_probabilities(p[None], features[None], self.n_actions)
            cdf = self._cdf[key] = np.cumsum(p)
        a = int(np.searchsorted(cdf, self.rng.random() * cdf[-1], side="right"))
        return min(a, self.n_actions - 1)


def check_probabilities(p: np.ndarray, rows: np.ndarray, n_actions: int) -> np.ndarray:
    """Policy output checked to be ``(k, n_actions)`` distributions, naming the first bad row."""
    p = np.asarray(p, float)
    if p.shape != (len(rows), n_actions):
        raise ValueError(
            f"the policy returned shape {p.shape} for {len(rows)} feature rows; it must return "
            f"action probabilities of shape (rows, {n_actions})"
        )
    bad = ~np.isfinite(p).all(axis=1)
    bad |= (p < 0).any(axis=1) | ~np.isclose(np.where(bad[:, None], 1.0, p).sum(axis=1), 1.0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"the policy's output at feature row {tuple(rows[i].tolist())} is not a probability "
            f"distribution (NaN, negative or not summing to 1): {p[i].tolist()}"
        )
    return p


@dataclass(frozen=True)
class StateSample:
    """Feature rows of the states visited by a policy (a sample of its steady state)."""

    features: np.ndarray  #: (N, F) one row per decision stage
    episode: np.ndarray  #: (N,) which episode each row comes from (0..episodes-1)
    truncated: int  #: episodes cut at ``max_episode_steps``

    @property
    def episodes(self) -> int:
        return int(self.episode.max()) + 1 if len(self.episode) else 0

    @property
    def steps(self) -> int:
        return len(self.features)


def collect_states(
    simulator: Simulator,
    policy: PolicyFn,
    n_steps: int,
    *,
    seed: int,
    max_episode_steps: int = 10_000,
    steps_per_job: int = 10_000,
    progress: bool | None = None,
) -> StateSample:
    """Run the policy from the start distribution and record every state it acts in.

    Normalised visit counts over whole episodes estimate the steady state of episodic tasks
    (SVERL Def. 15: expected visits per episode, normalised). Work is split into jobs of
    about ``steps_per_job`` steps; each job completes its last episode, so the sample holds
    only whole episodes and has at least ``n_steps`` rows. Jobs run through joblib: set
    ``joblib.parallel_config(n_jobs=..., backend=...)`` to fan them out. The split depends
    only on ``n_steps`` and ``steps_per_job``, so the sample is the same for any backend.
    """
    check_simulator(simulator)
    if n_steps < 1:
        raise ValueError(f"n_steps must be positive; got {n_steps}")
    n_jobs = -(-n_steps // steps_per_job)
    seeds = np.random.SeedSequence(seed).spawn(n_jobs)
    quota = [min(steps_per_job, n_steps - j * steps_per_job) for j in range(n_jobs)]
    jobs = (
        delayed(_collect_job)(simulator, policy, q, s, max_episode_steps)
        for q, s in zip(quota, seeds, strict=True)
    )
    parts = Parallel(return_as="generator")(jobs)
    show = n_jobs >= 8 if progress is None else progress
    parts = list(tqdm(parts, total=n_jobs, desc="collecting states", disable=not show, leave=False))
    offsets = np.cumsum([0] + [p[1][-1] + 1 for p in parts[:-1]])
    return StateSample(
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] + o for p, o in zip(parts, offsets, strict=True)]),
        sum(p[2] for p in parts),
    )


def _collect_job(sim, policy, quota: int, seed: np.random.SeedSequence, max_episode_steps: int):
    sim = copy.deepcopy(sim)
    rng = np.random.default_rng(seed)
    act = PolicySampler(policy, sim.n_actions, rng)
    rows: list[np.ndarray] = []
    episode: list[int] = []
    episodes = truncated = 0
    feats = sim.reset(seed=int(rng.integers(2**31)))
    t = 0
    while True:
        rows.append(feats)
        episode.append(episodes)
        feats, _, terminated, cut = sim.step(act(feats))
        t += 1
        if terminated or cut or t >= max_episode_steps:
            episodes += 1
            truncated += int(not terminated)
            if len(rows) >= quota:
                break
            feats, t = sim.reset(), 0
    return np.asarray(rows), np.asarray(episode, dtype=np.int64), truncated
