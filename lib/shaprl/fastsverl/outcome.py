"""Outcome characteristic models (FastSVERL Sec. 3.2, Eqs. 14-16), on small tabular domains.

The outcome characteristic ṽ_{s_e}(C) is the return from the explained state s_e when the
agent acts with the partial-information policy π̃_{s_e}(C) at s_e and with π elsewhere. One
network conditioned on (s_e, C) amortises it over all pairs: its input is the current state
s, the explained state s_e and the coalition C (as 0/1 indicators); see
:func:`outcome_inputs` for why s_e enters unmasked.

* **On-policy** (Eq. 14): a state-value network V(s | s_e, C) trained by TD(0) towards
  r + γ V'(s' | s_e, C) (V' a soft-updated target network) on transitions of the *conditioned
  policy*: every environment step draws a fresh (s_e, C) -- s_e from the on-policy buffer, C
  uniform -- and acts with π̃_{s_e}(C) if the current state is s_e, with π otherwise.
  ṽ_{s_e}(C) = V(s_e | s_e, C).
* **Off-policy** (Eqs. 15-16): an action-value network Q(s, a | s_e, C) trained on a fixed
  buffer of transitions of another policy, towards r + γ Σ_a' π̂(a' | s'; s_e, C) Q'(s', a' | s_e, C)
  (the expectation over a' instead of one sampled a': same fixed point, less variance);
  ṽ_{s_e}(C) = Σ_a π̃_{s_e}(C)(a) Q(s_e, a | s_e, C).

π̃ comes from the exact behaviour table or from a learned behaviour characteristic model
(the "upstream" of Fig. 1b). Environments are simulated from the exact tabular model, many
episodes at once; a group of runs shares one random stream (unlike the characteristic and
Shapley trainers, a single run is not bit-identical to its member of a group). These
trainers are bound by the tabular simulation (numpy, one step per update) and stay on the CPU;
:mod:`.outcome_replay` (observations, no simulator) takes a ``device``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..batched import BatchedMLP
from ..mdp.tabular import TabularMDP
from .coalitions import MASK_VALUE, coalition_bits, mask
from .exact import TabularProblem
from .training import Curves, _adam

#: behaviour(se_pos (N,), coalitions (N, F) bool) -> partial-information action probabilities (N, A)
Behaviour = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class TabularSimulator:
    """Vectorised sampling of a small tabular MDP: many episodes step at once."""

    def __init__(self, mdp: TabularMDP) -> None:
        dense = mdp.transitions.toarray()  # (S*A, S)
        self.cum = np.cumsum(dense, axis=1)
        self.n_actions, self.rewards, self.start = mdp.n_actions, mdp.rewards, mdp.start

    def reset(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(len(self.start), size=n, p=self.start)

    def step(self, s: np.ndarray, a: np.ndarray, rng: np.random.Generator):
        """Rewards, successors (-1 when the episode ends) and done flags."""
        rows = self.cum[s * self.n_actions + a]
        u = rng.random(len(s))[:, None]
        nxt = (rows <= u).sum(axis=1)
        done = nxt >= rows.shape[1]
        return self.rewards[s, a], np.where(done, -1, nxt), done


def exact_behaviour(problem: TabularProblem) -> Behaviour:
    table = torch.as_tensor(problem.table("behaviour"), dtype=torch.float32)
    return lambda se, c: table[se, coalition_bits(c)]


class PartialPolicyModel:
    """π̃_{s_e}(C) from a behaviour characteristic model (Eq. 12) on feature rows: the model at
    s_e masked by C, clipped at zero and renormalised into a distribution.

    ``pi_tilde(xe (N, F), c (N, F) bool) -> (N, A)``; the model follows ``xe``'s device.
    A class, not a closure, so that a trained explanation can be pickled (cached).
    """

    def __init__(self, net: torch.nn.Module, mask_value: float = MASK_VALUE) -> None:
        self.net, self.mask_value = net, mask_value

    @torch.no_grad()
    def __call__(self, xe: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if next(self.net.parameters()).device != xe.device:
            self.net.to(xe.device)
        p = self.net(mask(xe, c, self.mask_value)).clamp_min(0.0) + 1e-8
        return p / p.sum(-1, keepdim=True)


def partial_policy_model(
    net: torch.nn.Module, mask_value: float = MASK_VALUE
) -> PartialPolicyModel:
    """:class:`PartialPolicyModel` of a behaviour characteristic network."""
    return PartialPolicyModel(net, mask_value)


def model_behaviour(
    problem: TabularProblem, net: torch.nn.Module, mask_value: float = MASK_VALUE
) -> Behaviour:
    """A learned behaviour characteristic, clipped and renormalised into a distribution."""
    states = torch.as_tensor(problem.states)
    pi_tilde = partial_policy_model(net, mask_value)
    return lambda se, c: pi_tilde(states[se], c)


@dataclass(frozen=True)
class OutcomeConfig:
    hidden: tuple[int, ...] = (64, 64)
    learning_rate: float = 2.5e-4
    batch_size: int = 64
    tau: float = 0.01
    updates: int = 12_500
    eval_every: int = 250
    n_runs: int = 1
    seed: int = 0
    n_envs: int = 16  #: on-policy: environment steps per update (the authors' 16 vector envs)
    buffer: int = 10_000  #: on-policy replay capacity per run
    mask_value: float = MASK_VALUE


def outcome_inputs(x: torch.Tensor, xe: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """[x(s), x(s_e), C]: the state, the explained state and the coalition as 0/1 indicators.

    The explained state enters unmasked: the conditioned policy switches to π̃ exactly when
    s = s_e, which a masked s_e cannot reveal (with C = ∅ every s_e looks the same), so a
    value conditioned on the masked s_e alone could not learn the on-policy target.
    """
    return torch.cat([x, xe, c.to(x.dtype)], dim=-1)


class _Setup:
    """Shared tensors: features of every MDP state, the policy, the support and the exact targets."""

    def __init__(self, problem: TabularProblem, behaviour: Behaviour, cfg: OutcomeConfig) -> None:
        mdp = problem.mdp
        self.problem, self.behaviour, self.cfg = problem, behaviour, cfg
        self.x = torch.as_tensor(mdp.features, dtype=torch.float32)
        self.pi = torch.as_tensor(problem.explainer.policy, dtype=torch.float32)
        self.support = torch.as_tensor(problem.support, dtype=torch.long)
        self.train = torch.as_tensor(problem.train, dtype=torch.long)  # support positions
        self.gamma = float(mdp.gamma)
        f = mdp.n_features
        codes = torch.arange(1 << f)
        self.all_c = ((codes[:, None] >> torch.arange(f)) & 1).bool()  # (K, F)
        s = len(problem.support)
        self.eval_se = torch.arange(s).repeat_interleave(len(codes))  # (S*K,)
        self.eval_c = self.all_c.repeat(s, 1)
        self.eval_y = torch.as_tensor(problem.table("outcome").reshape(-1), dtype=torch.float32)

    def inputs(self, s: torch.Tensor, se: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Network input for MDP state indices s, support positions se and coalitions C."""
        return outcome_inputs(self.x[s.clamp_min(0)], self.x[self.support[se]], c)

    def conditioned(self, s: torch.Tensor, se: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """π̂(· | s; s_e, C): π̃_{s_e}(C) where s = s_e, π(s) elsewhere (N, A)."""
        at_e = s == self.support[se]
        probs = self.pi[s.clamp_min(0)].clone()
        if at_e.any():
            probs[at_e] = self.behaviour(se[at_e], c[at_e])
        return probs


def _take(buf: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """Per-run minibatch: ``buf[r, j[r, b]]`` for buffers ``(R, cap, ...)``."""
    return buf[torch.arange(buf.shape[0])[:, None], j]


def _soft_update(target: torch.nn.Module, net: torch.nn.Module, tau: float) -> None:
    with torch.no_grad():
        for p_t, p in zip(target.parameters(), net.parameters(), strict=True):
            p_t.mul_(1.0 - tau).add_(tau * p)


def outcome_value(out: torch.Tensor, probs: torch.Tensor | None) -> torch.Tensor:
    """ṽ_{s_e}(C) from the network output at s = s_e: V itself (on-policy, ``probs=None``) or
    Eq. 16, Σ_a π̃_{s_e}(C)(a) Q(s_e, a | s_e, C) (off-policy); shape ``(..., 1)``."""
    if probs is None:
        return out
    return (out * probs).sum(-1, keepdim=True)


def expected_sarsa_update(
    net: BatchedMLP,
    target: BatchedMLP,
    opt: torch.optim.Optimizer,
    inputs: torch.Tensor,
    actions: torch.Tensor,
    rewards: torch.Tensor,
    done: torch.Tensor,
    next_inputs: torch.Tensor,
    next_probs: torch.Tensor,
    gamma: float,
    tau: float,
) -> torch.Tensor:
    """One Eq. 15 step of every run, then the soft target update; returns the per-run losses.

    Shapes ``(R, B, ...)``: ``inputs``/``next_inputs`` are :func:`outcome_inputs` of s and s',
    ``next_probs`` the conditioned policy π̂(· | s'; s_e, C). The target is
    r + γ (1 - done) Σ_a' π̂(a' | s') Q'(s', a' | s_e, C).
    """
    with torch.no_grad():
        nxt = (target(next_inputs) * next_probs).sum(-1)
        y = rewards + gamma * (1.0 - done) * nxt
    q = net(inputs).gather(-1, actions[..., None])[..., 0]
    per_run = (q - y).pow(2).mean(-1)
    opt.zero_grad(set_to_none=True)
    per_run.sum().backward()
    opt.step()
    _soft_update(target, net, tau)
    return per_run.detach()


def _curves(marks, mse, t, r, done) -> Curves:
    mse = np.stack(mse, axis=1)
    return Curves(np.asarray(marks), mse, mse, t, r * done / max(t, 1e-9), mse[:, -1])


def train_outcome_on_policy(
    problem: TabularProblem, behaviour: Behaviour, cfg: OutcomeConfig
) -> tuple[BatchedMLP, Curves]:
    """Eq. 14: V(s | s_e, C) by TD(0) on transitions of the conditioned policy."""
    from ..batched import member_seeds

    torch.manual_seed(cfg.seed)
    st = _Setup(problem, behaviour, cfg)
    f, r, n_env, b = problem.n_features, cfg.n_runs, cfg.n_envs, cfg.batch_size
    rng = np.random.default_rng(cfg.seed)
    sim = TabularSimulator(problem.mdp)
    seeds = member_seeds(cfg.seed, r)
    net = BatchedMLP(seeds, 3 * f, cfg.hidden, 1)
    target = BatchedMLP(seeds, 3 * f, cfg.hidden, 1)
    target.load_state_dict(net.state_dict())
    opt = _adam(net, cfg.learning_rate)
    cap = cfg.buffer
    buf_s = torch.zeros(r, cap, dtype=torch.long)
    buf_s2 = torch.zeros(r, cap, dtype=torch.long)
    buf_se = torch.zeros(r, cap, dtype=torch.long)
    buf_c = torch.zeros(r, cap, f, dtype=torch.bool)
    buf_r = torch.zeros(r, cap)
    buf_d = torch.zeros(r, cap)
    s = sim.reset(r * n_env, rng)
    filled, pos = 0, 0
    marks, mse, t_train = [], [], 0.0

    @torch.no_grad()
    def evaluate(step: int) -> None:
        x = st.inputs(st.support[st.eval_se], st.eval_se, st.eval_c)
        marks.append(step)
        mse.append((net(x)[..., 0] - st.eval_y).pow(2).mean(-1).numpy())

    evaluate(0)
    for step in range(1, cfg.updates + 1):
        t0 = time.perf_counter()
        # act: a fresh (s_e, C) per environment step, the conditioned policy chooses
        se = st.train[torch.as_tensor(rng.integers(len(st.train), size=r * n_env))]
        c = torch.as_tensor(rng.random((r * n_env, f)) < 0.5)
        st_t = torch.as_tensor(s)
        probs = st.conditioned(st_t, se, c).numpy().astype(float)
        cum = probs.cumsum(1)
        a = np.minimum((cum < rng.random((len(s), 1)) * cum[:, -1:]).sum(1), probs.shape[1] - 1)
        rew, s2, done = sim.step(s, a, rng)
        idx = (pos + np.arange(n_env)) % cap
        for name, val in (
            (buf_s, st_t),
            (buf_s2, torch.as_tensor(s2)),
            (buf_se, se),
            (buf_c, c),
            (buf_r, torch.as_tensor(rew, dtype=torch.float32)),
            (buf_d, torch.as_tensor(done, dtype=torch.float32)),
        ):
            name[:, idx] = val.reshape(r, n_env, *val.shape[1:])
        pos, filled = (pos + n_env) % cap, min(filled + n_env, cap)
        s = np.where(done, sim.reset(len(s), rng), s2)
        # learn: one TD(0) minibatch per run
        j = torch.as_tensor(rng.integers(filled, size=(r, b)))
        bs, bs2, bse, bc, br, bd = (
            _take(x, j) for x in (buf_s, buf_s2, buf_se, buf_c, buf_r, buf_d)
        )
        with torch.no_grad():
            nxt = target(st.inputs(bs2, bse, bc))[..., 0]
            y = br + st.gamma * (1.0 - bd) * nxt
        loss = (net(st.inputs(bs, bse, bc))[..., 0] - y).pow(2).mean(-1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _soft_update(target, net, cfg.tau)
        t_train += time.perf_counter() - t0
        if step % cfg.eval_every == 0 or step == cfg.updates:
            evaluate(step)
    return net, _curves(marks, mse, t_train, r, cfg.updates)


def behaviour_buffer(
    problem: TabularProblem,
    n_steps: int,
    *,
    seed: int = 0,
    n_envs: int = 16,
    explore_fraction: float = 0.25,
) -> dict[str, np.ndarray]:
    """Transitions of an epsilon-greedy version of the explained policy, epsilon 1 -> 0.01.

    Stands in for the agent's DQN training buffer (its exploration schedule, but around the
    final greedy policy): the "other policy" of Eq. 15.
    """
    rng = np.random.default_rng(seed)
    sim = TabularSimulator(problem.mdp)
    pi = problem.explainer.policy
    s = sim.reset(n_envs, rng)
    out = {k: [] for k in ("s", "a", "r", "s2", "done")}
    steps = n_steps // n_envs
    for t in range(steps):
        eps = max(1.0 - (1.0 - 0.01) * t / max(1, explore_fraction * steps), 0.01)
        greedy = pi[s].argmax(1)
        a = np.where(rng.random(n_envs) < eps, rng.integers(pi.shape[1], size=n_envs), greedy)
        rew, s2, done = sim.step(s, a, rng)
        for k, v in zip(out, (s, a, rew, s2, done), strict=True):
            out[k].append(v)
        s = np.where(done, sim.reset(n_envs, rng), s2)
    return {k: np.concatenate(v) for k, v in out.items()}


def train_outcome_off_policy(
    problem: TabularProblem, behaviour: Behaviour, buffer: dict[str, np.ndarray], cfg: OutcomeConfig
) -> tuple[BatchedMLP, Curves]:
    """Eqs. 15-16: Q(s, a | s_e, C) on a fixed buffer of another policy's transitions."""
    from ..batched import member_seeds

    torch.manual_seed(cfg.seed)
    st = _Setup(problem, behaviour, cfg)
    f, r, b = problem.n_features, cfg.n_runs, cfg.batch_size
    a_n = problem.mdp.n_actions
    rng = np.random.default_rng(cfg.seed)
    seeds = member_seeds(cfg.seed, r)
    net = BatchedMLP(seeds, 3 * f, cfg.hidden, a_n)
    target = BatchedMLP(seeds, 3 * f, cfg.hidden, a_n)
    target.load_state_dict(net.state_dict())
    opt = _adam(net, cfg.learning_rate)
    bs_all, ba_all = torch.as_tensor(buffer["s"]), torch.as_tensor(buffer["a"])
    br_all = torch.as_tensor(buffer["r"], dtype=torch.float32)
    bs2_all = torch.as_tensor(buffer["s2"])
    bd_all = torch.as_tensor(buffer["done"], dtype=torch.float32)
    n = len(bs_all)
    marks, mse, t_train = [], [], 0.0

    @torch.no_grad()
    def value(se: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        q = net(st.inputs(st.support[se], se, c))  # (R, N, A)
        return outcome_value(q, behaviour(se, c))[..., 0]

    @torch.no_grad()
    def evaluate(step: int) -> None:
        marks.append(step)
        mse.append((value(st.eval_se, st.eval_c) - st.eval_y).pow(2).mean(-1).numpy())

    evaluate(0)
    for step in range(1, cfg.updates + 1):
        t0 = time.perf_counter()
        j = torch.as_tensor(rng.integers(n, size=(r, b)))
        se = st.train[torch.as_tensor(rng.integers(len(st.train), size=(r, b)))]
        c = torch.as_tensor(rng.random((r, b, f)) < 0.5)
        s, a, rew, s2, d = bs_all[j], ba_all[j], br_all[j], bs2_all[j], bd_all[j]
        with torch.no_grad():
            nxt_pi = st.conditioned(s2.reshape(-1), se.reshape(-1), c.reshape(-1, f)).reshape(
                r, b, a_n
            )
        expected_sarsa_update(
            net,
            target,
            opt,
            st.inputs(s, se, c),
            a,
            rew,
            d,
            st.inputs(s2, se, c),
            nxt_pi,
            st.gamma,
            cfg.tau,
        )
        t_train += time.perf_counter() - t0
        if step % cfg.eval_every == 0 or step == cfg.updates:
            evaluate(step)
    return net, _curves(marks, mse, t_train, r, cfg.updates)


class OutcomeCharacteristic:
    """A learned outcome characteristic ṽ_s(C) as the upstream of outcome Shapley models.

    Called like the characteristics of :mod:`~shaprl.fastsverl.training` (``idx``, ``x``,
    ``c`` of one update), with the explained state s_e = the input state x:
    ``net(outcome_inputs(x, x, C))`` read out as V (on-policy, ``partial_policy=None``) or by
    Eq. 16 with π̃ = ``partial_policy(idx, x, C)`` (off-policy). ``net`` is one run's network.
    """

    def __init__(
        self,
        net: Callable[[torch.Tensor], torch.Tensor],
        partial_policy: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None,
    ) -> None:
        self.net, self.partial_policy = net, partial_policy

    @torch.no_grad()
    def __call__(self, idx: torch.Tensor, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shape, f = c.shape[:-1], c.shape[-1]
        xs, cc = x.reshape(-1, f), c.reshape(-1, f)
        net = self.net
        if isinstance(net, torch.nn.Module) and next(net.parameters()).device != xs.device:
            net.to(xs.device)  # follow the caller's device
        out = net(outcome_inputs(xs, xs, cc))
        pol = self.partial_policy
        flat_idx = None if idx is None else idx.reshape(-1)
        probs = None if pol is None else pol(flat_idx, xs, cc)
        return outcome_value(out, probs).reshape(*shape, 1)

    def null(self, idx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """ṽ_s(∅) of every row of ``x``."""
        return self(idx, x, torch.zeros(x.shape, dtype=torch.bool, device=x.device))


class OutcomeModelCharacteristic(OutcomeCharacteristic):
    """A learned tabular outcome characteristic (run 0): ``idx`` are positions in the support."""

    def __init__(
        self,
        problem: TabularProblem,
        net: BatchedMLP,
        behaviour: Behaviour | None,
        cfg: OutcomeConfig,
    ):
        pol = None if behaviour is None else (lambda se, x, c: behaviour(se, c))
        super().__init__(lambda inputs: net(inputs)[0], pol)  # run 0
        self.mask_value = cfg.mask_value
        self.states = torch.as_tensor(problem.states)

    def __call__(self, idx: torch.Tensor, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        # the tabular models live on the CPU; the values go back to the caller's device
        idx_cpu = idx.cpu()
        return super().__call__(idx_cpu, self.states[idx_cpu], c.cpu()).to(idx.device)

    def null(self, idx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        idx = torch.arange(len(self.states)) if idx is None else idx
        return self(idx, x, torch.zeros(*idx.shape, self.states.shape[1], dtype=torch.bool))
