"""Monte Carlo SVERL for continuous states (and continuous actions), with approximate conditionals.

SVERL's characteristics condition the steady state on the known features, s_C = x_C (Def. 17,
Eq. 11; Def. 27 for continuous actions). With continuous features no visited state matches
x_C exactly, and SVERL Secs. 4.4 and 10.2 leave the conditional distribution p(s | s_C = x_C)
to be learned. This module approximates it from a sample of visited states s_1..s_N by
weights w_n(C) on the sample, chosen by a :class:`Conditional`:

* ``"kernel"``: w_n(C) = exp(-sum_{i in C} ((s_n,i - x_i) / sigma_i)^2 / (2 h^2)), a Gaussian
  kernel on the known features scaled by their sample standard deviations sigma_i, with
  bandwidth ``h`` (in standard deviations);
* ``"knn"``: w_n(C) = 1 for the ``k`` sample states nearest to x on the known features
  (standardised Euclidean distance; ties at the k-th distance all count), 0 otherwise;
* ``"bins"``: each feature is cut into ``n_bins`` equal-count bins of the sample, and
  w_n(C) = 1 when s_n falls in x's bin on every known feature;
* ``"exact"``: w_n(C) = 1 when s_n,C = x_C exactly (discrete features; SVERL's own definition).

Every approximation becomes exact as the sample grows and h -> 0, k / N -> 0 or the bins
shrink, but at a finite sample it trades bias (too wide) against variance (too narrow); the
results are labelled approximate and notebooks 41-42 show how they move with the parameter.
The empty coalition always weights the whole sample (the steady-state mean), and the full
coalition is the agent's own output at x (v(F) = pi(x), as in the exact definition), so the
Shapley values add up to the agent's output minus its steady-state mean.

Characteristics (per explained state x, all 2**F coalitions, F <= 12):

* behaviour: the weighted average of pi(.|s_n) (discrete, Def. 17) or of the policy's action
  a(s_n) (continuous, Def. 27: the expected action under partial information);
* prediction: the weighted average of the agent's value estimates V^(s_n) (Def. 44);
* outcome (Def. 34): the return when the agent acts with partial information at x and follows
  its policy elsewhere. In a continuous state space the agent revisits x with probability 0,
  so this is E_{a ~ q_C}[Q^pi(x, a)] for discrete actions, estimated by ``n_rollouts``
  rollouts of every action from x (shared by all coalitions), and for continuous actions the
  return of taking the expected action a_C at x, by ``n_rollouts`` rollouts per coalition.
  Rollouts start from x by setting the simulator's state (:class:`ClassicControlSimulator`)
  and run ``horizon`` steps at most with discount ``gamma``.

Standard errors come from ``n_bootstrap`` Poisson-bootstrap replicates of the state sample
and of the rollouts; they do not include the approximation's bias.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from joblib import Parallel, delayed

from ..shapley.exact import exact_shapley
from .explanation import Explanation, KindResult

KINDS = ("behaviour", "outcome", "prediction")
METHODS = ("kernel", "knn", "bins", "exact")
MAX_FEATURES = 12


@dataclass(frozen=True)
class Conditional:
    """How p(s | s_C = x_C) is approximated from a state sample (see the module docstring).

    ``bandwidth`` (kernel, in sample standard deviations), ``k`` (nearest neighbours) and
    ``n_bins`` (equal-count bins per feature) are the parameters of the three approximations.
    """

    method: str = "kernel"
    bandwidth: float = 0.25
    k: int = 100
    n_bins: int = 8

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"conditional method must be one of {METHODS}; got {self.method!r}")
        if self.bandwidth <= 0 or self.k < 1 or self.n_bins < 1:
            raise ValueError("bandwidth must be > 0, k >= 1 and n_bins >= 1")

    @property
    def label(self) -> str:
        return {
            "kernel": f"kernel, bandwidth {self.bandwidth:g} sd",
            "knn": f"{self.k} nearest neighbours",
            "bins": f"{self.n_bins} equal-count bins per feature",
            "exact": "exact match",
        }[self.method]

    @property
    def is_approximate(self) -> bool:
        return self.method != "exact"

    def weights(self, sample: np.ndarray, x: np.ndarray, coalitions: np.ndarray) -> np.ndarray:
        """``(N, K)`` weights of the sample rows for each coalition bitmask (see the docstring)."""
        n, f = sample.shape
        member = ((np.asarray(coalitions)[None, :] >> np.arange(f)[:, None]) & 1).astype(float)
        if self.method == "kernel" or self.method == "knn":
            scale = sample.std(axis=0)
            scale = np.where(scale > 0, scale, 1.0)
            dist = ((sample - x[None]) / scale) ** 2  # (N, F)
        elif self.method == "bins":
            dist = np.zeros_like(sample, dtype=float)
            for i in range(f):
                edges = np.unique(np.quantile(sample[:, i], np.linspace(0, 1, self.n_bins + 1)))
                inner = edges[1:-1]
                dist[:, i] = np.searchsorted(inner, sample[:, i]) != np.searchsorted(inner, x[i])
        else:
            dist = (sample != x[None]).astype(float)
        total = dist @ member  # (N, K): distance on the known features only
        if self.method == "kernel":
            return np.exp(-total / (2.0 * self.bandwidth**2))
        if self.method == "knn":
            k = min(self.k, n)
            kth = np.partition(total, k - 1, axis=0)[k - 1]
            return (total <= kth[None] + 1e-12).astype(float)
        return (total == 0).astype(float)


class ClassicControlSimulator:
    """A gymnasium classic-control environment that can be put into the state of a feature row.

    Rollouts for the outcome characteristic start from the explained state. gymnasium's
    classic-control environments keep their physical state in ``env.unwrapped.state``;
    setting it puts the environment there. Supported (observation -> state):
    ``CartPole`` and ``MountainCar`` / ``MountainCarContinuous`` (the observation is the
    state), ``Pendulum`` (state (theta, theta_dot) from (cos, sin, theta_dot)), ``Acrobot``
    (the two angles from their cosines and sines, then the velocities). Other environments
    need ``set_state(env, features)``. Toy-text environments (FrozenLake, CliffWalking,
    Taxi) set ``env.unwrapped.s``: use :meth:`GymTabular.simulator` for them. Box2D and
    MuJoCo environments cannot be set this way from the observation alone.
    """

    def __init__(self, env_factory: Callable[[], object], set_state=None) -> None:
        self.env_factory = env_factory
        self.env = env_factory()
        self._set_state = set_state
        space = self.env.action_space
        self.discrete = hasattr(space, "n")
        self.n_actions = int(space.n) if self.discrete else int(np.prod(space.shape))

    def reset(self, seed: int | None = None) -> np.ndarray:
        obs, _ = self.env.reset(seed=seed)
        return np.asarray(obs, float).reshape(-1)

    @property
    def set_state(self) -> Callable[[object, np.ndarray], None]:
        """The state setter (resolved when first needed: only outcome rollouts need it)."""
        if self._set_state is None:
            self._set_state = state_setter(self.env)
        return self._set_state

    def reset_to(self, features: np.ndarray) -> None:
        self.env.reset()
        self.set_state(self.env, np.asarray(features, float))

    def step(self, action) -> tuple[np.ndarray, float, bool, bool]:
        a = int(action) if self.discrete else np.asarray(action, np.float32).reshape(-1)
        obs, reward, terminated, truncated, _ = self.env.step(a)
        return np.asarray(obs, float).reshape(-1), float(reward), bool(terminated), bool(truncated)


def state_setter(env) -> Callable[[object, np.ndarray], None]:
    """``set_state(env, features)`` for the classic-control environments that allow it."""
    name = type(env.unwrapped).__name__

    def direct(e, f):
        e.unwrapped.state = np.asarray(f, float).copy()
        if hasattr(e.unwrapped, "steps_beyond_terminated"):
            e.unwrapped.steps_beyond_terminated = None

    def pendulum(e, f):
        e.unwrapped.state = np.array([np.arctan2(f[1], f[0]), f[2]])

    def acrobot(e, f):
        e.unwrapped.state = np.array([np.arctan2(f[1], f[0]), np.arctan2(f[3], f[2]), f[4], f[5]])

    setters = {
        "CartPoleEnv": direct,
        "MountainCarEnv": direct,
        "Continuous_MountainCarEnv": direct,
        "PendulumEnv": pendulum,
        "AcrobotEnv": acrobot,
    }
    if name not in setters:
        raise TypeError(
            f"cannot put {name} into a given state from its observation; pass "
            "explain_agent(..., set_state=fn) with fn(env, features) -> None (it only matters "
            "for outcome: behaviour and prediction need no settable simulator)"
        )
    return setters[name]


def collect_visited(
    simulator: ClassicControlSimulator,
    agent,
    n_steps: int,
    *,
    seed: int,
    horizon: int = 500,
    steps_per_job: int = 2_000,
    lanes_per_job: int = 64,
) -> np.ndarray:
    """``(n_steps, F)`` observations visited by the agent from the start distribution.

    Discrete actions are sampled from the policy, continuous actions are the explained action.
    The steps are split into lanes of ``steps_per_job`` steps, each with its own seed and
    simulator; the lanes advance in lockstep, so the agent is queried once per step for all of
    them (one batched policy call instead of one per lane). Groups of ``lanes_per_job`` lanes run
    as joblib jobs; the result does not depend on the backend or on the grouping.
    """
    n_lanes = -(-n_steps // steps_per_job)
    seeds = np.random.SeedSequence(seed).spawn(n_lanes)
    quotas = [min(steps_per_job, n_steps - j * steps_per_job) for j in range(n_lanes)]
    groups = range(0, n_lanes, lanes_per_job)
    parts = Parallel()(
        delayed(_visit_lanes)(
            simulator, agent, quotas[g : g + lanes_per_job], seeds[g : g + lanes_per_job], horizon
        )
        for g in groups
    )
    return np.concatenate([lane for part in parts for lane in part])


def _visit_lanes(sim, agent, quotas, seeds, horizon) -> list[np.ndarray]:
    """Run one lane per quota in lockstep (batched policy calls); each lane's own rng draws
    its resets and actions in the order a lane run alone would."""
    sims = [copy.deepcopy(sim) for _ in quotas]
    rngs = [np.random.default_rng(s) for s in seeds]
    obs = [s.reset(seed=int(r.integers(2**31))) for s, r in zip(sims, rngs, strict=True)]
    steps = [0] * len(quotas)
    rows: list[list[np.ndarray]] = [[] for _ in quotas]
    active = [i for i, q in enumerate(quotas) if q > 0]
    while active:
        batch = np.stack([obs[i] for i in active])
        for i in active:
            rows[i].append(obs[i])
        actions = _act_lanes(agent, batch, [rngs[i] for i in active])
        for a, i in zip(actions, active, strict=True):
            nxt, _, done, cut = sims[i].step(a)
            steps[i] += 1
            if done or cut or steps[i] >= horizon:
                nxt, steps[i] = sims[i].reset(seed=int(rngs[i].integers(2**31))), 0
            obs[i] = nxt
        active = [i for i in active if len(rows[i]) < quotas[i]]
    return [np.asarray(r) for r in rows]


def _act_lanes(agent, obs: np.ndarray, rngs: list[np.random.Generator]) -> list:
    """One action per row of ``obs`` from one policy call; row k's draw uses ``rngs[k]``."""
    if agent.is_continuous:
        return list(agent.action(obs))
    cdf = np.cumsum(agent.probabilities(obs), axis=1)[:, :-1]
    return [int((r.random() > c).sum()) for r, c in zip(rngs, cdf, strict=True)]


def _act(agent, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if agent.is_continuous:
        return agent.action(obs)
    p = agent.probabilities(obs)
    return (rng.random((len(p), 1)) > np.cumsum(p, axis=1)[:, :-1]).sum(axis=1)


class ApproximateMonteCarloSVERL:
    """Monte Carlo SVERL with an approximate conditional, for continuous state features.

    Parameters
    ----------
    agent:
        :class:`~shaprl.agents.adapters.AgentFunctions` (discrete or continuous actions).
    states:
        ``(N, F)`` sample of visited observations (e.g. :func:`collect_visited`).
    conditional:
        The :class:`Conditional` approximation (default: Gaussian kernel, bandwidth 0.25 sd).
    simulator:
        A :class:`ClassicControlSimulator` for outcome rollouts (``None``: no outcome).
    gamma, horizon:
        Discount and maximum length of outcome rollouts.
    feature_names, action_names:
        Labels.
    """

    def __init__(
        self,
        agent,
        states: np.ndarray,
        *,
        conditional: Conditional | None = None,
        simulator: ClassicControlSimulator | None = None,
        gamma: float = 0.99,
        horizon: int = 500,
        feature_names: Sequence[str] | None = None,
        action_names: Sequence[str] | None = None,
    ) -> None:
        rows = np.asarray(states, float)
        if rows.ndim != 2 or len(rows) == 0:
            raise ValueError(f"states must be a non-empty (N, F) sample; got shape {rows.shape}")
        if not np.isfinite(rows).all():
            raise ValueError("the state sample contains NaN or infinite features")
        if rows.shape[1] > MAX_FEATURES:
            raise ValueError(
                f"{rows.shape[1]} features: this route enumerates all 2**F coalitions (F <= "
                f"{MAX_FEATURES}); use the amortised FastSVERL route for more features"
            )
        self.agent, self.sample = agent, rows
        self.conditional = conditional or Conditional()
        self.simulator, self.gamma, self.horizon = simulator, float(gamma), int(horizon)
        self.n_features = rows.shape[1]
        self.feature_names = tuple(feature_names or (f"x{i}" for i in range(self.n_features)))
        if len(self.feature_names) != self.n_features:
            raise ValueError(f"{len(self.feature_names)} names for {self.n_features} features")
        self.targets = agent.action(rows) if agent.is_continuous else agent.probabilities(rows)
        default = "action" if agent.is_continuous else "a"
        self.action_names = tuple(
            action_names or (f"{default}{i}" for i in range(self.targets.shape[1]))
        )
        self.values = agent.values(rows) if agent.value is not None else None

    def explain(
        self,
        features: np.ndarray,
        kinds: str | Sequence[str] = KINDS,
        *,
        n_rollouts: int = 16,
        n_bootstrap: int = 32,
        seed: int = 0,
    ) -> Explanation:
        """Approximate Shapley values of the observations ``features`` (one row or ``(k, F)``)."""
        from .explainer import check_kinds

        kinds = check_kinds(kinds)
        rows = np.atleast_2d(np.asarray(features, float))
        if rows.size == 0:
            raise ValueError("features= is empty: pass at least one observation to explain")
        if rows.shape[1] != self.n_features or not np.isfinite(rows).all():
            raise ValueError(
                f"explained observations must be finite rows of length {self.n_features}; got "
                f"shape {rows.shape}" + ("" if np.isfinite(rows).all() else " with NaN")
            )
        if "prediction" in kinds and self.values is None:
            raise ValueError("prediction needs the agent's value function (agent.value is None)")
        if "outcome" in kinds and self.simulator is None:
            raise ValueError("outcome needs a simulator that starts rollouts at x (simulator=)")
        start = time.perf_counter()
        self._rows = rows
        coalitions = np.arange(1 << self.n_features)
        rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
        boot = np.column_stack(
            [np.ones(len(self.sample)), rng.poisson(1.0, (len(self.sample), n_bootstrap))]
        )  # (N, 1 + B): the sample itself, then its bootstrap reweightings
        per_kind: dict[str, list] = {k: [] for k in kinds}
        need_beh = "behaviour" in kinds or "outcome" in kinds
        bt_beh = _replicated(boot, self.targets) if need_beh else None
        bt_pred = _replicated(boot, self.values[:, None]) if "prediction" in kinds else None
        rollout_jobs = []
        for j, x in enumerate(rows):
            w = self.conditional.weights(self.sample, x, coalitions)  # (N, K)
            own = self._own(x)
            if "behaviour" in kinds or "outcome" in kinds:
                beh = _weighted(w, boot, self.targets, own["behaviour"], bt_beh)  # (K, 1+B, m)
            if "behaviour" in kinds:
                per_kind["behaviour"].append(beh)
            if "prediction" in kinds:
                per_kind["prediction"].append(
                    _weighted(w, boot, self.values[:, None], own["prediction"], bt_pred)
                )
            if "outcome" in kinds:
                first = beh[:, 0] if self.agent.is_continuous else np.arange(beh.shape[2])
                seeds = np.random.SeedSequence([seed, j, 11]).spawn(len(first))
                rollout_jobs.append((j, beh, first, seeds))
        if rollout_jobs:
            per_kind["outcome"] = self._outcomes(rollout_jobs, n_rollouts, n_bootstrap, seed)
        results = {}
        outputs = {"behaviour": self.action_names, "outcome": ("value",), "prediction": ("value",)}
        for kind in kinds:
            char = np.stack(per_kind[kind])  # (n, K, 1+B, m)
            phi = np.moveaxis(exact_shapley(np.moveaxis(char, 1, 0)), 0, 1)  # (n, F, 1+B, m)
            err = (
                phi[:, :, 1:].std(axis=2, ddof=1)
                if n_bootstrap > 1
                else np.zeros_like(phi[:, :, 0])
            )
            samples = {"states": len(self.sample), "bootstrap": n_bootstrap}
            if kind == "outcome":
                samples["rollouts"] = self._rollout_count
            results[kind] = KindResult(phi[:, :, 0], char[:, :, 0], outputs[kind], err, samples)
        label = self.conditional.label
        method = "monte carlo" + (
            f" (approximate: {label})" if self.conditional.is_approximate else ""
        )
        return Explanation(
            np.arange(len(rows)),
            tuple(str(tuple(np.round(r, 3).tolist())) for r in rows),
            self.feature_names,
            results,
            "conditional",
            method,
            rows,
            {
                "conditional": label,
                "approximate": self.conditional.is_approximate,
                "agent": self.agent.description,
                "gamma": self.gamma,
                "horizon": self.horizon,
                "seed": seed,
                "wall_time_s": time.perf_counter() - start,
            },
        )

    def _own(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The agent's outputs at x itself: v(F) of behaviour and prediction."""
        target = (
            self.agent.action(x[None])
            if self.agent.is_continuous
            else (self.agent.probabilities(x[None]))
        )
        out = {"behaviour": target[0]}
        if self.values is not None:
            out["prediction"] = self.agent.values(x[None])
        return out

    def _outcomes(self, jobs, n_rollouts, n_bootstrap, seed) -> list[np.ndarray]:
        """v(C) of outcome for every coalition, with bootstrap replicates of the rollouts."""
        flat = [
            (j, i, a, s)
            for j, _, first, seeds in jobs
            for i, (a, s) in enumerate(zip(first, seeds, strict=True))
        ]
        returns = Parallel()(
            delayed(_rollouts)(
                self.simulator, self.agent, self._x(j), a, n_rollouts, self.gamma, self.horizon, s
            )
            for j, _, a, s in flat
        )
        self._rollout_count = len(flat) * n_rollouts
        by_state: dict[int, list] = {}
        for (j, _i, _, _), ret in zip(flat, returns, strict=True):
            by_state.setdefault(j, []).append(ret)
        rng = np.random.default_rng(np.random.SeedSequence([seed, 13]))
        out = []
        for j, beh, _, _ in jobs:
            r = np.stack(by_state[j])  # (n_first, R)
            resample = rng.poisson(1.0, (n_bootstrap, r.shape[1]))
            means = np.column_stack(
                [r.mean(axis=1)] + [(r * c).sum(axis=1) / max(c.sum(), 1) for c in resample]
            )  # (n_first, 1 + B)
            if self.agent.is_continuous:  # one first action per coalition
                out.append(means[:, :, None])
            else:  # E_{a ~ q_C} Q(x, a), sample replicates of q times rollout replicates of Q
                out.append(np.einsum("kba,ab->kb", beh, means)[:, :, None])
        return out

    def _x(self, j: int) -> np.ndarray:
        return self._rows[j]


def _replicated(boot: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``(N, (1+B) m)``: each target row times each replicate weight (state-independent)."""
    return (boot[:, :, None] * targets[:, None, :]).reshape(len(boot), -1)


def _weighted(
    w: np.ndarray,
    boot: np.ndarray,
    targets: np.ndarray,
    own: np.ndarray,
    replicated: np.ndarray | None = None,
) -> np.ndarray:
    """``(K, 1+B, m)`` weighted averages of ``targets`` for each coalition and replicate.

    The full coalition (last row) is the agent's own output at x. ``replicated`` is
    :func:`_replicated` of ``boot`` and ``targets``, computed once for all explained states.
    """
    b, m = boot.shape[1], targets.shape[1]
    if replicated is None:
        replicated = _replicated(boot, targets)
    # Two BLAS products (a three-operand einsum would loop over N x K x B x m in C).
    num = (w.T @ replicated).reshape(-1, b, m)
    den = (w.T @ boot)[:, :, None]
    if (den[:-1, 0] <= 0).any():  # the full coalition is replaced by the agent's own output
        raise ValueError(
            "no sample state falls in the explained state's neighbourhood for some coalition; "
            "widen the conditional (larger bandwidth, k or fewer bins) or collect more states"
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), num[:, :1] / den[:, :1])
    out[-1] = own[None]
    return out


def _rollouts(sim, agent, x, first, n, gamma, horizon, seed) -> np.ndarray:
    """``(n,)`` discounted returns: take ``first`` at x, then follow the agent, run together."""
    rng = np.random.default_rng(seed)
    sims = [copy.deepcopy(sim) for _ in range(n)]
    for s in sims:
        s.env.reset(seed=int(rng.integers(2**31)))
        s.set_state(s.env, x)
    returns = np.zeros(n)
    alive = np.ones(n, bool)
    obs = np.zeros((n, len(x)))
    disc = 1.0
    for t in range(horizon):
        idx = np.flatnonzero(alive)
        if not idx.size:
            break
        acts = [first] * len(idx) if t == 0 else list(_act(agent, obs[idx], rng))
        for i, a in zip(idx, acts, strict=True):
            o, r, done, _ = sims[i].step(a)
            returns[i] += disc * r
            obs[i] = o
            if done:
                alive[i] = False
        disc *= gamma
    return returns
