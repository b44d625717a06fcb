"""stable-baselines3 SAC-PID and PPO-PID: the reference for the budget and for the batched agents.

* :func:`sb3_plateau_sweep` is the budget-plateau check of issue 17 for SB3 agents, beside
  the batched agents' :func:`~.utility.plateau_sweep` (same world model, run seeds, evaluation
  episodes and definitions), so :func:`~.utility.plateau_budget` applies to both.
* :func:`reference_check` compares, subset by subset, the batched agents of
  :mod:`.batched_agents` with SB3 agents over several seeds at the same budget: same null
  verdict, and a cumulative reward inside the SB3 spread.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from .batched_agents import PPO_BUDGET, SAC_BUDGET, PPOBudget, SACBudget
from .case_studies import CaseStudy, case_study
from .pid_env import PIDEnv, evaluate_on_system
from .traces import load_traces, traces_path
from .utility import EVAL_SEED, subset_seed, train_and_evaluate
from .world_model import RBFParams, SufficientStatistics


def train_sb3(
    case: CaseStudy,
    params: RBFParams,
    algo: str,
    seed: int,
    budget: SACBudget | PPOBudget | None = None,
):
    """One SB3 agent inside the world model ``params`` (a single member)."""
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.vec_env import DummyVecEnv

    torch.set_num_threads(1)
    if algo == "sac":
        b = budget or SAC_BUDGET
        model = SAC(
            "MlpPolicy",
            PIDEnv(case, params),
            learning_rate=b.lr,
            buffer_size=b.total_steps,
            learning_starts=b.learning_starts,
            batch_size=b.batch_size,
            tau=b.tau,
            gamma=b.gamma,
            train_freq=1,
            gradient_steps=1,
            policy_kwargs={"net_arch": list(b.hidden)},
            seed=seed,
            device="cpu",
        )
    else:
        b = budget or PPO_BUDGET
        env = DummyVecEnv([lambda: PIDEnv(case, params) for _ in range(b.n_envs)])
        model = PPO(
            "MlpPolicy",
            env,
            learning_rate=b.lr,
            n_steps=b.n_steps,
            batch_size=b.batch_size,
            n_epochs=b.n_epochs,
            gamma=b.gamma,
            gae_lambda=b.gae_lambda,
            clip_range=b.clip_range,
            vf_coef=b.vf_coef,
            ent_coef=0.0,
            max_grad_norm=b.max_grad_norm,
            policy_kwargs={"net_arch": {"pi": list(b.hidden), "vf": list(b.hidden)}},
            seed=seed,
            device="cpu",
        )
    model.learn(total_timesteps=b.total_steps)
    return model


def sb3_policy(model):
    """Wrap an SB3 model as ``obs (1, 1, 5) -> (1, 1, 6)`` deterministic actions."""

    def policy(obs: torch.Tensor) -> torch.Tensor:
        act, _ = model.predict(obs[:, 0].numpy(), deterministic=True)
        return torch.as_tensor(act, dtype=torch.float32)[:, None]

    return policy


def hold_initial(case: CaseStudy) -> dict[str, float]:
    """The do-nothing controller (zero gains): its cumulative reward on the system."""
    res = evaluate_on_system(case, lambda obs: torch.zeros(obs.shape[0], 1, 6), 1, EVAL_SEED)
    return {"reward": float(res["reward"][0]), "success": bool(res["success"][0])}


def beats_holding(sweep: pd.DataFrame, steps: int | dict[str, int]) -> pd.DataFrame:
    """Per case and algorithm of an SB3 plateau sweep (``sb3_plateau``), its runs at ``steps``
    (one budget, or one per algorithm: ``{"ppo": 12288, "sac": 12000}``) against
    :func:`hold_initial`: mean system return, whether every run reached the goal, the do-nothing
    controller's reward and success, and ``beats_hold`` -- every run succeeds and either holding
    fails or the mean return is higher."""
    budget = steps if isinstance(steps, dict) else dict.fromkeys(sweep.algo.unique(), steps)
    at = (
        sweep[sweep.steps == sweep.algo.map(budget)]
        .groupby(["case", "algo", "steps"])
        .agg(system_return=("system_return", "mean"), success=("success", "all"))
        .reset_index()
    )
    hold = pd.DataFrame([{"case": k, **hold_initial(case_study(k))} for k in at.case.unique()])
    beat = at.merge(hold, on="case", suffixes=("", "_hold"))
    beat["beats_hold"] = beat.success & (~beat.success_hold | (beat.system_return > beat.reward))
    return beat


#: budgets of the SB3 plateau check: 1, 2 and 4 times each algorithm's pre-issue-17 budget (the
#: batched sweep's, ``cli.run_checks(["plateau"])``)
SB3_PLATEAU_STEPS = {"ppo": (6144, 12288, 24576), "sac": (6000, 12000, 24000)}
#: algorithms the committed ``sb3_plateau`` check computes (measured, 45 agents each, summed wall
#: time on a shared 2-core machine: PPO 698 s, SAC 6,861 s)
SB3_PLATEAU_ALGOS = ("ppo", "sac")


def committed_block(
    sweep: pd.DataFrame | None, case: str, algo: str, steps, runs: int = 5
) -> pd.DataFrame | None:
    """The rows of ``case`` and ``algo`` in a committed plateau sweep when they hold every
    (budget, run), else None -- so ``cli checks --which sb3-plateau`` keeps them and adds an
    algorithm without re-training the agents it has (a block does not depend on the others)."""
    if sweep is None:
        return None
    block = sweep[(sweep.case == case) & (sweep.algo == algo)]
    have = set(zip(block.steps.astype(int), block.run.astype(int), strict=True))
    return block if have >= {(int(t), r) for t in steps for r in range(runs)} else None


def sb3_plateau_sweep(case: CaseStudy, algo: str, steps, runs: int = 5) -> pd.DataFrame:
    """SB3 all-data agents of ``runs`` runs at each training budget, evaluated as the batched
    agents of :func:`~.utility.plateau_sweep` are: the same rows (``case, algo, steps, run,
    system_return, success, convergence, seconds``) plus ``agent = "sb3"``, so
    :func:`~.utility.plateau_budget` applies unchanged.

    Shared with the batched path (:func:`~.utility.run_outcomes`, base seed 0): the all-data
    world model (:func:`~.utility.world_models`, fixed basis), the agent seed of run ``r``
    (:func:`~.utility.run_seed` ``(0, r)``, the batched agents' explicit run seeds -- not
    ``r`` itself), the :data:`~.utility.EPISODES` shared evaluation episodes
    (:func:`~.utility.episode_seeds` ``(0)``, :func:`~.utility.evaluate_episodes`), and the
    definitions: ``system_return`` and ``convergence`` are means over the episodes, ``success``
    is the goal reached in every episode (and a valid world model). ``seconds``: training and
    evaluation of one agent (the batched sweep's is its batch's time per run).
    """
    from .utility import episode_seeds, evaluate_episodes, run_seed, world_models

    traces = load_traces(traces_path(case), case)
    full = (1 << case.n) - 1
    params = world_models(traces, [full], "fixed-basis", 0)
    valid = bool(np.asarray(params.valid, dtype=bool)[0])
    base = SAC_BUDGET if algo == "sac" else PPO_BUDGET
    rows = []
    for total in steps:
        budget = replace(base, total_steps=int(total))
        for r in range(runs):
            t0 = time.perf_counter()
            model = train_sb3(case, params, algo, run_seed(0, r), budget)
            ev = evaluate_episodes(case, sb3_policy(model), 1, episode_seeds(0))
            rows.append(
                {
                    "case": case.key,
                    "algo": algo,
                    "steps": int(total),
                    "run": r,
                    "system_return": float(ev["reward"][0].mean()),
                    "success": bool(ev["success"][0].all()) and valid,
                    "convergence": float(ev["convergence"][0].mean()),
                    "seconds": time.perf_counter() - t0,
                    "agent": "sb3",
                }
            )
    return pd.DataFrame(rows)


def reference_check(
    case: CaseStudy,
    traces,
    masks: list[int],
    algo: str,
    n_seeds: int = 5,
    seed: int = 0,
    budget: SACBudget | PPOBudget | None = None,
) -> pd.DataFrame:
    """Batched agent (run seed ``seed``) vs SB3 agents over ``n_seeds`` seeds, per subset.

    The verdict columns compare the table's agent (run seed ``seed``) with SB3's majority;
    ``batched_utilities`` also trains the batched agent under run seeds ``seed .. seed +
    n_seeds - 1``, so the two null fractions can be compared like for like.
    """
    params = SufficientStatistics(traces).fit(np.array(masks))
    # run seeds seed .. seed + n_seeds - 1 in one batch; run seed ``seed`` is the table's
    # agent (a subset's agent does not depend on its batch, :func:`~.utility.pad_members`)
    more = params.take(np.tile(np.arange(len(masks)), n_seeds))
    more_seeds = [subset_seed(seed + s, m) for s in range(n_seeds) for m in masks]
    t0 = time.perf_counter()
    spread = train_and_evaluate(case, more, algo, more_seeds, "cpu", budget)["utility"]
    batched_s = (time.perf_counter() - t0) / len(more_seeds)
    spread = spread.reshape(n_seeds, len(masks))
    rows = []
    for r, m in enumerate(masks):
        one = params.member(r)
        utils, secs = [], []
        for s in range(n_seeds):
            t1 = time.perf_counter()
            model = train_sb3(case, one, algo, subset_seed(seed + 1000 + s, m), budget)
            secs.append(time.perf_counter() - t1)
            res = evaluate_on_system(case, sb3_policy(model), 1, EVAL_SEED)
            ok = bool(res["success"][0]) and bool(one.valid[0])
            utils.append(float(res["reward"][0]) if ok else np.nan)
        utils = np.array(utils)
        b_u = float(spread[0, r])
        sb3_null = np.isnan(utils).mean() >= 0.5
        inside = (
            np.isnan(b_u)
            if np.isnan(utils).all()
            else (not np.isnan(b_u)) and np.nanmin(utils) <= b_u <= np.nanmax(utils)
        )
        rows.append(
            {
                "case": case.key,
                "algo": algo,
                "mask": m,
                "batched_utility": b_u,
                "batched_null": bool(np.isnan(b_u)),
                "sb3_utilities": np.round(utils, 2).tolist(),
                "sb3_null_fraction": float(np.isnan(utils).mean()),
                "sb3_majority_null": bool(sb3_null),
                "same_verdict": bool(np.isnan(b_u) == sb3_null),
                "batched_utilities": np.round(spread[:, r], 2).tolist(),
                "batched_null_fraction": float(np.isnan(spread[:, r]).mean()),
                "inside_sb3_spread": bool(inside),
                "sb3_s_per_agent": float(np.mean(secs)),
                "batched_s_per_agent": batched_s,
            }
        )
    return pd.DataFrame(rows)
