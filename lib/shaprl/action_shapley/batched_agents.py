"""SAC-PID and PPO-PID for many training subsets at once, on :mod:`shaprl.batched`.

Member ``r`` of a batch is the agent of one training subset: its own world model (inside
:class:`~.pid_env.BatchedPIDEnv`), its own networks (:class:`~shaprl.batched.BatchedMLP`,
initialised from its own seed), its own replay buffer or rollout, and its own random
stream (:class:`MemberRNG`: one numpy generator per member, drawn in blocks), so a subset's
agent does not depend on which other subsets share its batch. Losses are per member and
summed; gradient clipping is per member; one Adam over the stacked parameters is R
independent Adams (torch's fused kernel: same update rule, about twice as fast on a CPU).

The algorithms follow stable-baselines3 2.9.2's SAC and PPO (the reference we check
against, :mod:`.sb3_reference`) with the hyper-parameters of :data:`SAC_BUDGET` and
:data:`PPO_BUDGET`. Known differences: default ``nn.Linear`` initialisation (SB3's PPO uses
orthogonal), and SAC's entropy coefficient, critic and actor steps use one action sample.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..batched import BatchedMLP, clip_grad_norm_per_member
from .pid_env import ACT_DIM, OBS_DIM, BatchedPIDEnv


@dataclass(frozen=True)
class SACBudget:
    #: 12,000 since issue 17: under the paper's goals, the action step and horizon 100, VM
    #: right-sizing's all-data SAC agents failed in 3 of 5 runs at 6,000 steps and succeeded in
    #: 5 of 5 at 12,000 (the budget-plateau check, notebook 20); PPO is unchanged
    total_steps: int = 12000
    learning_starts: int = 300
    batch_size: int = 32
    hidden: tuple[int, ...] = (16, 16)
    lr: float = 1e-3
    gamma: float = 0.95
    tau: float = 0.02

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PPOBudget:
    total_steps: int = 12288  #: issue 17's plateau sweep (VM: 6,144 is 17 % short of 4x)
    n_envs: int = 4
    n_steps: int = 128
    n_epochs: int = 5
    batch_size: int = 128
    hidden: tuple[int, ...] = (16, 16)
    lr: float = 1e-3
    gamma: float = 0.95
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5

    def as_dict(self) -> dict:
        return asdict(self)


SAC_BUDGET = SACBudget()
PPO_BUDGET = PPOBudget()


class MemberRNG:
    """One numpy generator per member; draws are stacked into ``(R, ...)`` tensors."""

    def __init__(self, seeds: list[int], device: torch.device | str = "cpu") -> None:
        self.gens = [np.random.default_rng(s) for s in seeds]
        self.device = device

    def normal(self, *shape: int) -> torch.Tensor:
        out = np.empty((len(self.gens), *shape), dtype=np.float32)
        for g, row in zip(self.gens, out, strict=True):  # filled in place: no stacking copy
            g.standard_normal(dtype=np.float32, out=row)
        return torch.from_numpy(out).to(self.device)

    def uniform(self, *shape: int) -> torch.Tensor:
        out = np.empty((len(self.gens), *shape), dtype=np.float32)
        for g, row in zip(self.gens, out, strict=True):
            g.random(dtype=np.float32, out=row)
        return torch.from_numpy(out).to(self.device)


LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


def _take(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Per-member rows: ``x (R, N, ...)``, ``idx (R, B)`` -> ``(R, B, ...)``."""
    shape = idx.shape + (1,) * (x.dim() - 2)
    return torch.gather(x, 1, idx.view(shape).expand(-1, -1, *x.shape[2:]))


def _squashed(actor: BatchedMLP, obs: torch.Tensor, eps: torch.Tensor):
    out = actor(obs)
    mean, log_std = out[..., :ACT_DIM], out[..., ACT_DIM:].clamp(LOG_STD_MIN, LOG_STD_MAX)
    std = log_std.exp()
    u = mean + std * eps
    act = torch.tanh(u)
    logp = (-0.5 * eps.pow(2) - log_std - 0.5 * np.log(2 * np.pi)).sum(-1)
    logp = logp - torch.log(1 - act.pow(2) + 1e-6).sum(-1)
    return act, logp


class SACPolicy:
    """Deterministic SAC action ``tanh(mean)`` for evaluation."""

    def __init__(self, actor: BatchedMLP) -> None:
        self.actor = actor
        self.n_members = actor.n_members

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.actor(obs)[..., :ACT_DIM])


START_POOL = 512  #: random initial configurations drawn per member (cycled)


def _random_starts(env: BatchedPIDEnv, rng: MemberRNG) -> None:
    env.starts = rng.uniform(START_POOL, 2)
    env.reset_all()


_OA = OBS_DIM + ACT_DIM  #: a replay row: obs and action (the critic's input), next obs, r, done
_ROW = _OA + OBS_DIM + 2


def _adam(params, lr: float, **kw) -> torch.optim.Adam:
    """Adam with the fused kernel where torch has one for the device (same update rule)."""
    return torch.optim.Adam(params, lr=lr, fused=True, **kw)


def train_sac(
    env: BatchedPIDEnv, seeds: list[int], budget: SACBudget = SAC_BUDGET, block: int = 50
) -> SACPolicy:
    """Train ``len(seeds)`` SAC agents, one per member of ``env`` (``env.E`` must be 1).

    The twin critics of all members are one :class:`BatchedMLP` of ``2R`` members (critic 1 of
    member ``r`` is member ``r``, critic 2 is member ``R + r``), so each critic operation is
    one stacked call; the arithmetic per member is that of two separate networks.

    Cost (issue 17): the exact game of §2 needs one agent per subset, 2^15 for Kubernetes, so
    the update is kept lean without changing a single bit of any agent (checked against the
    previous code on whole batches): one gather per minibatch from packed replay rows, the
    actor and entropy coefficient in one backward pass and one fused Adam, random numbers
    drawn in place, and a world model evaluated once per step (:class:`BatchedPIDEnv` looks
    episode starts up). What remains is dominated by the stacked matrix products of the tiny
    networks (``baddbmm``/``bmm``, whose per-member rounding we keep) and the per-member draws.
    """
    R, dev, b = env.R, env.a0.device, budget
    h = list(b.hidden)
    actor = BatchedMLP([s + 1 for s in seeds], OBS_DIM, h, 2 * ACT_DIM, device=dev)
    twin_seeds = [s + 2 for s in seeds] + [s + 3 for s in seeds]
    q = BatchedMLP(twin_seeds, OBS_DIM + ACT_DIM, h, 1, device=dev)
    q_t = BatchedMLP(twin_seeds, OBS_DIM + ACT_DIM, h, 1, device=dev)
    q_t.load_state_dict(q.state_dict())
    q_params, q_t_params = list(q.parameters()), list(q_t.parameters())
    log_alpha = torch.zeros(R, device=dev, requires_grad=True)
    opt_q = _adam(q_params, b.lr)
    # the actor and the entropy coefficient step together: one fused Adam over both (Adam is
    # elementwise per tensor, so this is the two optimisers' update, bitwise)
    opt_pi = _adam([*actor.parameters(), log_alpha], b.lr)

    def twin(net: BatchedMLP, x: torch.Tensor) -> torch.Tensor:
        """Both critics' values ``(2, R, B)`` of ``x (R, B, obs + act)``."""
        return net(torch.cat([x, x], 0))[..., 0].view(2, R, -1)

    rng = MemberRNG(seeds, dev)
    _random_starts(env, rng)
    n = b.total_steps
    # one replay row per transition, (obs, act, next obs, reward, done), so a minibatch is a
    # single gather (one random memory access per row, not one per field)
    buf = torch.zeros(R * n, _ROW, device=dev)
    offset = (torch.arange(R, device=dev) * n)[:, None]
    rows_t = torch.arange(R, device=dev) * n  # row of member r's transition t: rows_t + t
    obs = env.reset_all()  # (R, 1, OBS)
    target_entropy = -float(ACT_DIM)
    for t in range(n):
        if t % block == 0:
            k = min(block, n - t)
            explore_u = rng.uniform(k, ACT_DIM) * 2 - 1
            explore_n = rng.normal(k, ACT_DIM)
            draw_idx = rng.uniform(k, b.batch_size)
            draw_eps = rng.normal(k, 2, b.batch_size, ACT_DIM)
        j = t % block
        if t < b.learning_starts:
            act = explore_u[:, j][:, None]
        else:
            with torch.no_grad():
                act, _ = _squashed(actor, obs, explore_n[:, j][:, None])
        nxt, rew, done, trunc, final = env.step(act)
        buf[rows_t + t] = torch.cat([obs, act, final, rew[..., None], done[..., None]], -1)[:, 0]
        obs = nxt
        if t + 1 < b.learning_starts:
            continue
        idx = (draw_idx[:, j] * (t + 1)).long().clamp(max=t) + offset  # (R, B) flat rows
        rows = buf.index_select(0, idx.view(-1)).view(R, -1, _ROW)
        oa, r, d = rows[..., :_OA], rows[..., _OA + OBS_DIM], rows[..., _OA + OBS_DIM + 1]
        o, o2 = rows[..., :OBS_DIM].contiguous(), rows[..., _OA : _OA + OBS_DIM].contiguous()
        eps = draw_eps[:, j]
        alpha = log_alpha.exp().detach()[:, None]
        with torch.no_grad():
            a2, logp2 = _squashed(actor, o2, eps[:, 1])
            qn = twin(q_t, torch.cat([o2, a2], -1)).min(0).values - alpha * logp2
            target = r + b.gamma * (1 - d) * qn
        loss_q = (0.5 * (twin(q, oa) - target).pow(2).mean(-1)).sum()
        opt_q.zero_grad()
        loss_q.backward()
        opt_q.step()
        a_pi, logp = _squashed(actor, o, eps[:, 0])
        for p in q_params:  # the actor's loss needs no critic weight gradients
            p.requires_grad_(False)
        q_pi = twin(q, torch.cat([o, a_pi], -1)).min(0).values
        for p in q_params:
            p.requires_grad_(True)
        loss_pi = (alpha * logp - q_pi).mean(-1).sum()
        loss_a = -(log_alpha[:, None] * (logp.detach() + target_entropy)).mean(-1).sum()
        # one backward pass for both: alpha is detached in loss_pi and logp in loss_a, so
        # each parameter receives exactly the gradient of its own loss
        opt_pi.zero_grad()
        (loss_pi + loss_a).backward()
        opt_pi.step()
        with torch.no_grad():
            torch._foreach_mul_(q_t_params, 1 - b.tau)
            torch._foreach_add_(q_t_params, q_params, alpha=b.tau)
    return SACPolicy(actor)


class PPOPolicy:
    """Deterministic PPO action: the Gaussian mean, clipped to [-1, 1]."""

    def __init__(self, pi: BatchedMLP) -> None:
        self.pi = pi
        self.n_members = pi.n_members

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        return self.pi(obs).clamp(-1.0, 1.0)


def train_ppo(env: BatchedPIDEnv, seeds: list[int], budget: PPOBudget = PPO_BUDGET) -> PPOPolicy:
    """Train ``len(seeds)`` PPO agents; ``env.E`` must equal ``budget.n_envs``."""
    R, E, dev, b = env.R, env.E, env.a0.device, budget
    if E != b.n_envs:
        raise ValueError(f"PPO needs an env with {b.n_envs} copies per member, got {E}")
    h = list(b.hidden)
    pi = BatchedMLP([s + 1 for s in seeds], OBS_DIM, h, ACT_DIM, activation="tanh", device=dev)
    vf = BatchedMLP([s + 2 for s in seeds], OBS_DIM, h, 1, activation="tanh", device=dev)
    log_std = torch.zeros(R, 1, ACT_DIM, device=dev, requires_grad=True)
    params = [*pi.parameters(), log_std, *vf.parameters()]
    opt = _adam(params, b.lr, eps=1e-5)
    rng = MemberRNG(seeds, dev)
    _random_starts(env, rng)
    T = b.n_steps
    obs = env.reset_all()  # (R, E, OBS)
    n_rollouts = max(1, b.total_steps // (T * E))
    for _ in range(n_rollouts):
        noise = rng.normal(T, E, ACT_DIM)
        buf_o = torch.zeros(R, T, E, OBS_DIM, device=dev)
        buf_a = torch.zeros(R, T, E, ACT_DIM, device=dev)
        buf_lp, buf_v, buf_r, buf_d = (torch.zeros(R, T, E, device=dev) for _ in range(4))
        with torch.no_grad():
            for t in range(T):
                mean, v = pi(obs.view(R, E, -1)), vf(obs)[..., 0]
                std = log_std.exp()
                act = mean + std * noise[:, t]
                lp = (-0.5 * noise[:, t].pow(2) - log_std - 0.5 * np.log(2 * np.pi)).sum(-1)
                nxt, rew, done, trunc, final = env.step(act)
                # bootstrap truncated episodes with the value of their final observation
                rew = rew + b.gamma * trunc.float() * vf(final)[..., 0]
                buf_o[:, t], buf_a[:, t], buf_lp[:, t], buf_v[:, t] = obs, act, lp, v
                buf_r[:, t], buf_d[:, t] = rew, (done | trunc).float()
                obs = nxt
            last_v = vf(obs)[..., 0]
            adv = torch.zeros(R, T, E, device=dev)
            gae = torch.zeros(R, E, device=dev)
            for t in reversed(range(T)):
                nv = last_v if t == T - 1 else buf_v[:, t + 1]
                nonterm = 1.0 - buf_d[:, t]
                delta = buf_r[:, t] + b.gamma * nv * nonterm - buf_v[:, t]
                gae = delta + b.gamma * b.gae_lambda * nonterm * gae
                adv[:, t] = gae
            ret = adv + buf_v
        flat = lambda x: x.reshape(R, T * E, *x.shape[3:])  # noqa: E731
        fo, fa, flp, fadv, fret = map(flat, (buf_o, buf_a, buf_lp, adv, ret))
        N = T * E
        for _ in range(b.n_epochs):
            perm = torch.argsort(rng.uniform(N), dim=1)
            for start in range(0, N, b.batch_size):
                idx = perm[:, start : start + b.batch_size]
                o, a, lp_old, ad, rt = (_take(x, idx) for x in (fo, fa, flp, fadv, fret))
                ad = (ad - ad.mean(1, keepdim=True)) / (ad.std(1, keepdim=True) + 1e-8)
                mean = pi(o)
                z = (a - mean) / log_std.exp()
                lp = (-0.5 * z.pow(2) - log_std - 0.5 * np.log(2 * np.pi)).sum(-1)
                ratio = (lp - lp_old).exp()
                clipped = ratio.clamp(1 - b.clip_range, 1 + b.clip_range)
                loss_pi = -torch.min(ratio * ad, clipped * ad).mean(-1)
                loss_v = (vf(o)[..., 0] - rt).pow(2).mean(-1)
                loss = (loss_pi + b.vf_coef * loss_v).sum()
                opt.zero_grad()
                loss.backward()
                clip_grad_norm_per_member(params, b.max_grad_norm)
                opt.step()
    return PPOPolicy(pi)
