"""Action Shapley: batched SAC-PID / PPO-PID agents vs stable-baselines3, per agent.

Target (issue 8): the batched agents at least 50x faster per agent than SB3 at the same
budget on this CPU. Also reported: utility evaluations (trained and evaluated agents) per
second for the table builds of the small case studies (one batch of every seed and subset)
and for one chunk of Kubernetes' full table (512 of its 32,768 subsets; the make target runs
chunks of 1,024, two at a time).
"""

from __future__ import annotations

import time

import numpy as np

from shaprl.action_shapley.case_studies import DATABASE_TUNING, KUBERNETES, VM_RIGHT_SIZING
from shaprl.action_shapley.sb3_reference import train_sb3
from shaprl.action_shapley.traces import load_traces, traces_path
from shaprl.action_shapley.utility import subset_seed, train_and_evaluate
from shaprl.action_shapley.world_model import SufficientStatistics

from .harness import Result


def run() -> list[Result]:
    case = VM_RIGHT_SIZING
    traces = load_traces(traces_path(case), case)
    ss = SufficientStatistics(traces)
    masks = np.arange(1 << case.n)
    out = []
    for algo in ("sac", "ppo"):
        t0 = time.perf_counter()
        train_sb3(case, ss.fit(np.array([masks[-1]])), algo, seed=0)
        sb3 = time.perf_counter() - t0
        # as the table build trains them: 3 seeds x 32 subsets in one batch of 96 agents
        all_masks = np.tile(masks, 3)
        seeds = [subset_seed(s, int(m)) for s in range(3) for m in masks]
        t0 = time.perf_counter()
        train_and_evaluate(case, ss.fit(all_masks), algo, seeds)
        batched = (time.perf_counter() - t0) / all_masks.size
        out.append(Result(f"action shapley: SB3 {algo.upper()} one agent (fixed budget)", sb3))
        out.append(
            Result(
                f"action shapley: batched {algo.upper()} per agent (96 at once)",
                batched,
                sb3 / 50,
                f"{sb3 / batched:.0f}x faster than SB3; {1 / batched:.2f} utility evaluations/s",
            )
        )
    # database tuning's table build: 3 seeds x 64 subsets, 192 agents in one batch
    db = DATABASE_TUNING
    db_ss = SufficientStatistics(load_traces(traces_path(db), db))
    db_masks = np.tile(np.arange(1 << db.n), 3)
    seeds = [subset_seed(s, int(m)) for s in range(3) for m in np.arange(1 << db.n)]
    t0 = time.perf_counter()
    train_and_evaluate(db, db_ss.fit(db_masks), "sac", seeds)
    per = (time.perf_counter() - t0) / db_masks.size
    sac_sb3 = out[0].seconds
    out.append(
        Result(
            "action shapley: batched SAC per agent (192 at once, database tuning)",
            per,
            None,
            f"{sac_sb3 / per:.0f}x faster than one SB3 SAC agent; {1 / per:.2f} evaluations/s",
        )
    )
    # one chunk of Kubernetes' full table
    kb = KUBERNETES
    kb_ss = SufficientStatistics(load_traces(traces_path(kb), kb))
    kb_masks = np.random.default_rng(0).choice(1 << kb.n, 512, replace=False)
    for algo, sb3_one in (("sac", out[0].seconds), ("ppo", out[2].seconds)):
        seeds = [subset_seed(0, int(m)) for m in kb_masks]
        t0 = time.perf_counter()
        train_and_evaluate(kb, kb_ss.fit(kb_masks), algo, seeds)
        per = (time.perf_counter() - t0) / kb_masks.size
        out.append(
            Result(
                f"action shapley: batched {algo.upper()} per agent (512 at once, Kubernetes)",
                per,
                sb3_one / 50,
                f"{sb3_one / per:.0f}x faster than one SB3 agent; {1 / per:.2f} evaluations/s",
            )
        )
    return out
