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
        # one (R, 1, C) plane per coordinate of the centres, for the distance below
        self._centre_planes = [self.centres[:, None, :, k].contiguous() for k in range(3)]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``(R, N, 3) -> (R, N, 2)``."""
        z = torch.bmm(x - self.shift[:, None], self.mix)
        # squared distances to the centres, elementwise: torch.cdist takes a matmul route for
        # more than 25 centres whose rounding depends on a member's position in the batch
        # (measured on an AMD EPYC, torch's AVX2 kernels), which made a subset's SAC agent
        # depend on its batch. Summed coordinate by coordinate, ((d0^2 + d1^2) + d2^2): the
        # order in which ``.pow(2).sum(-1)`` over the last axis of (R, N, C, 3) adds them
        # (bitwise the same, tested), without the (R, N, C, 3) intermediate and its strided
        # reduction (3x faster)
        d2 = None
        for k, plane in enumerate(self._centre_planes):
            dk = z[..., k : k + 1] - plane
            d2 = dk * dk if d2 is None else d2 + dk * dk
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
        self.episode = torch.arange(n_copies, device=dev).repeat(self.R, 1)  # (R, E)
        self.lo, self.hi = case.band
        self.step_limit = torch.tensor(case.step_limit, dtype=torch.float32, device=dev)
        self._s_a0 = self._start_statistic(self.a0.expand(self.R, self.E, 2))
        self.starts = starts
        self.reset_all()

    @property
    def starts(self) -> torch.Tensor | None:
        """``(R, P, 2)`` initial configurations of successive episodes (``None``: Table 6's)."""
        return self._starts

    @starts.setter
    def starts(self, value: torch.Tensor | None) -> None:
        self._starts = value
        self._s_pool = None if value is None else self._pool_statistics(value)

    def _start_statistic(self, a: torch.Tensor) -> torch.Tensor:
        """The model's statistic ``(R, E)`` at start configurations ``a (R, E, 2)``."""
        thr = torch.full((self.R, self.E), self.case.threshold, device=self.a0.device)
        return self._predict(thr, a)[0]

    def _pool_statistics(self, starts: torch.Tensor) -> torch.Tensor | None:
        """The start statistic of every pool entry ``(R, P)``, computed once.

        An episode's start statistic depends on its start alone, so it is looked up on reset
        instead of evaluating the world model a second time every step. Copy ``e`` only ever
        draws entries ``p = e (mod E)`` (its episode counter advances by ``E``), so the pool
        is evaluated ``E`` entries at a time, entry ``p`` in row ``p mod E``: the very call
        (shapes, rows, kernels) a reset would make, hence bitwise the same statistic. A pool
        whose size is not a multiple of ``E`` is evaluated on reset, as before (``None``).
        """
        p = starts.shape[1]
        if p % self.E:
            return None
        parts = [self._start_statistic(starts[:, i : i + self.E]) for i in range(0, p, self.E)]
        return torch.cat(parts, 1)

    def _predict(self, s: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([(s / self.case.cap)[..., None], a], -1)  # (R, E, 3)
        y = self.model(x)
        stat = y[..., 0].clamp(0.0, 1.0) * self.case.cap
        return stat, y[..., 1].clamp(max=0.0)

    def _reset(self, idx: torch.Tensor) -> None:
        """Reset the copies where ``idx`` (R, E) is True."""
        if self.starts is None:
            a = self.a0.expand(self.R, self.E, 2)
            s0 = self._s_a0
        else:
            pick = self.episode % self.starts.shape[1]
            a = torch.gather(self.starts, 1, pick[..., None].expand(-1, -1, 2))
            self.episode = torch.where(idx, self.episode + self.E, self.episode)
            if self._s_pool is None:
                s0 = self._start_statistic(a)
            else:
                s0 = torch.gather(self._s_pool, 1, pick)
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
