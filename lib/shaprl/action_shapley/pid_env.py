"""The PID loop of Eq. 3 as an RL environment: inside world models (batched) and on the system.

The agent's action is six numbers in ``[-1, 1]``: the gains ``(k_p, k_i, k_d)`` of each of the
two configuration dimensions, times ``GAIN = 0.5``. One step (one aggregation window):

.. math::
    a_t = \\mathrm{clip}_{[0,1]}\\big(a_{t-1} + \\mathrm{clip}_{\\pm m}(K \\cdot [e_{t-1},\\ I_{t-1},\\ D_{t-1}])\\big),
    \\qquad e = \\mathrm{clip}((thr - s) / thr, -1, 1),\\ I \\mathrel{+}= e,\\ D = e - e_{prev}

and the next statistic ``s_t`` comes from the world model (training) or from the simulator
(evaluation, :func:`evaluate_on_system`); ``m`` is the case study's physical action step per
window (``CaseStudy.max_step``, normalised: :attr:`~.case_studies.CaseStudy.step_limit`),
documented in :mod:`.case_studies`. Observation: ``(e, I / 3, D, a_1, a_2)``. The
episode ends when ``s_t`` is in the goal band; it is truncated after ``HORIZON`` steps.
Training episodes start at configurations drawn uniformly from the box (each member from its
own stream), so the agent learns a controller for the whole range its world model covers;
evaluation starts at Table 6's initial action (decision: with Table 6's start alone, a model
that predicts the start to be at the goal gives the learner no signal at all).
Rewards given to the learner are divided by the threshold; cumulative rewards reported as
utilities are in the statistic's units. Decisions behind these choices: :mod:`.case_studies`.

:class:`BatchedPIDEnv` runs ``R`` members x ``E`` copies at once in torch, member ``r`` in
its own world model; :class:`PIDEnv` is the same dynamics as a gymnasium env for
stable-baselines3 (one member, one copy).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from .case_studies import CaseStudy
from .world_model import RBFParams

GAIN = 0.5
HORIZON = 100  #: RL steps; never binds a converging all-data agent (notebook 20)
I_MAX = 3.0
OBS_DIM = 5
ACT_DIM = 6


class BatchedRBF:
    """Torch evaluator of stacked :class:`RBFParams` (member ``r`` uses its own network)."""

    def __init__(self, params: RBFParams, device: torch.device | str = "cpu") -> None:
        t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=device)  # noqa: E731
        self.shift, self.mix, self.centres = t(params.shift), t(params.mix), t(params.centres)
        self.gamma, self.weights = t(params.gamma), t(params.weights)
        self.valid = torch.as_tensor(params.valid, device=device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``(R, N, 3) -> (R, N, 2)``."""
        z = torch.bmm(x - self.shift[:, None], self.mix)
        # squared distances to the centres, elementwise: torch.cdist takes a matmul route for
        # more than 25 centres whose rounding depends on a member's position in the batch
        # (measured on an AMD EPYC, torch's AVX2 kernels), which made a subset's SAC agent
        # depend on its batch
        d2 = (z[:, :, None, :] - self.centres[:, None, :, :]).pow(2).sum(-1)
        phi = torch.cat(
            [torch.ones_like(z[..., :1]), z, torch.exp(-self.gamma[:, None, None] * d2)], -1
        )
        return torch.bmm(phi, self.weights)


class BatchedPIDEnv:
    """``R`` members x ``E`` copies of the PID loop, each member inside its own world model."""

    def __init__(
        self,
        case: CaseStudy,
        model: BatchedRBF,
        n_copies: int = 1,
        starts: torch.Tensor | None = None,
    ) -> None:
        """``starts (R, P, 2)``: normalised initial configurations of successive training
        episodes of each member (cycled per copy); ``None`` starts every episode at Table 6's
        initial action."""
        self.case, self.model = case, model
        self.R, self.E = model.weights.shape[0], n_copies
        dev = model.weights.device
        self.a0 = torch.as_tensor(case.normalise(case.initial), dtype=torch.float32, device=dev)
        self.starts = starts
        self.episode = torch.arange(n_copies, device=dev).repeat(self.R, 1)  # (R, E)
        self.lo, self.hi = case.band
        self.step_limit = torch.tensor(case.step_limit, dtype=torch.float32, device=dev)
        self.reset_all()

    def _predict(self, s: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([(s / self.case.cap)[..., None], a], -1)  # (R, E, 3)
        y = self.model(x)
        stat = y[..., 0].clamp(0.0, 1.0) * self.case.cap
        return stat, y[..., 1].clamp(max=0.0)

    def _reset(self, idx: torch.Tensor) -> None:
        """Reset the copies where ``idx`` (R, E) is True."""
        if self.starts is None:
            a = self.a0.expand(self.R, self.E, 2)
        else:
            pick = (self.episode % self.starts.shape[1])[..., None].expand(-1, -1, 2)
            a = torch.gather(self.starts, 1, pick)
            self.episode = torch.where(idx, self.episode + self.E, self.episode)
        s0, _ = self._predict(
            torch.full((self.R, self.E), self.case.threshold, device=self.a0.device), a
        )
        m = idx
        self.a = torch.where(m[..., None], a, self.a)
        self.s = torch.where(m, s0, self.s)
        e = self._error(s0)
        self.e = torch.where(m, e, self.e)
        self.i = torch.where(m, e.clamp(-I_MAX, I_MAX), self.i)
        self.d = torch.where(m, torch.zeros_like(e), self.d)
        self.t = torch.where(m, torch.zeros_like(self.t), self.t)

    def reset_all(self) -> torch.Tensor:
        dev = self.a0.device
        shape = (self.R, self.E)
        self.a = torch.zeros(*shape, 2, device=dev)
        self.s, self.e, self.i, self.d = (torch.zeros(shape, device=dev) for _ in range(4))
        self.t = torch.zeros(shape, dtype=torch.long, device=dev)
        self._reset(torch.ones(shape, dtype=torch.bool, device=dev))
        return self.obs()

    def _error(self, s: torch.Tensor) -> torch.Tensor:
        return ((self.case.threshold - s) / self.case.threshold).clamp(-1.0, 1.0)

    def obs(self) -> torch.Tensor:
        return torch.stack([self.e, self.i / I_MAX, self.d, self.a[..., 0], self.a[..., 1]], -1)

    def step(self, action: torch.Tensor):
        """``action (R, E, 6)`` in [-1, 1] -> obs, reward, terminated, truncated (auto-reset).

        Returns the observation *after* auto-reset and the pre-reset final observation.
        """
        gains = GAIN * action.clamp(-1.0, 1.0).view(self.R, self.E, 2, 3)
        pid = torch.stack([self.e, self.i, self.d], -1)[..., None, :]
        delta = torch.maximum(
            torch.minimum((gains * pid).sum(-1), self.step_limit), -self.step_limit
        )
        self.a = (self.a + delta).clamp(0.0, 1.0)
        stat, rew = self._predict(self.s, self.a)
        done = (stat >= self.lo) & (stat <= self.hi)
        reward = torch.where(done, torch.zeros_like(rew), rew)
        e = self._error(stat)
        self.d, self.e = e - self.e, e
        self.i = (self.i + e).clamp(-I_MAX, I_MAX)
        self.s, self.t = stat, self.t + 1
        truncated = (self.t >= HORIZON) & ~done
        final_obs = self.obs()
        self._reset(done | truncated)
        return self.obs(), reward, done, truncated, final_obs


class PIDEnv(gym.Env):
    """One copy of :class:`BatchedPIDEnv` as a gymnasium env (for stable-baselines3)."""

    metadata: dict = {"render_modes": []}

    def __init__(self, case: CaseStudy, params: RBFParams, random_start: bool = True) -> None:
        self.inner = BatchedPIDEnv(case, BatchedRBF(params), 1)
        self.random_start = random_start
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (ACT_DIM,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        start = self.np_random.random((1, 1, 2)).astype(np.float32)
        self.inner.starts = torch.as_tensor(start) if self.random_start else None
        return self.inner.reset_all()[0, 0].numpy(), {}

    def step(self, action):
        act = torch.as_tensor(np.asarray(action, dtype=np.float32)).view(1, 1, ACT_DIM)
        _, reward, done, trunc, final = self.inner.step(act)  # auto-resets; SB3 resets too
        # gymnasium: return the final observation of the episode; SB3 resets on its own.
        return final[0, 0].numpy(), float(reward[0, 0]), bool(done[0, 0]), bool(trunc[0, 0]), {}


def evaluate_on_system(
    case: CaseStudy, policy, n_members: int, seed: int, horizon: int = HORIZON
) -> dict[str, np.ndarray]:
    """Run ``n_members`` deterministic policies on the simulated system (common noise).

    ``policy(obs (R, 1, 5) tensor) -> (R, 1, 6)`` actions in [-1, 1]. Every member sees the
    same noise stream (common random numbers): differences come from the agents only.
    Returns per member the cumulative reward (statistic units), the convergence time (steps,
    ``horizon + 1`` when never), whether the goal was met, and the action/statistic paths.
    """
    rng = np.random.default_rng([seed, 7919])
    r = n_members
    lo, hi = case.band
    a = np.tile(case.normalise(case.initial), (r, 1))
    noise_seed = rng.integers(2**31)
    stat = case.aggregate(
        case.simulate_windows(
            case.denormalise(a[:1]), 1, np.random.default_rng(noise_seed), shared_noise=True
        )
    )[:, 0].repeat(r)
    e = np.clip((case.threshold - stat) / case.threshold, -1, 1)
    i, d = np.clip(e, -I_MAX, I_MAX), np.zeros(r)
    total, conv = np.zeros(r), np.full(r, horizon + 1)
    active = ~((stat >= lo) & (stat <= hi))
    conv[~active] = 0
    path_a, path_s = [case.denormalise(a)], [stat.copy()]
    for t in range(1, horizon + 1):
        obs = np.stack([e, i / I_MAX, d, a[:, 0], a[:, 1]], -1)
        with torch.no_grad():
            act = policy(torch.as_tensor(obs, dtype=torch.float32)[:, None])[:, 0].numpy()
        gains = GAIN * np.clip(act, -1, 1).reshape(r, 2, 3)
        pid = np.stack([e, i, d], -1)[:, None, :]
        limit = np.asarray(case.step_limit)
        new_a = np.clip(a + np.clip((gains * pid).sum(-1), -limit, limit), 0.0, 1.0)
        a = np.where(active[:, None], new_a, a)
        # one shared noise draw per step, applied to every member's configuration
        step_rng = np.random.default_rng([noise_seed, t])
        new_s = case.aggregate(
            case.simulate_windows(case.denormalise(a), 1, step_rng, shared_noise=True)
        )[:, 0]
        stat = np.where(active, new_s, stat)
        reached = active & (stat >= lo) & (stat <= hi)
        total += np.where(active & ~reached, -np.abs(case.threshold - stat), 0.0)
        conv[reached] = t
        active &= ~reached
        new_e = np.clip((case.threshold - stat) / case.threshold, -1, 1)
        d, e = new_e - e, new_e
        i = np.clip(i + e, -I_MAX, I_MAX)
        path_a.append(case.denormalise(a))
        path_s.append(stat.copy())
    return {
        "reward": total,
        "convergence": conv,
        "success": conv <= horizon,
        "actions": np.stack(path_a, 1),
        "statistics": np.stack(path_s, 1),
    }
