"""The authors' Hypercube setting: one DQN agent per cube, explained greedily from the origin.

FastSVERL Sec. 3.3 (Fig. 2; App. C Fig. 5) explains, per cube, a DQN agent trained on that
cube: the authors' ``experiments/hypercube/hypercube_policy.py`` (and ``hypercube_value.py``)
train it for 50k-1M environment steps (:data:`AUTHORS_DQN_STEPS`) and explain its *greedy*
policy with an on-policy buffer from the origin. A deterministic greedy policy in a
deterministic cube visits one path, so the explained support is that path -- at most
n(l-1) non-terminal cells (n(l-1)+1 with the goal) when the agent is optimal -- not the lⁿ cells
of the paper's x axis. This module

* trains the agent with the authors' settings (:func:`dqn_config`), seeded;
* follows its greedy policy (argmax Q, ties to the first action) from the origin
  (:func:`greedy_path`) and records whether the path reaches the goal and is optimal;
* builds the exact problem of explaining it (:func:`agent_problem`; prediction = the agent's
  ``max_a Q``, the authors' target) and runs the scaling experiment on it
  (:func:`.experiments.problem_scaling_rows`);
* writes the result as a compact :data:`SCALING` table (one row per cube fact or run).

If a greedy policy loops instead of reaching the goal, the steady state is the authors'
on-policy buffer of 10,000 steps from the origin (:func:`buffer_steady_state`): the loop
dominates it. That is reported, not fixed by another seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..agents import DQNAgent, DQNConfig, trained_dqn
from ..domains.hypercube import hypercube_model
from ..domains.tabular_env import TabularEnv
from ..mdp.tabular import TabularMDP
from ..repro.data import Column, TableSchema
from .exact import TabularProblem, tabular_problem

#: The authors' DQN budget per cube (side l, dims n): ``timesteps`` of their
#: ``experiments/hypercube/hypercube_policy.py`` (the same in ``hypercube_value.py``).
AUTHORS_DQN_STEPS: dict[tuple[int, int], int] = {
    (2, 2): 100_000,
    (3, 2): 50_000,
    (4, 2): 50_000,
    (5, 2): 50_000,
    (6, 2): 50_000,
    (2, 3): 50_000,
    (3, 3): 50_000,
    (4, 3): 50_000,
    (5, 3): 100_000,
    (6, 3): 100_000,
    (2, 4): 50_000,
    (3, 4): 50_000,
    (4, 4): 100_000,
    (5, 4): 100_000,
    (6, 4): 500_000,
    (2, 5): 50_000,
    (3, 5): 100_000,
    (4, 5): 500_000,
    (5, 5): 500_000,
    (6, 5): 1_000_000,
}

#: The authors' on-policy buffer (8,000 training + 2,000 validation samples)
BUFFER_STEPS = 10_000

#: One row per cube fact (``run`` 0) or per run and condition: ``value`` = updates to target
#: (empty when not reached within the cap) or the fact's number.
SCALING = TableSchema(
    "hypercube_scaling",
    (
        Column("side", "int"),
        Column("dims", "int"),
        Column("run", "int"),
        Column("metric", "str"),
        Column("value", "float", empty=True),
    ),
    key=("side", "dims", "run", "metric"),
)

#: cube facts of the table (metric names); run rows are named by :func:`run_metric`
FACTS = (
    "cells",
    "path bound",
    "support",
    "greedy path cells",
    "reaches goal",
    "optimal",
    "dqn steps",
    "greedy return",
)


def run_metric(kind: str, model: str, target: float) -> str:
    """Name of a run row: ``"behaviour characteristic < 0.01"``."""
    return f"{kind} {model} < {target:g}"


def dqn_config(side: int, dims: int, seed: int = 0, steps: int | None = None) -> DQNConfig:
    """The authors' Hypercube DQN (``AgentArgs`` of their ``hypercube_policy.py``).

    128² MLP, Adam 2.5e-4, gamma 1, tau 0.01 every step, batch 64, epsilon 1 -> 0.05 over half
    the budget, learning from 1/50 of the budget, buffer = the whole run. They step 16 vector
    environments and make one update per vector step; one environment with
    ``train_frequency=16`` makes the same number of updates per environment step.
    """
    steps = int(steps or AUTHORS_DQN_STEPS[(side, dims)])
    return DQNConfig(
        total_steps=steps,
        hidden=(128, 128),
        learning_rate=2.5e-4,
        gamma=1.0,
        tau=0.01,
        batch_size=64,
        start_e=1.0,
        end_e=0.05,
        exploration_fraction=0.5,
        learning_starts=steps // 50,
        train_frequency=16,
        seed=seed,
    )


#: the authors' Hypercube never truncates an episode
NO_TRUNCATION = 10**9


def cube_agent(side: int, dims: int, cfg: DQNConfig, *, cache: bool = True) -> DQNAgent:
    """The DQN agent of one cube, trained once per configuration (cached on disk)."""
    return trained_dqn(
        "Hypercube",
        lambda: TabularEnv(hypercube_model(side, dims), max_steps=NO_TRUNCATION),
        cfg,
        env_config={"side": side, "dims": dims, "max_steps": NO_TRUNCATION},
        cache=cache,
    )


def greedy_path(mdp: TabularMDP, policy: np.ndarray) -> tuple[np.ndarray, bool]:
    """Non-terminal states a deterministic ``policy`` visits from the (single) start state, in
    order, until it reaches a terminal state (``True``) or revisits a state (``False``)."""
    starts = np.flatnonzero(mdp.start)
    if len(starts) != 1:
        raise ValueError(f"{mdp.name}: greedy_path needs a single start state")
    act = np.asarray(policy).argmax(axis=1)
    p = mdp.transitions.tocsr()
    s, seen, order = int(starts[0]), set(), []
    while s not in seen:
        seen.add(s)
        order.append(s)
        row = p[s * mdp.n_actions + act[s]]
        if row.nnz == 0:  # the move ends the episode (the goal)
            return np.asarray(order), True
        s = int(row.indices[row.data.argmax()])
    return np.asarray(order), False


def buffer_steady_state(
    mdp: TabularMDP, policy: np.ndarray, steps: int = BUFFER_STEPS
) -> np.ndarray:
    """State frequencies of an on-policy buffer of ``steps`` steps of the deterministic
    ``policy`` from the start, restarting at the goal (the authors' estimate of p^pi). For a
    path to the goal this is the path repeated; for a path that ends in a loop, the prefix
    once and then the loop."""
    act = np.asarray(policy).argmax(axis=1)
    p = mdp.transitions.tocsr()
    start = int(np.flatnonzero(mdp.start)[0])
    counts = np.zeros(mdp.n_states)
    s = start
    for _ in range(steps):
        counts[s] += 1
        row = p[s * mdp.n_actions + act[s]]
        s = start if row.nnz == 0 else int(row.indices[row.data.argmax()])
    return counts / counts.sum()


def agent_problem(
    side: int, dims: int, agent: DQNAgent, *, seed: int = 0, max_eval_rows: int = 2_048
) -> tuple[TabularProblem, dict[str, float]]:
    """The exact problem of explaining ``agent``'s greedy policy from the origin, and the
    cube's facts (:data:`FACTS`).

    Behaviour = the one-hot argmax of the agent's Q (ties to the first action); prediction =
    its ``max_a Q`` (the authors' target); p^pi = exact visits of the greedy path when it
    reaches the goal, else the authors' 10,000-step buffer (:func:`buffer_steady_state`).
    """
    mdp = hypercube_model(side, dims)
    policy = agent.policy(mdp.features)
    path, reaches = greedy_path(mdp, policy)
    steady = None if reaches else buffer_steady_state(mdp, policy)
    prob = tabular_problem(
        mdp,
        policy,
        agent.value(mdp.features),
        steady_state=steady,
        seed=seed,
        max_eval_rows=max_eval_rows,
    )
    shortest = dims * (side - 1)  # moves from the origin to the goal
    facts = {
        "cells": float(side**dims),
        "path bound": float(shortest + 1),
        "support": float(len(prob.support)),
        "greedy path cells": float(len(path) + reaches),
        "reaches goal": float(reaches),
        "optimal": float(reaches and len(path) == shortest),
        "dqn steps": float(agent.config["total_steps"]),
        # return of the greedy episode: -1 per move, side*dims - 1 for the move into the goal
        "greedy return": float(side * dims - 1 - (len(path) - 1)) if reaches else np.nan,
    }
    return prob, facts


def scaling_chunk(cfg: dict[str, Any]) -> pd.DataFrame:
    """Per cube of ``cfg["cubes"]`` (pairs side, dims): train the authors' DQN agent (seed
    ``cfg["seed"]``), explain its greedy policy, and record the cube's facts and every run's
    updates to reach the target exact MSE (:func:`.experiments.problem_scaling_rows`, budget
    from ``cfg``: ``runs``, ``max_updates``, ``kinds``). A :data:`SCALING` table."""
    from .experiments import ScalingBudget, problem_scaling_rows

    budget = ScalingBudget(n_runs=cfg["runs"], max_updates=cfg["max_updates"], seed=cfg["seed"])
    rows: list[dict[str, Any]] = []
    for side, dims in cfg["cubes"]:
        agent = cube_agent(side, dims, dqn_config(side, dims, cfg["seed"], cfg.get("dqn_steps")))
        prob, facts = agent_problem(
            side, dims, agent, seed=cfg["seed"], max_eval_rows=budget.eval_rows
        )
        cube = {"side": side, "dims": dims}
        rows += [{**cube, "run": 0, "metric": m, "value": facts[m]} for m in FACTS]
        rows += [
            {
                **cube,
                "run": r["run"],
                "metric": run_metric(r["kind"], r["model"], r["target"]),
                "value": r["updates"],
            }
            for r in problem_scaling_rows(prob, tuple(cfg["kinds"]), budget)
        ]
    return pd.DataFrame(rows, columns=[c.name for c in SCALING.columns])


def facts_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per cube: the facts of :data:`FACTS` (the support-size table)."""
    f = frame[frame.metric.isin(FACTS)]
    out = f.pivot_table(index=["side", "dims"], columns="metric", values="value", dropna=False)
    out = out.reindex(columns=list(FACTS)).reset_index()
    ints = ["cells", "path bound", "support", "greedy path cells", "dqn steps"]
    out[ints] = out[ints].astype(int)
    out[["reaches goal", "optimal"]] = out[["reaches goal", "optimal"]].astype(bool)
    return out.sort_values(["dims", "side"]).reset_index(drop=True)


def runs_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The run rows in :func:`.experiments.scaling_runs`' layout (``states`` = lⁿ)."""
    r = frame[~frame.metric.isin(FACTS)].copy()
    parts = r.metric.str.extract(r"^(\w+) (\w+) < ([0-9.eE+-]+)$")
    if parts.isna().any().any():
        raise ValueError(f"unexpected metric names {sorted(r.metric[parts[0].isna()].unique())}")
    support = facts_frame(frame).set_index(["side", "dims"])["support"]
    return pd.DataFrame(
        {
            "side": r.side.astype(int),
            "dims": r.dims.astype(int),
            "states": (r.side**r.dims).astype(int),
            "support": [int(support[(s, d)]) for s, d in zip(r.side, r.dims, strict=True)],
            "kind": parts[0],
            "model": parts[1],
            "target": parts[2].astype(float),
            "run": r.run.astype(int),
            "updates": r.value.astype(float),
        }
    ).reset_index(drop=True)


def compare_prefix(
    committed: pd.DataFrame, fresh: pd.DataFrame, *, rtol: float = 0.5, atol: float = 8.0
) -> dict[str, Any]:
    """Re-run vs committed, on the cubes and runs of ``fresh``: the cube facts must be equal
    (the agent is seeded and trained on one thread); the mean updates to target per cube and
    condition must agree within ``atol + rtol x committed`` (batched runs are not bitwise
    stable across batch compositions; ``atol`` = two evaluation intervals of 4 updates)."""
    cubes = fresh[["side", "dims"]].drop_duplicates()
    runs = int(fresh.run.max()) + 1
    old = committed.merge(cubes, on=["side", "dims"])
    facts_old = facts_frame(old).set_index(["side", "dims"])
    facts_new = facts_frame(fresh).set_index(["side", "dims"])
    same_facts = bool(facts_old.fillna(-1).equals(facts_new.fillna(-1)))
    by = ["side", "dims", "kind", "model", "target"]
    ro = runs_frame(old)
    a = ro[ro.run < runs].groupby(by).updates.mean()
    b = runs_frame(fresh).groupby(by).updates.mean()
    both = pd.concat({"committed": a, "re-run": b}, axis=1)
    gap = (both["re-run"] - both["committed"]).abs()
    ok = (gap <= atol + rtol * both["committed"]) | (both.isna().all(axis=1))
    return {
        "cubes": ", ".join(f"{s}^{d}" for s, d in cubes.itertuples(index=False)),
        "runs": runs,
        "cube facts equal": same_facts,
        "points compared": len(both),
        "largest gap (updates)": float(gap.max()) if len(gap) else np.nan,
        "tolerance": f"{atol:g} + {rtol:g} x committed",
        "agrees": same_facts and bool(len(both)) and bool(ok.all()),
    }
