"""FastSVERL's experiments on tabular domains: agents, exact problems and learning curves.

The notebooks call three functions:

* :func:`domain_problem` -- train (or load from the cache) the DQN agent of a domain and build
  the exact :class:`~shaprl.fastsverl.exact.TabularProblem` of explaining it;
* :func:`accuracy_curves` -- train every characteristic and Shapley model of the accuracy
  experiment (Fig. 1; App. C Fig. 4) as batched groups of seeded runs and return tidy curves;
* :func:`updates_to_target` -- the first update at which a learning curve reaches a target.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..agents import DQNAgent, DQNConfig, trained_dqn
from ..domains import mastermind as mm
from ..domains.gridworlds import five_state_grid
from ..domains.hypercube import hypercube_model
from ..domains.tabular_env import TabularEnv
from .exact import TabularProblem, tabular_problem
from .training import (
    Curves,
    ExactCharacteristic,
    ModelCharacteristic,
    StateData,
    TrainConfig,
    train_characteristic,
    train_shapley,
)

#: Domains of the accuracy experiment: the DQN network and default budget (authors' values).
DOMAINS: dict[str, dict[str, Any]] = {
    "Gridworld": {"hidden": (64, 64), "dqn_steps": 50_000},
    "Mastermind-222": {"hidden": (64, 64), "dqn_steps": 100_000, "kgp": (2, 2, 2)},
    "Mastermind-333": {"hidden": (128, 128), "dqn_steps": 1_000_000, "kgp": (3, 3, 3)},
}


def domain_agent(name: str, dqn_steps: int | None = None, seed: int = 0) -> DQNAgent:
    """The domain's DQN agent, trained once per configuration and cached on disk."""
    spec = DOMAINS[name]
    cfg = DQNConfig(total_steps=dqn_steps or spec["dqn_steps"], hidden=spec["hidden"], seed=seed)
    if name == "Gridworld":
        return trained_dqn(name, lambda: TabularEnv(five_state_grid()), cfg)
    k, g, p = spec["kgp"]
    return trained_dqn(
        name,
        lambda: mm.MastermindEnv(k, g, p, conventions="fastsverl"),
        cfg,
        env_config={"k": k, "g": g, "p": p, "conventions": "fastsverl"},
    )


def domain_problem(
    name: str, *, dqn_steps: int | None = None, seed: int = 0, max_eval_rows: int = 20_000
) -> tuple[DQNAgent, TabularProblem]:
    """Agent and exact problem of a domain (greedy policy, prediction = max_a Q).

    Gridworld and Mastermind-222 use their full models (outcomes are exact); Mastermind-333
    uses the boards reachable under the agent's greedy policy, which is exact for behaviour
    and prediction (the issue: outcome is not computed exactly there).
    """
    if name not in DOMAINS:
        raise ValueError(f"unknown domain {name!r}; choose one of {sorted(DOMAINS)}")
    agent = domain_agent(name, dqn_steps, seed)
    if name == "Gridworld":
        mdp = five_state_grid()
    else:
        k, g, p = DOMAINS[name]["kgp"]
        spec = mm.MastermindSpec(k, g, p, mm.convention_win_bonus("fastsverl", g))
        mdp = mm.build_model(spec, None if name == "Mastermind-222" else agent.policy)
    policy = agent.policy(mdp.features)
    values = agent.value(mdp.features)
    return agent, tabular_problem(mdp, policy, values, seed=seed, max_eval_rows=max_eval_rows)


@dataclass(frozen=True)
class AccuracyBudget:
    """Updates per model of the accuracy experiment, and the shared training settings."""

    behaviour_char: int = 3_100
    prediction_char: int = 4_960
    shapley: int = 3_100
    n_runs: int = 20
    eval_every: int = 62
    hidden: tuple[int, ...] = (64, 64)
    seed: int = 0
    kinds: tuple[str, ...] = ("behaviour", "prediction", "outcome")


@dataclass(frozen=True)
class OutcomeBudget:
    """Outcome characteristic models (Eqs. 14-16): updates, runs and the off-policy buffer."""

    on_policy: int = 12_500  #: 200k environment steps at 16 steps per update
    off_policy: int = 200_000  #: 128 epochs over a 100k buffer at batch 64
    buffer_steps: int = 100_000
    n_runs: int = 20
    eval_every: int = 250
    hidden: tuple[int, ...] = (64, 64)
    seed: int = 0


def _frame(curves: Curves, **labels: Any) -> pd.DataFrame:
    r, t = curves.exact_mse.shape
    return pd.DataFrame(
        {
            "update": np.tile(curves.updates, r),
            "run": np.repeat(np.arange(r), t),
            "exact_mse": curves.exact_mse.reshape(-1),
            **labels,
        }
    )


def accuracy_curves(
    problem: TabularProblem,
    budget: AccuracyBudget,
    *,
    domain: str = "",
    outcome: OutcomeBudget | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Exact-MSE learning curves of every model of Fig. 1 / Fig. 4 on one domain.

    Characteristic models (behaviour, prediction) are trained first; one run of each
    (the first seed, as the authors use one upstream model for every downstream run) is the
    learned upstream of the Shapley models. Shapley models are trained twice, with the exact
    and with the learned characteristic, and always scored against the exact SVERL values.
    With an ``outcome`` budget, the outcome characteristic is also learned on-policy (Eq. 14)
    and off-policy (Eqs. 15-16), each with the exact and the learned behaviour characteristic;
    the off-policy model built on learned upstream models is then the learned upstream of the
    outcome Shapley model (Fig. 1c). Without it, outcome Shapley models use the exact outcome
    characteristic only. Returns ``(curves, summary)``.
    """
    torch.set_num_threads(1)
    base = TrainConfig(
        hidden=budget.hidden, n_runs=budget.n_runs, eval_every=budget.eval_every, seed=budget.seed
    )
    frames, rows = [], []
    learned: dict[str, ModelCharacteristic] = {}
    char_updates = {"behaviour": budget.behaviour_char, "prediction": budget.prediction_char}
    for kind in [k for k in ("behaviour", "prediction") if k in budget.kinds]:
        cfg = replace(base, updates=char_updates[kind])
        model, curves = train_characteristic(
            problem.data(kind), cfg, exact=problem.characteristic_eval(kind)
        )
        learned[kind] = ModelCharacteristic(model.member(0), cfg.mask_value)
        frames.append(_frame(curves, model="characteristic", kind=kind, upstream="exact"))
        rows.append(_summary(curves, "characteristic", kind, "exact", domain))
    learned_outcome = None
    if outcome is not None and "outcome" in budget.kinds:
        from . import outcome as oc

        ocfg = oc.OutcomeConfig(
            hidden=outcome.hidden,
            n_runs=outcome.n_runs,
            eval_every=outcome.eval_every,
            seed=outcome.seed,
        )
        behaviours = {"exact": oc.exact_behaviour(problem)}
        if "behaviour" in learned:
            behaviours["learned"] = oc.model_behaviour(
                problem, learned["behaviour"].net, base.mask_value
            )
        buffer = oc.behaviour_buffer(problem, outcome.buffer_steps, seed=outcome.seed)
        for upstream, beh in behaviours.items():
            for regime in ("on-policy", "off-policy"):
                if regime == "on-policy":
                    net, curves = oc.train_outcome_on_policy(
                        problem, beh, replace(ocfg, updates=outcome.on_policy)
                    )
                else:
                    net, curves = oc.train_outcome_off_policy(
                        problem, beh, buffer, replace(ocfg, updates=outcome.off_policy)
                    )
                    if upstream == "learned":
                        learned_outcome = oc.OutcomeModelCharacteristic(problem, net, beh, ocfg)
                name = f"outcome characteristic ({regime})"
                frames.append(_frame(curves, model=name, kind="outcome", upstream=upstream))
                rows.append(_summary(curves, name, "outcome", upstream, domain))
    for kind in budget.kinds:
        uppers = {"exact": ExactCharacteristic(problem.table(kind))}
        if kind in learned:
            uppers["learned"] = learned[kind]
        if kind == "outcome" and learned_outcome is not None:
            uppers["learned"] = learned_outcome
        for upstream, char in uppers.items():
            cfg = replace(base, updates=budget.shapley, seed=budget.seed + 1)
            _, curves = train_shapley(
                problem.data(kind), char, cfg, exact=problem.shapley_eval(kind)
            )
            frames.append(_frame(curves, model="shapley", kind=kind, upstream=upstream))
            rows.append(_summary(curves, "shapley", kind, upstream, domain))
    out = pd.concat(frames, ignore_index=True)
    out["domain"] = domain
    return out, pd.DataFrame(rows)


def _summary(curves: Curves, model: str, kind: str, upstream: str, domain: str) -> dict:
    final = curves.best_exact_mse
    return {
        "domain": domain,
        "model": model,
        "kind": kind,
        "upstream": upstream,
        "updates": int(curves.updates[-1]),
        "runs": len(final),
        "final exact MSE": float(final.mean()),
        "stderr": float(final.std(ddof=1) / np.sqrt(len(final))) if len(final) > 1 else np.nan,
        "updates/s (aggregate)": curves.updates_per_second,
    }


def updates_to_target(updates: np.ndarray, mse: np.ndarray, target: float) -> np.ndarray:
    """Per run (rows of ``mse``), the first evaluated update with MSE below ``target`` (NaN if never)."""
    below = mse < target
    first = np.where(below.any(axis=1), below.argmax(axis=1), -1)
    return np.where(first >= 0, updates[np.maximum(first, 0)], np.nan).astype(float)


def budget_dict(budget: AccuracyBudget) -> dict:
    return asdict(budget)


# -- Hypercube scaling (Fig. 2; App. C Fig. 5) ------------------------------------------------
def hypercube_problem(side: int, dims: int, *, seed: int = 0) -> TabularProblem:
    """Explain the optimal Hypercube agent that splits ties uniformly among optimal moves.

    Every cell lies on some shortest path from the origin, so this agent's steady state covers
    all ``side**dims - 1`` non-terminal states (a tie-to-first greedy agent would visit one
    path only, and the number of states would not vary with the cube). Its prediction is its
    exact value V^pi.
    """
    from ..mdp import value_iteration

    mdp = hypercube_model(side, dims)
    q, v = value_iteration(mdp)
    best = q >= q.max(axis=1, keepdims=True) - 1e-9
    policy = best / best.sum(axis=1, keepdims=True)
    return tabular_problem(mdp, policy, v, seed=seed)


@dataclass(frozen=True)
class ScalingBudget:
    """Targets and limits of the scaling experiment (targets: the authors' code)."""

    char_target: float = 0.01
    shapley_target: float = 0.001
    max_updates: int = 620_000  #: 10k epochs of 62 updates
    n_runs: int = 20
    eval_every: int = 62
    hidden: tuple[int, ...] = (128, 128)
    seed: int = 0


def scaling_runs(
    cubes: list[tuple[int, int]], kinds: tuple[str, ...], budget: ScalingBudget
) -> pd.DataFrame:
    """Updates each run needs to reach the target exact MSE, per cube, kind and model.

    Characteristic models must reach ``char_target``; Shapley models (trained on the exact
    characteristic, as in the paper) are recorded at both ``char_target`` (the caption's 0.01)
    and ``shapley_target`` (the code's 0.001). A run that never reaches its target within
    ``max_updates`` is NaN.
    """
    torch.set_num_threads(1)
    rows = []
    for side, dims in cubes:
        prob = hypercube_problem(side, dims, seed=budget.seed)
        for kind in kinds:
            shapley_targets = sorted({budget.char_target, budget.shapley_target}, reverse=True)
            for model, targets in (
                ("characteristic", [budget.char_target]),
                ("shapley", shapley_targets),
            ):
                cfg = TrainConfig(
                    hidden=budget.hidden,
                    n_runs=budget.n_runs,
                    eval_every=budget.eval_every,
                    seed=budget.seed,
                    updates=budget.max_updates,
                    stop_below=min(targets),
                )
                if model == "characteristic":
                    _, curves = train_characteristic(
                        prob.data(kind), cfg, exact=prob.characteristic_eval(kind)
                    )
                else:
                    _, curves = train_shapley(
                        prob.data(kind),
                        ExactCharacteristic(prob.table(kind)),
                        cfg,
                        exact=prob.shapley_eval(kind),
                    )
                for target in targets:
                    reached = updates_to_target(curves.updates, curves.exact_mse, target)
                    rows += [
                        {
                            "side": side,
                            "dims": dims,
                            "states": side**dims - 1,
                            "kind": kind,
                            "model": model,
                            "target": target,
                            "run": r,
                            "updates": u,
                        }
                        for r, u in enumerate(reached)
                    ]
    return pd.DataFrame(rows)


# -- large Mastermind (Tables 1-4, Fig. 6) ---------------------------------------------------------
@dataclass(frozen=True)
class LargeBudget:
    """Budget of the large-Mastermind convergence experiment."""

    dqn_steps: int = 10_000_000
    characteristic: int = 3_100_000  #: 50k epochs of 62 updates (the authors' cap)
    shapley: int = 3_100_000
    n_runs: int = 10
    eval_every: int = 62
    buffer: int = 8_000
    validation: int = 2_000
    seed: int = 0


def large_mastermind(k: int, g: int, p: int, budget: LargeBudget) -> dict[str, Any]:
    """Convergence of behaviour and prediction models on Mastermind-kgp (no exact ground truth).

    The DQN agent (128², FastSVERL conventions) is rolled out greedily to collect the on-policy
    buffer; characteristic models and then Shapley models (on run 0 of the learned
    characteristic) are trained as batched groups. Per run, "updates to converge" is the update
    of the lowest validation loss and "final loss" that loss. Returns the per-run table, the
    mean validation curves, and what is needed to draw one explained board (Table 2).
    """
    from .explainer import collect_states

    torch.set_num_threads(1)
    name = f"Mastermind-{k}{g}{p}"
    cfg = DQNConfig(total_steps=budget.dqn_steps, hidden=(128, 128), seed=budget.seed)
    agent = trained_dqn(
        name,
        lambda: mm.MastermindEnv(k, g, p, conventions="fastsverl"),
        cfg,
        env_config={"k": k, "g": g, "p": p, "conventions": "fastsverl"},
    )
    env = mm.MastermindEnv(k, g, p, conventions="fastsverl")
    n = budget.buffer + budget.validation
    obs = collect_states(env, agent.policy, n, seed=budget.seed)
    states, inverse = np.unique(obs, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    train, val = inverse[: budget.buffer], inverse[budget.buffer :]
    base = TrainConfig(
        hidden=(128, 128), n_runs=budget.n_runs, eval_every=budget.eval_every, seed=budget.seed
    )
    rows, curves_out, models = [], [], {}
    for kind in ("behaviour", "prediction"):
        targets = agent.policy(states) if kind == "behaviour" else agent.value(states)[:, None]
        data = StateData(states, targets.astype(np.float32), train, val)
        char, c_curves = train_characteristic(data, replace(base, updates=budget.characteristic))
        upstream = ModelCharacteristic(char.member(0), base.mask_value)
        shap, s_curves = train_shapley(
            data, upstream, replace(base, updates=budget.shapley, seed=budget.seed + 1)
        )
        models[kind] = (upstream, shap)
        for model, curves in (("characteristic", c_curves), ("shapley", s_curves)):
            best = curves.val_loss.argmin(axis=1)
            for r in range(curves.val_loss.shape[0]):
                rows.append(
                    {
                        "domain": name,
                        "kind": kind,
                        "model": model,
                        "run": r,
                        "updates to converge": int(curves.updates[best[r]]),
                        "final loss": float(curves.val_loss[r, best[r]]),
                        "updates/s": curves.updates_per_second,
                    }
                )
            curves_out.append(
                pd.DataFrame(
                    {
                        "domain": name,
                        "kind": kind,
                        "model": model,
                        "update": curves.updates,
                        "mean": curves.val_loss.mean(0),
                        "stderr": curves.val_loss.std(0, ddof=1) / np.sqrt(curves.val_loss.shape[0])
                        if curves.val_loss.shape[0] > 1
                        else 0.0,
                    }
                )
            )
    return {
        "runs": pd.DataFrame(rows),
        "curves": pd.concat(curves_out, ignore_index=True),
        "agent": agent,
        "states": states,
        "counts": np.bincount(inverse, minlength=len(states)),
        "models": models,
        "spec": mm.MastermindSpec(k, g, p, mm.convention_win_bonus("fastsverl", g)),
    }


def explain_board(result: dict[str, Any], state: np.ndarray) -> tuple[str, np.ndarray]:
    """Behaviour Shapley values (run 0, efficiency-corrected) of the agent's chosen guess."""
    agent, (char, shap) = result["agent"], result["models"]["behaviour"]
    x = torch.as_tensor(np.asarray(state, np.float32)[None])
    probs = agent.policy(x.numpy())
    phi = shap.corrected(x, torch.as_tensor(probs, dtype=torch.float32), char.null(None, x))[0, 0]
    action = int(probs[0].argmax())
    return mm.action_names(result["spec"])[action], phi[:, action].numpy()


# -- choices the paper leaves open -----------------------------------------------------------------
def design_choices(
    problem: TabularProblem, updates: int, n_runs: int, *, seed: int = 0
) -> pd.DataFrame:
    """The authors' defaults against the alternatives, measured once (exact upstream).

    Shapley model (behaviour): one kernel coalition per batch and the correction after
    training (authors) vs one coalition per sample, paired coalitions, and the correction
    inside the loss (FastSHAP). Characteristic model (behaviour): mask value -2 (authors) vs
    -10 (a large-magnitude value, App. H).
    """
    torch.set_num_threads(1)
    base = TrainConfig(n_runs=n_runs, updates=updates, seed=seed)
    shap_variants = {
        "authors: 1 coalition / batch, correction after": {},
        "1 coalition / sample": {"per_sample_coalitions": True},
        "paired coalitions (2 / batch)": {"paired": True},
        "correction inside the loss (FastSHAP)": {"correct_in_training": True},
    }
    rows = []
    data, char = problem.data("behaviour"), ExactCharacteristic(problem.table("behaviour"))
    for name, kw in shap_variants.items():
        _, c = train_shapley(
            data, char, replace(base, **kw), exact=problem.shapley_eval("behaviour")
        )
        rows.append(
            {
                "model": "behaviour Shapley",
                "variant": name,
                "exact MSE": c.best_exact_mse.mean(),
                "stderr": c.best_exact_mse.std(ddof=1) / np.sqrt(n_runs),
            }
        )
    for mask_value in (-2.0, -10.0):
        p = replace(problem, mask_value=mask_value, _tables=problem._tables)
        _, c = train_characteristic(
            data, replace(base, mask_value=mask_value), exact=p.characteristic_eval("behaviour")
        )
        rows.append(
            {
                "model": "behaviour characteristic",
                "variant": f"mask value {mask_value:g}",
                "exact MSE": c.best_exact_mse.mean(),
                "stderr": c.best_exact_mse.std(ddof=1) / np.sqrt(n_runs),
            }
        )
    return pd.DataFrame(rows)
