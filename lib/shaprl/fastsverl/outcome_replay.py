"""Off-policy outcome characteristic on observations (FastSVERL Eqs. 15-16, App. A Eqs. 21-22).

:mod:`.outcome` learns the outcome characteristic ṽ_{s_e}(C) on small domains whose states
can be enumerated (states are indices of a tabular model). Large domains (Mastermind-443,
-453, -463: 24-36 features, far too many boards to enumerate) offer only observations, so
here every state is a feature vector:

* **data**: transitions (s, a, r, s', done) of another policy -- the agent's own DQN
  training buffer (``train_dqn(record=True)``), as in the authors' code -- and a buffer of
  on-policy states whose frequencies stand for p^π, from which explained states s_e are drawn;
* **conditioned policy** π̂(· | s; s_e, C) = π̃_{s_e}(C) where s = s_e (all features equal),
  π(s) elsewhere; π̃ comes from a behaviour characteristic model (clipped at zero and
  renormalised, :func:`.outcome.partial_policy_model`), π is any function from observations
  to action probabilities;
* **loss** (Eq. 15): each transition of a run's minibatch gets its own s_e ~ buffer and a
  uniform coalition C (each feature kept with probability 1/2), and
      (r + γ (1 - done) Σ_a' π̂(a' | s'; s_e, C) Q'(s', a' | s_e, C) - Q(s, a | s_e, C))**2
  is minimised, Q' a soft-updated target network (the expectation over a' replaces the
  authors' single sampled a': same fixed point, less variance);
* **readout** (Eq. 16): ṽ_{s_e}(C) = Σ_a π̃_{s_e}(C)(a) Q(s_e, a | s_e, C).

The update (:func:`.outcome.expected_sarsa_update`), the network input
(:func:`.outcome.outcome_inputs`) and the readout (:class:`.outcome.OutcomeCharacteristic`)
are the tabular trainer's; on an enumerable domain both learn the same function (tested
against the exact outcome characteristic). Runs train as one
:class:`~shaprl.batched.BatchedMLP`; every run draws its minibatches from its own generator.

Outcome Shapley models (Eq. 21) then train with :func:`.training.train_shapley` on the
learned characteristic (run 0, as for every upstream model here). The efficiency correction
(Eq. 22) needs v(F): like the authors' code we use the learned characteristic at the grand
coalition, ṽ_s(F), not the agent's own value estimate (:func:`outcome_state_data`).

There is no ground truth on the large domains, and the TD loss has a moving target, so it
does not converge to a fixed value (App. C: the authors train this model for a fixed number of
updates). Curves report the TD loss on held-out transitions with fixed (s_e, C), and, where
exact values are given (small domains, tests), the exact MSE of the readout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..batched import BatchedMLP
from .coalitions import uniform_coalitions
from .outcome import (
    OutcomeCharacteristic,
    OutcomeConfig,
    expected_sarsa_update,
    outcome_inputs,
    outcome_value,
)
from .training import (
    Curves,
    StateData,
    TrainConfig,
    _adam,
    _Draws,
    _generators,
    resolve_device,
)

#: ``policy_fn(observations (N, F)) -> action probabilities (N, A)`` (numpy in, numpy out)
PolicyFn = Callable[[np.ndarray], np.ndarray]
#: ``pi_tilde(xe (N, F), c (N, F) bool) -> π̃_{s_e}(C) (N, A)`` (tensors on one device)
PartialPolicy = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Transitions:
    """Transitions of some policy: ``obs``/``next_obs`` (N, F), ``action``, ``reward``,
    ``done`` (N,). A terminal ``next_obs`` is never bootstrapped from."""

    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    next_obs: np.ndarray
    done: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.obs)
        if n == 0:
            raise ValueError("Transitions need at least one transition")
        lengths = {k: len(getattr(self, k)) for k in ("action", "reward", "next_obs", "done")}
        if any(v != n for v in lengths.values()) or self.next_obs.shape != self.obs.shape:
            raise ValueError(
                f"every field needs one row per transition ({n} obs of shape "
                f"{self.obs.shape}); got lengths {lengths}, next_obs {self.next_obs.shape}"
            )

    def __len__(self) -> int:
        return len(self.obs)

    @classmethod
    def from_buffer(cls, buffer: dict[str, np.ndarray]) -> Transitions:
        """From a DQN agent's recorded buffer (``train_dqn(record=True)``: ``agent.buffer``)."""
        if buffer is None:
            raise ValueError(
                "no replay buffer: train the agent with record=True (trained_dqn(..., "
                "record=True)) so that its transitions are kept"
            )
        return cls(
            np.asarray(buffer["obs"], np.float32),
            np.asarray(buffer["action"], np.int64),
            np.asarray(buffer["reward"], np.float32),
            np.asarray(buffer["next_obs"], np.float32),
            np.asarray(buffer["done"], np.float32),
        )

    def take(self, rows: np.ndarray) -> Transitions:
        return Transitions(*(getattr(self, k)[rows] for k in self.__dataclass_fields__))

    def split(self, validation: int, *, seed: int = 0) -> tuple[Transitions, Transitions]:
        """A seeded random split into training and ``validation`` held-out transitions."""
        n = len(self)
        if not 0 < validation < n:
            raise ValueError(f"validation must be between 1 and {n - 1}; got {validation}")
        perm = np.random.default_rng(seed).permutation(n)
        return self.take(np.sort(perm[validation:])), self.take(np.sort(perm[:validation]))


@dataclass(frozen=True)
class OutcomeEval:
    """Exact outcome characteristic values ``values`` (M,) at explained states ``xe`` (M, F)
    and coalitions ``c`` (M, F) -- only where they can be computed (small domains)."""

    xe: np.ndarray
    c: np.ndarray
    values: np.ndarray


class _Tensors:
    """The transitions and explained states on the device, and the policy at next states."""

    def __init__(self, t: Transitions, explained: np.ndarray, policy_fn: PolicyFn, dev) -> None:
        as_f = lambda a: torch.as_tensor(np.asarray(a, np.float32), device=dev)  # noqa: E731
        self.s, self.s2, self.r, self.d = (
            as_f(t.obs),
            as_f(t.next_obs),
            as_f(t.reward),
            as_f(t.done),
        )
        self.a = torch.as_tensor(np.asarray(t.action, np.int64), device=dev)
        self.xe = as_f(explained)
        self.policy_fn, self.dev = policy_fn, dev

    def policy(self, x: torch.Tensor) -> torch.Tensor:
        probs = np.asarray(self.policy_fn(x.reshape(-1, x.shape[-1]).cpu().numpy()), np.float32)
        return torch.as_tensor(probs, device=self.dev).reshape(*x.shape[:-1], -1)


def conditioned_policy(
    x: torch.Tensor, xe: torch.Tensor, c: torch.Tensor, pi_x: torch.Tensor, pi_tilde: PartialPolicy
) -> torch.Tensor:
    """π̂(· | s; s_e, C): π̃_{s_e}(C) on rows where s = s_e (every feature equal), else π(s).

    ``x``, ``xe``, ``c`` are ``(..., F)``, ``pi_x`` = π(s) ``(..., A)``; π̃ is evaluated on the
    matching rows only (in a buffer of another policy's transitions they are few).
    """
    at_e = (x == xe).all(-1)
    if not bool(at_e.any()):
        return pi_x
    probs = pi_x.clone()
    probs[at_e] = pi_tilde(xe[at_e], c[at_e]).to(probs.dtype)
    return probs


def train_outcome_replay(
    transitions: Transitions,
    explained: np.ndarray,
    policy_fn: PolicyFn,
    pi_tilde: PartialPolicy,
    cfg: OutcomeConfig,
    *,
    validation: Transitions | None = None,
    exact: OutcomeEval | None = None,
    gamma: float = 1.0,
    device: torch.device | str | None = None,
) -> tuple[BatchedMLP, Curves]:
    """Eqs. 15-16 on observations: ``cfg.n_runs`` networks Q(s, a | s_e, C) as one group.

    ``explained`` ``(N_e, F)``: on-policy states (with repeats; their frequencies stand for
    p^π) from which every transition's s_e is drawn. ``pi_tilde`` must live on ``device``
    (``None``: :func:`~shaprl.batched.default_device`). Every ``cfg.eval_every`` updates the
    curves record, per run, the TD loss on ``validation`` (fixed s_e and C; its target moves
    with the target network) and, with ``exact``, the exact MSE of the Eq. 16 readout.
    The final weights are kept (no selection: the TD loss is not a fixed objective).
    """
    dev = resolve_device(device)
    f = transitions.obs.shape[1]
    if np.asarray(explained).ndim != 2 or np.asarray(explained).shape[1] != f:
        raise ValueError(
            f"explained must be (N_e, {f}) states of the transitions' feature space; "
            f"got shape {np.asarray(explained).shape}"
        )
    data = _Tensors(transitions, explained, policy_fn, dev)
    a_n = int(data.policy(data.s2[:1]).shape[-1])
    r, b, k = cfg.n_runs, cfg.batch_size, 64
    run_cfg = TrainConfig(n_runs=r, seed=cfg.seed)  # per-run seeds and generators
    seeds = run_cfg.seeds()
    net = BatchedMLP(seeds, 3 * f, cfg.hidden, a_n, device=dev)
    target = BatchedMLP(seeds, 3 * f, cfg.hidden, a_n, device=dev)
    target.load_state_dict(net.state_dict())
    opt = _adam(net, cfg.learning_rate)
    n, n_e = len(transitions), len(data.xe)

    def make(g: torch.Generator) -> tuple:
        j = torch.randint(n, (k, b), generator=g)
        e = torch.randint(n_e, (k, b), generator=g)
        return j, e, uniform_coalitions((k, b), f, g)

    draws = _Draws(_generators(run_cfg), make)

    def batch(j: torch.Tensor, e: torch.Tensor, c: torch.Tensor, src: _Tensors) -> tuple:
        j, e, c = j.to(dev), e.to(dev), c.to(dev)
        xe = data.xe[e]
        x, x2 = src.s[j], src.s2[j]
        nxt_pi = conditioned_policy(x2, xe, c, src.policy(x2), pi_tilde)
        return (
            outcome_inputs(x, xe, c),
            src.a[j],
            src.r[j],
            src.d[j],
            outcome_inputs(x2, xe, c),
            nxt_pi,
        )

    val = None
    if validation is not None:
        vsrc = _Tensors(validation, explained, policy_fn, dev)
        g = torch.Generator().manual_seed(cfg.seed + 7919)
        m = len(validation)
        e_val = torch.randint(n_e, (m,), generator=g)
        val = batch(torch.arange(m), e_val, uniform_coalitions((m,), f, g), vsrc)
    ex = None
    if exact is not None:
        xe = torch.as_tensor(np.asarray(exact.xe, np.float32), device=dev)
        c = torch.as_tensor(np.asarray(exact.c, bool), device=dev)
        values = torch.as_tensor(np.asarray(exact.values, np.float32), device=dev)
        ex = (outcome_inputs(xe, xe, c), pi_tilde(xe, c), values)

    marks, val_curve, exact_curve = [], [], []

    @torch.no_grad()
    def evaluate(step: int) -> None:
        marks.append(step)
        if val is not None:
            inp, a, rew, d, inp2, pi2 = val
            y = rew + gamma * (1.0 - d) * (target(inp2) * pi2).sum(-1)
            q = net(inp).gather(-1, a.expand(r, -1)[..., None])[..., 0]
            val_curve.append((q - y).pow(2).mean(-1).cpu().numpy())
        if ex is not None:
            inp, probs, values = ex
            pred = outcome_value(net(inp), probs)[..., 0]
            exact_curve.append((pred - values).pow(2).mean(-1).cpu().numpy())

    evaluate(0)
    seconds = 0.0
    for step in range(1, cfg.updates + 1):
        t0 = time.perf_counter()
        j, e, c = draws.next()
        expected_sarsa_update(net, target, opt, *batch(j, e, c, data), gamma, cfg.tau)
        seconds += time.perf_counter() - t0
        if step % cfg.eval_every == 0 or step == cfg.updates:
            evaluate(step)
    exact_mse = np.stack(exact_curve, axis=1) if exact_curve else None
    val_loss = np.stack(val_curve, axis=1) if val_curve else np.zeros((r, len(marks)))
    curves = Curves(
        np.asarray(marks),
        exact_mse,
        val_loss,
        seconds,
        r * cfg.updates / max(seconds, 1e-9),
        None if exact_mse is None else exact_mse[:, -1],
    )
    return net, curves


def replay_characteristic(
    net: BatchedMLP, pi_tilde: PartialPolicy, member: int = 0
) -> OutcomeCharacteristic:
    """One run of a :func:`train_outcome_replay` group as the upstream of outcome Shapley
    models: ṽ_s(C) = Σ_a π̃_s(C)(a) Q(s, a | s, C) (Eq. 16 with s_e = s)."""
    return OutcomeCharacteristic(net.member(member).eval(), _AtInputState(pi_tilde))


class _AtInputState:
    """π̃ at the explained state = the input state (a class: picklable, unlike a lambda)."""

    def __init__(self, pi_tilde: PartialPolicy) -> None:
        self.pi_tilde = pi_tilde

    def __call__(self, idx: torch.Tensor | None, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.pi_tilde(x, c)


@torch.no_grad()
def outcome_state_data(
    states: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
    characteristic: OutcomeCharacteristic,
    *,
    device: torch.device | str | None = None,
    chunk: int = 8_192,
) -> StateData:
    """:class:`~.training.StateData` for outcome Shapley models (Eq. 21).

    Its targets -- the v(F) of the efficiency correction, Eq. 22 -- are the learned
    characteristic at the grand coalition, ṽ_s(F), as in the authors' code (their note: the
    learned characteristic at F is more accurate than the agent's value estimate).
    """
    dev = resolve_device(device)
    x = torch.as_tensor(np.asarray(states, np.float32), device=dev)
    grand = [
        characteristic(None, part, torch.ones(part.shape, dtype=torch.bool, device=dev))
        for part in x.split(chunk)
    ]
    return StateData(states, torch.cat(grand).cpu().numpy(), train, val)
