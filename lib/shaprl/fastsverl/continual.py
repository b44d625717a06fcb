"""Continual explanation: FastSVERL's models trained alongside a learning DQN agent (Sec. 4, App. E).

The agent (``shaprl.agents.dqn``) and the explanation models learn from the same interaction
data. After every DQN update (one TD minibatch step) each explanation group makes ``ratio``
updates of its characteristic model and ``ratio`` updates of its Shapley model
(explanation:agent update ratios 1:1, 2:1, 10:1, 50:1). Every explanation update draws a
minibatch from the agent's replay buffer so far and reweights it towards the agent's
*current* greedy policy pi (Eq. 17, normalised per batch):

    w_b ∝ pi(s_b, a_b) / pi_t(s_b, a_b),   pi_t(s, a) = eps_t / |A| + (1 - eps_t) [a = g_t(s)],

with eps_t and the greedy action g_t stored at acting time. Targets use the current agent:
pi(s, .) (behaviour) or max_a Q(s, a) (prediction). The characteristic model learns
Eqs. 12-13 (uniform coalitions); the Shapley model learns Eqs. 10/23 against *its group's*
characteristic model (one Shapley-kernel coalition per batch), corrected afterwards by
Eqs. 11/24 with the current pi(s, .) or v̂(s).

Every ``checkpoint_every`` environment steps the exact SVERL engine recomputes the ground
truth for the current greedy policy (its exact steady state, characteristic and Shapley
values on the full model) and every group's exact MSE is recorded with the policy's exact
expected return and the mean DQN loss since the previous checkpoint. A greedy policy that
never terminates (possible early in Gridworld) has no steady state: that checkpoint is NaN.
:class:`ContinualResult` carries the time spent in each part (profiling: the DQN itself,
target refreshes, explanation updates, exact checkpoints).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ..agents.dqn import DQNAgent, DQNConfig, train_dqn
from ..batched import BatchedMLP, member_seeds
from ..mdp.solvers import policy_evaluation
from ..mdp.tabular import TabularMDP
from .coalitions import MASK_VALUE, kernel_coalitions, mask, uniform_coalitions
from .exact import tabular_problem
from .off_policy import band, importance_weights
from .training import efficiency_correction

RATIOS = (1, 2, 10, 50)


@dataclass(frozen=True)
class ContinualConfig:
    """Explanation side of a joint run (the agent's settings are a :class:`DQNConfig`)."""

    kind: str = "prediction"  #: "behaviour" or "prediction"
    ratios: tuple[int, ...] = RATIOS
    n_runs: int = 1  #: seeded explanation runs per ratio (one batched group per ratio)
    hidden: tuple[int, ...] = (64, 64)
    learning_rate: float = 2.5e-4
    batch_size: int = 64
    checkpoint_every: int = 1_000  #: environment steps between exact evaluations
    weighting: str = "normalised"
    mask_value: float = MASK_VALUE
    seed: int = 0


@dataclass
class ContinualResult:
    """Checkpoints (tidy frame) and where the time went."""

    checkpoints: pd.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)
    explanation_updates: dict[int, int] = field(default_factory=dict)
    agent: DQNAgent | None = None


class _Group:
    """Characteristic + Shapley models of one ratio (``n_runs`` batched members)."""

    def __init__(self, ratio: int, cfg: ContinualConfig, f: int, m: int) -> None:
        seeds = member_seeds(cfg.seed + 7_919 * ratio, cfg.n_runs)
        self.ratio = ratio
        self.char = BatchedMLP(seeds, f, cfg.hidden, m)
        self.shap = BatchedMLP([s + 1 for s in seeds], f, cfg.hidden, f * m)
        params = [*self.char.parameters(), *self.shap.parameters()]
        self.opt = torch.optim.Adam(params, lr=cfg.learning_rate, foreach=True)  # elementwise
        self.gen = torch.Generator().manual_seed(seeds[0])
        self.updates = 0


class _Explainer:
    """The hook given to :func:`train_dqn`: tracks distinct states, trains, checkpoints."""

    def __init__(self, mdp: TabularMDP, cfg: ContinualConfig, n_actions: int) -> None:
        self.mdp, self.cfg, self.n_actions = mdp, cfg, n_actions
        self.f = mdp.n_features
        self.m = n_actions if cfg.kind == "behaviour" else 1
        self.groups = [_Group(r, cfg, self.f, self.m) for r in cfg.ratios]
        self.ids: dict[bytes, int] = {}
        self.rows: list[np.ndarray] = []
        self.buffer_ids = np.zeros(0, np.int64)
        self.table = torch.zeros(0, self.m)  # current target per distinct state
        self.greedy = torch.zeros(0, dtype=torch.long)
        self.records: list[dict] = []
        self.losses: list[float] = []
        self.seconds = {
            "refresh targets": 0.0,
            "explanation updates": 0.0,
            "exact checkpoints": 0.0,
        }
        self.grid_features = torch.as_tensor(mdp.features, dtype=torch.float32)

    # -- bookkeeping --------------------------------------------------------------------------
    def _track(self, step: int, obs: np.ndarray) -> None:
        if len(self.buffer_ids) <= step:
            self.buffer_ids = np.concatenate(
                [self.buffer_ids, np.zeros(max(1024, step + 1), np.int64)]
            )
        key = obs.tobytes()
        i = self.ids.get(key)
        if i is None:
            i = self.ids[key] = len(self.rows)
            self.rows.append(obs.copy())
        self.buffer_ids[step] = i

    @torch.no_grad()
    def _refresh(self, q_net: torch.nn.Module) -> None:
        t0 = time.perf_counter()
        q = q_net(torch.as_tensor(np.stack(self.rows), dtype=torch.float32))
        self.greedy = q.argmax(1)
        if self.cfg.kind == "behaviour":
            self.table = torch.nn.functional.one_hot(self.greedy, self.n_actions).float()
        else:
            self.table = q.max(1).values[:, None]
        self.states = torch.as_tensor(np.stack(self.rows), dtype=torch.float32)
        self.seconds["refresh targets"] += time.perf_counter() - t0

    # -- one explanation update of a group -----------------------------------------------------
    def _update(self, g: _Group, buf: dict, n: int) -> None:
        r, b = self.cfg.n_runs, self.cfg.batch_size
        pos = torch.randint(n, (r, b), generator=g.gen).numpy()
        sid = torch.from_numpy(self.buffer_ids[pos])
        x, y = self.states[sid], self.table[sid]
        act = torch.from_numpy(buf["action"][pos])
        eps = torch.from_numpy(buf["epsilon"][pos])
        pi_t = (
            eps / self.n_actions + (1 - eps) * (act == torch.from_numpy(buf["greedy"][pos])).float()
        )
        w = importance_weights((act == self.greedy[sid]).float() / pi_t, self.cfg.weighting)
        # characteristic model (Eqs. 12-13)
        c = uniform_coalitions((r, b), self.f, g.gen)
        loss_c = (g.char(mask(x, c, self.cfg.mask_value)) - y).pow(2).mean(-1)
        # Shapley model (Eqs. 10, 23) against this group's characteristic model (before its
        # update of this step; targets are detached, so one backward serves both models)
        ck = kernel_coalitions((r, 1), self.f, g.gen).expand(r, b, self.f)
        with torch.no_grad():
            null = g.char(torch.full_like(x[:, :1], self.cfg.mask_value))
            target = g.char(mask(x, ck, self.cfg.mask_value)) - null
        phi = g.shap(x).reshape(r, b, self.f, self.m)
        loss_s = ((phi * ck[..., None]).sum(-2) - target).pow(2).mean(-1)
        g.opt.zero_grad(set_to_none=True)
        ((loss_c + loss_s) * w).mean(-1).sum().backward()
        g.opt.step()
        g.updates += 1

    # -- exact checkpoint ------------------------------------------------------------------------
    @torch.no_grad()
    def _checkpoint(self, step: int, q_net: torch.nn.Module) -> None:
        t0 = time.perf_counter()
        q = q_net(self.grid_features).double().numpy()
        policy = np.eye(self.n_actions)[q.argmax(1)]
        values = q.max(1)
        row = {"step": step, "dqn_loss": float(np.mean(self.losses)) if self.losses else np.nan}
        self.losses = []
        try:
            prob = tabular_problem(self.mdp, policy, values, n_train=1, n_val=1, seed=0)
            phi_exact = torch.as_tensor(prob.shapley(self.cfg.kind), dtype=torch.float32)
            x = torch.as_tensor(prob.states)
            grand = torch.as_tensor(prob.targets(self.cfg.kind), dtype=torch.float32)
            v = policy_evaluation(self.mdp, policy, states=prob.support)
            row["expected_return"] = float(self.mdp.start[prob.support] @ v[prob.support])
        except ValueError:  # the greedy policy never terminates: no steady state
            prob = None
            row["expected_return"] = np.nan
        for g in self.groups:
            if prob is None:
                mse = np.full(self.cfg.n_runs, np.nan)
            else:
                null = g.char(torch.full_like(x[:1], self.cfg.mask_value))  # (R, 1, m)
                phi = g.shap(x).reshape(self.cfg.n_runs, len(x), self.f, self.m)
                phi = efficiency_correction(phi, grand.expand(self.cfg.n_runs, -1, -1), null)
                mse = (phi - phi_exact).pow(2).mean(dim=(1, 2, 3)).numpy()
            for run, e in enumerate(mse):
                self.records.append({**row, "ratio": g.ratio, "run": run, "exact_mse": float(e)})
        self.seconds["exact checkpoints"] += time.perf_counter() - t0

    # -- the hook ---------------------------------------------------------------------------------
    def __call__(self, step: int, q_net, buf: dict, loss: float | None) -> None:
        self._track(step, buf["obs"][step])
        if step == 0:
            self._refresh(q_net)
            self._checkpoint(0, q_net)
        if loss is not None:
            self.losses.append(loss)
            self._refresh(q_net)
            t0 = time.perf_counter()
            for g in self.groups:
                for _ in range(g.ratio):
                    self._update(g, buf, step + 1)
            self.seconds["explanation updates"] += time.perf_counter() - t0
        if (step + 1) % self.cfg.checkpoint_every == 0:
            if loss is None:
                self._refresh(q_net)
            self._checkpoint(step + 1, q_net)


def continual_run(env, mdp: TabularMDP, dqn: DQNConfig, cfg: ContinualConfig) -> ContinualResult:
    """Train a DQN agent on ``env`` with explanation groups alongside (module docstring).

    ``mdp`` is the exact model of ``env`` (same features and actions): the ground truth of
    every checkpoint. Returns the checkpoints (step, ratio, run, exact_mse, expected_return,
    dqn_loss) and the seconds spent per part.
    """
    if cfg.kind not in ("behaviour", "prediction"):
        raise ValueError(f"kind must be 'behaviour' or 'prediction', got {cfg.kind!r}")
    if any(int(r) < 1 for r in cfg.ratios):
        raise ValueError(f"update ratios must be positive integers, got {cfg.ratios}")
    torch.manual_seed(cfg.seed)
    hook = _Explainer(mdp, cfg, int(env.action_space.n))
    t0 = time.perf_counter()
    agent = train_dqn(env, dqn, progress=False, hook=hook)
    total = time.perf_counter() - t0
    seconds = dict(hook.seconds)
    seconds["DQN (environment + TD updates)"] = total - sum(hook.seconds.values())
    seconds["total"] = total
    updates = {g.ratio: g.updates for g in hook.groups}
    return ContinualResult(pd.DataFrame(hook.records), seconds, updates, agent)


# -- summaries and figures of Fig. 3b / App. E Fig. 10 -----------------------------------------------
def peak_table(
    summary: pd.DataFrame, agent: pd.DataFrame, after: dict[str, int] | None = None
) -> pd.DataFrame:
    """Per (domain, kind, ratio): the mean exact MSE when the agent starts learning (the last
    checkpoint at or before step ``after[domain]``, default 0), the peak after it, their
    ratio (a spike is a rise, not a slow start), the peak's step, the step of
    the largest rise in the mean expected return between checkpoints, and whether the peak lies
    within two checkpoints of that rise.

    ``summary``: :func:`~shaprl.fastsverl.off_policy.summarise_curves` of the checkpoints with
    conditions named ``"<ratio>:1"``; ``agent``: mean ``expected_return`` per (domain, kind, step).
    """
    rows = []
    for (dom, kind), part in summary.groupby(["domain", "kind"], sort=False):
        a = agent[(agent["domain"] == dom) & (agent["kind"] == kind)].sort_values("step")
        steps = a["step"].to_numpy()
        rise = np.diff(a["expected_return"].to_numpy())
        rise_step = float(steps[1:][np.nanargmax(rise)]) if np.isfinite(rise).any() else np.nan
        gap = float(np.median(np.diff(steps))) if len(steps) > 1 else np.nan
        start = (after or {}).get(dom, 0)
        for cond, whole in part.groupby("condition", sort=False):
            whole = whole.sort_values("update")
            before = whole[whole["update"] <= start]["mean"]
            c = whole[whole["update"] > start]
            i = int(np.nanargmax(c["mean"].to_numpy()))
            peak_step = float(c["update"].iloc[i])
            at_start = float(before.iloc[-1]) if len(before) else np.nan
            rows.append(
                {
                    "domain": dom,
                    "kind": kind,
                    "ratio": int(cond.split(":")[0]),
                    "exact MSE when learning starts": at_start,
                    "peak exact MSE": float(c["mean"].iloc[i]),
                    "rise (peak / start)": float(c["mean"].iloc[i]) / at_start,
                    "stderr at peak": float(c["stderr"].iloc[i]),
                    "peak step": peak_step,
                    "final exact MSE": float(c["mean"].iloc[-1]),
                    "return rise step": rise_step,
                    "coincides": bool(abs(peak_step - rise_step) <= 2 * gap),
                }
            )
    return pd.DataFrame(rows).sort_values(["domain", "kind", "ratio"]).reset_index(drop=True)


def plot_panel(axes, summary: pd.DataFrame, agent: pd.DataFrame, domain: str, kind: str) -> None:
    """Three stacked axes: exact MSE per ratio (mean ± stderr), expected return, DQN loss."""
    part = summary[(summary["domain"] == domain) & (summary["kind"] == kind)]
    colours = {"1:1": "#d62728", "2:1": "#ff7f0e", "10:1": "#2ca02c", "50:1": "#1f77b4"}
    order = sorted(part["condition"].unique(), key=lambda name: int(name.split(":")[0]))
    for cond in order:
        c = part[part["condition"] == cond].sort_values("update")
        lo, hi = band(c["mean"], c["stderr"].fillna(0.0), c["log_stderr"])
        axes[0].plot(c["update"], c["mean"], label=cond, color=colours.get(cond), lw=1.2)
        axes[0].fill_between(
            c["update"],
            lo,
            hi,
            color=colours.get(cond),
            alpha=0.2,
        )
    axes[0].set_yscale("log")
    axes[0].set_title(f"{domain}: {kind} Shapley", fontsize=8)
    axes[0].set_ylabel("exact MSE", fontsize=8)
    axes[0].legend(fontsize=6)
    a = agent[(agent["domain"] == domain) & (agent["kind"] == kind)].sort_values("step")
    axes[1].plot(a["step"], a["expected_return"], color="k", lw=1.0)
    axes[1].set_ylabel("expected return", fontsize=8)
    axes[2].plot(a["step"], a["dqn_loss"], color="grey", lw=1.0)
    axes[2].set_ylabel("DQN loss", fontsize=8)
    axes[2].set_xlabel("environment steps", fontsize=8)
    for ax in axes:
        ax.tick_params(labelsize=7)
