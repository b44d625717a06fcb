"""Off-policy FastSVERL: learning explanation models from the agent's own history (Sec. 4, App. D).

A characteristic or Shapley model wants states from the steady state p^pi of the explained
policy pi; what is at hand is the replay buffer B of a learning agent, filled by a sequence
of behaviour policies pi_t. FastSVERL reweights every buffer sample by the ratio of action
probabilities (Eq. 17, App. D Eq. 37):

    L(beta) ~ E_{(s_t, a_t) ~ B} [ pi(s_t, a_t) / pi_t(s_t, a_t) * l(s_t; beta) ].

For an epsilon-greedy DQN, pi_t(s, a) = eps_t / |A| + (1 - eps_t) [a = g_t(s)], with eps_t and
the greedy action g_t recorded at acting time (``train_dqn(record=True)``), so pi_t is
recovered exactly. Variants (App. D.2), applied to the ratios rho of one minibatch:

* ``"none"``: w = 1 (the buffer as if it were on-policy);
* ``"unnormalised"``: w = rho;
* ``"normalised"``: w = rho / sum_batch rho (weights of a batch sum to one, as the authors'
  code; the loss is then mean_b w_b l_b, i.e. the self-normalised estimate divided by B);
* ``clip=c``: w <- clamp(w, 1 - c, 1 + c) *after* the step above (the authors' order: with
  normalised weights of order 1/B, c = 0.99, 0.995, 0.998 lift small weights to a floor
  1 - c; c = 0 gives w = 1, i.e. no importance sampling).

A remark the derivation leaves implicit: given the state, the ratio has conditional mean
sum_a pi_t(s, a) pi(s, a) / pi_t(s, a) = 1 whenever pi_t covers pi's actions, so for a loss
l(s) that does not depend on a_t, Eq. 17 is unbiased for the expectation under the *buffer's*
action distribution replaced by pi (tested), not for the state distribution p^pi; the
weights change the state mix only through which samples a batch keeps (zero weight where pi
would not have taken a_t) and through normalisation. The experiments measure what that buys.

:func:`masson_loftus_stderr` gives the within-subject standard errors the paper reports
(Masson & Loftus 2003): every agent is explained under every condition, so agent-to-agent
differences are removed before the spread across agents is taken.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from joblib import Parallel, delayed

from ..agents import DQNAgent, DQNConfig, trained_dqn
from ..batched import BatchedMLP, member_seeds
from ..mdp.tabular import TabularMDP
from .coalitions import mask, uniform_coalitions
from .exact import TabularProblem, tabular_problem
from .training import CharacteristicEval, TrainConfig, resolve_device

WEIGHTINGS = ("none", "unnormalised", "normalised")


# -- importance ratios and weights (Eq. 17) ---------------------------------------------------------
def epsilon_greedy_probability(
    actions: np.ndarray, epsilon: np.ndarray, greedy: np.ndarray, n_actions: int
) -> np.ndarray:
    """pi_t(s_t, a_t) of an epsilon-greedy policy: eps/|A| + (1 - eps) [a_t = greedy_t]."""
    actions, epsilon, greedy = np.asarray(actions), np.asarray(epsilon, float), np.asarray(greedy)
    if (greedy < 0).any():
        raise ValueError(
            "greedy actions are missing (-1) in the buffer; train the agent with "
            "train_dqn(..., record=True) so that pi_t can be recomputed"
        )
    return epsilon / n_actions + (1.0 - epsilon) * (actions == greedy)


def importance_ratios(
    target_probs: np.ndarray, actions: np.ndarray, behaviour_probs: np.ndarray
) -> np.ndarray:
    """rho_t = pi(s_t, a_t) / pi_t(s_t, a_t) (Eq. 17).

    ``target_probs`` is ``(N, A)``: the explained policy's action probabilities at the buffer
    states; ``behaviour_probs`` is ``(N,)``: pi_t(s_t, a_t) of the action actually taken.
    """
    target_probs = np.asarray(target_probs, float)
    behaviour_probs = np.asarray(behaviour_probs, float)
    if (behaviour_probs <= 0).any():
        raise ValueError(
            "a behaviour probability pi_t(s_t, a_t) is <= 0: a taken action must have pi_t > 0"
        )
    taken = target_probs[np.arange(len(target_probs)), np.asarray(actions)]
    return taken / behaviour_probs


def importance_weights(
    ratios: torch.Tensor, weighting: str = "normalised", clip: float | None = None
) -> torch.Tensor:
    """Per-sample weights of minibatches of ratios ``(..., B)`` (module docstring)."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if weighting == "none":
        w = torch.ones_like(ratios)
    elif weighting == "unnormalised":
        w = ratios
    else:
        total = ratios.sum(-1, keepdim=True)
        w = torch.where(total > 0, ratios / total.clamp_min(1e-30), torch.zeros_like(ratios))
    if clip is not None:
        if clip < 0:
            raise ValueError(f"clip must be >= 0 (weights clamped to [1 - c, 1 + c]); got {clip}")
        w = w.clamp(1.0 - clip, 1.0 + clip)
    return w


# -- where the samples come from ----------------------------------------------------------------
@dataclass(frozen=True)
class Condition:
    """One training condition: on-policy data, or the agent's buffer with a weighting."""

    name: str
    data: str = "buffer"  #: "on-policy" or "buffer"
    weighting: str = "none"
    clip: float | None = None

    def __post_init__(self) -> None:
        if self.data not in ("on-policy", "buffer"):
            raise ValueError(f"data must be 'on-policy' or 'buffer', got {self.data!r}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")


@dataclass(frozen=True)
class Source:
    """Samples of one condition: state indices ``idx`` (N,) and their ratios (N,)."""

    idx: np.ndarray
    ratio: np.ndarray
    weighting: str = "none"
    clip: float | None = None


@dataclass
class WeightedCurves:
    """Exact-MSE learning curves ``(R, T)`` of members (condition-major, then seed)."""

    updates: np.ndarray
    exact_mse: np.ndarray
    seconds: float
    conditions: list[str] = field(default_factory=list)
    n_seeds: int = 1


def train_weighted_characteristics(
    states: np.ndarray,
    targets: np.ndarray,
    sources: Sequence[Source],
    cfg: TrainConfig,
    exact: CharacteristicEval,
    *,
    device: torch.device | str | None = None,
) -> WeightedCurves:
    """Behaviour/prediction characteristic models (Eqs. 12-13) under importance weights.

    Every source (condition) gets ``cfg.n_runs`` seeded members; all members of all sources
    train together as one :class:`~shaprl.batched.BatchedMLP`. Member ``(j, r)`` draws
    minibatches uniformly from source ``j``'s samples, masks each with a uniform coalition,
    and minimises mean_b w_b mean_j (f_j(s_b) - f̂_j(s_b masked))**2 with w from
    :func:`importance_weights`. The r-th seed is the same under every source (common random
    numbers: conditions are compared on equal initial weights). No validation selection:
    the curves are exact MSE (unweighted, over distinct masked inputs) every ``eval_every``.
    ``device=None``: a GPU when present (:func:`~.training.resolve_device`).
    """
    device = resolve_device(device)
    f, m, b, n = states.shape[1], targets.shape[1], cfg.batch_size, cfg.n_runs
    seeds = member_seeds(cfg.seed, n)
    x_all = torch.as_tensor(states, dtype=torch.float32, device=device)
    y_all = torch.as_tensor(targets, dtype=torch.float32, device=device)
    flat_idx = torch.as_tensor(np.concatenate([s.idx for s in sources]), dtype=torch.long)
    flat_ratio = torch.as_tensor(np.concatenate([s.ratio for s in sources]), dtype=torch.float32)
    sizes = [len(s.idx) for s in sources]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    member_offset = torch.as_tensor(np.repeat(offsets, n), dtype=torch.long)[:, None, None]
    member_size = torch.as_tensor(np.repeat(sizes, n), dtype=torch.float64)[:, None, None]
    model = BatchedMLP(seeds * len(sources), f, cfg.hidden, m, device=device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, foreach=True)
    gens = [
        torch.Generator().manual_seed(s + 104_729 * j) for j in range(len(sources)) for s in seeds
    ]
    ex_x = torch.as_tensor(exact.inputs, dtype=torch.float32, device=device)
    ex_y = torch.as_tensor(exact.values, dtype=torch.float32, device=device)
    k = cfg.draw_chunk

    def draw() -> tuple[torch.Tensor, torch.Tensor]:
        u = torch.stack([torch.rand(k, b, generator=g, dtype=torch.float64) for g in gens])
        pos = member_offset + (u * member_size).long()  # (R, k, B) into the flat arrays
        c = torch.stack([uniform_coalitions((k, b), f, g) for g in gens])
        return pos, c

    def weights(pos: torch.Tensor) -> torch.Tensor:  # (R, B)
        ratio = flat_ratio[pos]
        rows = []
        for j, s in enumerate(sources):
            rows.append(importance_weights(ratio[j * n : (j + 1) * n], s.weighting, s.clip))
        return torch.cat(rows).to(device)

    marks, curve = [], []

    @torch.no_grad()
    def evaluate(step: int) -> None:
        marks.append(step)
        curve.append((model(ex_x) - ex_y).pow(2).mean(dim=(1, 2)).cpu().numpy())

    evaluate(0)
    seconds, chunk, at = 0.0, None, k
    for step in range(1, cfg.updates + 1):
        t0 = time.perf_counter()
        if at == k:
            chunk, at = draw(), 0
        pos, c = chunk[0][:, at], chunk[1][:, at]
        at += 1
        idx = flat_idx[pos].to(device)
        x = mask(x_all[idx], c.to(device), cfg.mask_value)
        err = (model(x) - y_all[idx]).pow(2).mean(-1)  # (R, B)
        loss = (err * weights(pos)).mean(-1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seconds += time.perf_counter() - t0
        if step % cfg.eval_every == 0 or step == cfg.updates:
            evaluate(step)
    return WeightedCurves(np.asarray(marks), np.stack(curve, axis=1), seconds, [], n)


# -- the agent's buffer as training data ----------------------------------------------------------
@dataclass
class BufferData:
    """The agent's buffer mapped onto distinct states, with each sample's ratio rho_t."""

    states: np.ndarray  #: (U, F) distinct buffer states
    idx: np.ndarray  #: (N,) buffer sample -> distinct state
    ratio: np.ndarray  #: (N,) pi(s_t, a_t) / pi_t(s_t, a_t)
    behaviour_prob: np.ndarray  #: (N,) pi_t(s_t, a_t)


def buffer_data(
    buffer: dict[str, np.ndarray],
    target_policy,
    n_actions: int,
    *,
    keep: float = 0.8,
    seed: int = 0,
) -> BufferData:
    """Distinct states, sample indices and ratios of a recorded DQN buffer.

    ``target_policy`` maps observations ``(N, F)`` to the explained policy's probabilities.
    ``keep`` is the training share of the buffer (the authors keep 80% of a shuffled buffer
    for training and 20% for validation); the kept samples are a seeded random subset.
    """
    obs = np.asarray(buffer["obs"], np.float32)
    n = len(obs)
    sel = np.sort(np.random.default_rng(seed).permutation(n)[: max(1, int(round(keep * n)))])
    behaviour = epsilon_greedy_probability(
        buffer["action"][sel], buffer["epsilon"][sel], buffer["greedy"][sel], n_actions
    )
    states, inverse = np.unique(obs[sel], axis=0, return_inverse=True)
    target = np.asarray(target_policy(states), float)[inverse.reshape(-1)]
    ratio = importance_ratios(target, buffer["action"][sel], behaviour)
    return BufferData(states, inverse.reshape(-1), ratio, behaviour)


# -- standard errors (Masson & Loftus 2003) -----------------------------------------------------
def masson_loftus_stderr(values: np.ndarray) -> np.ndarray:
    """Within-subject standard errors of ``values`` ``(subjects, conditions, ...)``.

    Each subject (here: an agent, explained under every condition) is centred on the grand
    mean: y'_{rj} = y_{rj} - mean_j y_{rj} + mean_{rj} y, which removes agent-to-agent
    differences that affect every condition alike (Masson & Loftus 2003). The standard error
    of condition j is std_r(y'_{rj}) / sqrt(R), multiplied by sqrt(J / (J - 1)) (Morey 2008's
    correction for the centring). Returns ``(conditions, ...)``; NaN for one subject.
    """
    v = np.asarray(values, float)
    r, j = v.shape[:2]
    if r < 2:
        return np.full(v.shape[1:], np.nan)
    centred = v - v.mean(axis=1, keepdims=True) + v.mean(axis=(0, 1), keepdims=True)
    corr = np.sqrt(j / (j - 1)) if j > 1 else 1.0
    return centred.std(axis=0, ddof=1) / np.sqrt(r) * corr


def summarise_curves(
    frame: pd.DataFrame, by: Sequence[str], *, value: str = "exact_mse", log: bool = True
) -> pd.DataFrame:
    """Mean over seeds per agent, then mean and within-agent stderr over agents per condition.

    ``frame`` has columns ``agent``, ``seed``, ``condition``, ``update``, ``value`` and the
    ``by`` columns. Seeds of one agent are averaged first (they share the agent); the
    Masson-Loftus correction then removes each agent's overall level across conditions.
    With ``log=True`` (errors that differ by orders of magnitude between conditions) the
    agent levels are removed from log errors -- an agent effect that scales every condition
    alike -- and ``log_stderr`` is the stderr of the log error: the band is
    mean x exp(±log_stderr) and ``stderr`` its upper half-width, mean (exp(log_stderr) - 1).
    """
    per_agent = (
        frame.groupby([*by, "update", "agent", "condition"], sort=False)[value].mean().reset_index()
    )
    rows = []
    for key, block in per_agent.groupby([*by, "update"], sort=False):
        mat = block.pivot(index="agent", columns="condition", values=value)
        mean = mat.mean(axis=0).to_numpy()
        labels = dict(zip([*by, "update"], key if isinstance(key, tuple) else (key,), strict=True))
        if log:
            lse = masson_loftus_stderr(np.log(np.maximum(mat.to_numpy(), 1e-300)))
            se = mean * np.expm1(lse)
        else:
            se = masson_loftus_stderr(mat.to_numpy())
            lse = np.full(len(se), np.nan)
        for cond, m, err, lerr in zip(mat.columns, mean, se, lse, strict=True):
            rows.append(
                {
                    **labels,
                    "condition": cond,
                    "mean": m,
                    "stderr": err,
                    "log_stderr": lerr,
                    "agents": len(mat),
                }
            )
    return pd.DataFrame(rows)


def band(
    mean: pd.Series, stderr: pd.Series, log_stderr: pd.Series
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper edges of a ±1 stderr band (multiplicative where ``log_stderr`` is set)."""
    mean, se, lse = (np.asarray(x, float) for x in (mean, stderr, log_stderr))
    lse = np.where(np.isfinite(lse), lse, np.nan)
    lo = np.where(np.isfinite(lse), mean * np.exp(-lse), np.maximum(mean - se, 0.1 * mean))
    hi = np.where(np.isfinite(lse), mean * np.exp(lse), mean + se)
    return np.nan_to_num(lo, nan=0.0), np.nan_to_num(hi, nan=0.0)


# -- the experiment of Fig. 3a and App. D Figs. 7-9 ----------------------------------------------
#: The off-policy agents of the authors' code: a short DQN run whose buffer is mostly exploratory.
OFF_POLICY_DQN: dict[str, dict] = {
    "Mastermind-222": {
        "total_steps": 30_000,
        "learning_starts": 10_000,
        "exploration_fraction": 0.25,
        "hidden": (64, 64),
    },
    "Gridworld": {
        "total_steps": 15_000,
        "learning_starts": 10_000,
        "exploration_fraction": 0.5,
        "hidden": (64, 64),
    },
}


#: the conditions of Fig. 3a / 7 (Mastermind-222) and Figs. 8-9 (Gridworld)
MM_CONDITIONS: tuple[Condition, ...] = (
    Condition("on-policy", "on-policy"),
    Condition("buffer, no IS"),
    Condition("buffer, IS", weighting="normalised"),
)
GW_CONDITIONS: tuple[Condition, ...] = (
    *MM_CONDITIONS,
    Condition("buffer, unnormalised IS", weighting="unnormalised"),
    *(
        Condition(f"buffer, IS clipped c={c}", weighting="normalised", clip=c)
        for c in (0.99, 0.995, 0.998)
    ),
)


def domain_model(domain: str) -> TabularMDP:
    """The full tabular model of an off-policy domain (Gridworld or Mastermind-222)."""
    from ..domains import mastermind as mm
    from ..domains.gridworlds import five_state_grid

    if domain == "Gridworld":
        return five_state_grid()
    if domain == "Mastermind-222":
        return mm.build_model(mm.MastermindSpec(2, 2, 2, mm.convention_win_bonus("fastsverl", 2)))
    raise ValueError(f"unknown domain {domain!r}; choose 'Gridworld' or 'Mastermind-222'")


def recorded_agent(domain: str, seed: int, **dqn) -> DQNAgent:
    """A DQN agent of ``domain`` trained with its buffer recorded (cached by configuration)."""
    from ..domains import mastermind as mm
    from ..domains.tabular_env import TabularEnv

    domain_model(domain)  # names the supported domains on a typo
    cfg = DQNConfig(seed=seed, **dqn)
    if domain == "Gridworld":
        return trained_dqn(domain, lambda: TabularEnv(domain_model(domain)), cfg, record=True)
    k, g, p = 2, 2, 2
    env_cfg = {"k": k, "g": g, "p": p, "conventions": "fastsverl"}
    return trained_dqn(
        domain,
        lambda: mm.MastermindEnv(k, g, p, conventions="fastsverl"),
        cfg,
        env_config=env_cfg,
        record=True,
    )


def agent_problem(agent: DQNAgent, mdp: TabularMDP, seed: int) -> TabularProblem:
    """The exact problem of explaining the agent's greedy policy and max_a Q on ``mdp``."""
    return tabular_problem(mdp, agent.policy(mdp.features), agent.value(mdp.features), seed=seed)


def off_policy_curves(
    domain: str,
    conditions: Sequence[Condition],
    *,
    kinds: Sequence[str] = ("behaviour", "prediction"),
    agent_seeds: Sequence[int] = (0,),
    cfg: TrainConfig,
    dqn: dict | None = None,
) -> pd.DataFrame:
    """Exact-MSE curves of characteristic models under each condition, for every agent.

    One agent per seed is trained with its buffer recorded; its greedy policy (and max_a Q)
    is explained exactly on the full model. "on-policy" samples the exact steady state
    (:func:`~shaprl.fastsverl.exact.tabular_problem`'s 8,000-state buffer); "buffer"
    conditions sample the agent's own buffer (80%) with the condition's weights.
    Returns a tidy frame (domain, kind, agent, seed, condition, update, exact_mse).
    Agents are independent joblib jobs (``joblib.parallel_config`` picks the backend and
    workers; serial by default); each depends only on its seed, so the frame is the same for
    any backend (tested).
    """
    for kind in kinds:
        if kind not in ("behaviour", "prediction"):
            raise ValueError(
                f"off-policy characteristics are 'behaviour' or 'prediction', not {kind!r}"
            )
    dqn = {**OFF_POLICY_DQN[domain], **(dqn or {})}
    jobs = (
        delayed(_agent_curves)(domain, list(conditions), tuple(kinds), int(a), cfg, dqn)
        for a in agent_seeds
    )
    return pd.concat([f for frames in Parallel()(jobs) for f in frames], ignore_index=True)


def _agent_curves(
    domain: str,
    conditions: list[Condition],
    kinds: tuple[str, ...],
    a: int,
    cfg: TrainConfig,
    dqn: dict,
) -> list[pd.DataFrame]:
    """One agent's curves (a joblib job of :func:`off_policy_curves`)."""
    torch.set_num_threads(1)  # small models; a worker process starts with every core
    mdp = domain_model(domain)
    frames = []
    agent = recorded_agent(domain, a, **dqn)
    prob = agent_problem(agent, mdp, a)
    buf = buffer_data(agent.buffer, agent.policy, agent.n_actions, seed=a)
    states = np.concatenate([prob.states, buf.states]).astype(np.float32)
    for kind in kinds:
        if kind == "behaviour":
            targets = agent.policy(states)
        else:
            targets = agent.value(states)[:, None]
        sources = [
            Source(prob.train, np.ones(len(prob.train)), "none")
            if c.data == "on-policy"
            else Source(buf.idx + len(prob.states), buf.ratio, c.weighting, c.clip)
            for c in conditions
        ]
        curves = train_weighted_characteristics(
            states, targets.astype(np.float32), sources, cfg, prob.characteristic_eval(kind)
        )
        n, t = cfg.n_runs, len(curves.updates)
        for j, c in enumerate(conditions):
            block = curves.exact_mse[j * n : (j + 1) * n]
            frames.append(
                pd.DataFrame(
                    {
                        "domain": domain,
                        "kind": kind,
                        "agent": a,
                        "seed": np.repeat(np.arange(n), t),
                        "condition": c.name,
                        "update": np.tile(curves.updates, n),
                        "exact_mse": block.reshape(-1),
                    }
                )
            )
    return frames


def condition_figure(
    summary: pd.DataFrame, panels: Sequence[tuple[str, str]], conditions: Sequence[str]
):
    """Exact MSE against updates per condition (mean ± Masson-Loftus stderr), one panel each.

    ``summary`` comes from :func:`summarise_curves` with ``by=["domain", "kind"]``;
    ``panels`` lists (domain, kind) pairs; ``conditions`` the curves (in legend order).
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 2.8), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, (domain, kind) in zip(axes[0], panels, strict=True):
        part = summary[(summary["domain"] == domain) & (summary["kind"] == kind)]
        for i, cond in enumerate(conditions):
            c = part[part["condition"] == cond].sort_values("update")
            if c.empty:
                continue
            lo, hi = band(c["mean"], c["stderr"].fillna(0.0), c["log_stderr"])
            ax.plot(c["update"], c["mean"], color=colours(i), label=cond, lw=1.2)
            ax.fill_between(
                c["update"],
                lo,
                hi,
                color=colours(i),
                alpha=0.2,
            )
        ax.set_yscale("log")
        ax.set_title(f"{domain}: {kind} characteristic", fontsize=8)
        ax.set_xlabel("updates", fontsize=8)
        ax.set_ylabel("exact MSE", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def final_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The last evaluated update of every (domain, kind, condition): mean and stderr."""
    last = summary.groupby(["domain", "kind"])["update"].transform("max")
    out = summary[summary["update"] == last].rename(columns={"mean": "final exact MSE"})
    return out.reset_index(drop=True)
