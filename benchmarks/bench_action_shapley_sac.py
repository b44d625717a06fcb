"""Action Shapley: batched SAC-PID per agent in Kubernetes chunks of 512 and 1,024, beside SB3.

Target (issue 17): at most 0.15 CPU-seconds per agent at the same chunk sizes (the issue
measured 0.36 before this work). One run reports, at the fixed :data:`SAC_BUDGET`:

* the batched agents' CPU-seconds per agent (``time.process_time``, torch on one thread, as
  ``train_agents`` runs them) for a chunk of 512 and of 1,024 Kubernetes subsets, and the wall
  time (two chunks run side by side on 2 cores, so a chunk's wall time per agent is half);
* stable-baselines3's SAC on the same PID environment (the chunk's first subset), one agent
  at the same budget: its CPU-seconds, and how many times cheaper a batched agent is.

Cost is linear in the training steps after a fixed part (networks, start statistics) once
the replay buffer has outgrown the caches (a minibatch's rows are then random memory reads:
from about 1,000 steps on at these chunk sizes; a line through 500 and 900 steps read 17 %
low at 3,000 on our loaded machine), so each case trains twice, at 1,000 and 2,500 steps, and the line through the
two points is read at the full budget: minutes, not the half hour of full chunks. The
device is the one the table builds use (a GPU when present, :func:`default_device`); on a
GPU the CPU-seconds count the host only, so the wall time is the number to read there.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

import numpy as np
import torch

from shaprl.action_shapley.batched_agents import SAC_BUDGET
from shaprl.action_shapley.case_studies import KUBERNETES
from shaprl.action_shapley.sb3_reference import train_sb3
from shaprl.action_shapley.traces import load_traces, traces_path
from shaprl.action_shapley.utility import subset_seed, train_agents
from shaprl.action_shapley.world_model import SufficientStatistics
from shaprl.batched import default_device

from .harness import Result

TARGET_CPU_S = 0.15  #: CPU-seconds per agent (issue 17)
CHUNKS = (512, 1024)
SHORT = (1000, 2500)  #: the two short budgets (steps) the cost line is fitted through


def _cost(train, steps: int) -> tuple[float, float]:
    """CPU and wall seconds of ``train(budget)`` at ``steps`` training steps."""
    budget = replace(SAC_BUDGET, total_steps=steps)
    c0, w0 = time.process_time(), time.perf_counter()
    train(budget)
    return time.process_time() - c0, time.perf_counter() - w0


def cost_line(train):
    """``at(steps) -> (CPU s, wall s)`` of ``train``: the line through two short budgets."""
    (c1, w1), (c2, w2) = (_cost(train, s) for s in SHORT)

    def at(steps: int) -> tuple[float, float]:
        k = (steps - SHORT[1]) / (SHORT[1] - SHORT[0])
        return c2 + k * (c2 - c1), w2 + k * (w2 - w1)

    return at


def run() -> list[Result]:
    torch.set_num_threads(1)
    case, dev = KUBERNETES, default_device()
    stats = SufficientStatistics(load_traces(traces_path(case), case))
    load = "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    masks = np.random.default_rng(0).choice(1 << case.n, max(CHUNKS), replace=False)
    params = stats.fit(masks)
    seeds = [subset_seed(0, int(m)) for m in masks]
    full = SAC_BUDGET.total_steps
    sb3_cpu, sb3_wall = cost_line(lambda b: train_sb3(case, params.member(0), "sac", seeds[0], b))(
        full
    )
    steps = f"{SAC_BUDGET.total_steps:,} steps"
    out = [
        Result(
            f"action shapley: SB3 SAC-PID one agent, CPU-s ({steps}, Kubernetes)",
            sb3_cpu,
            None,
            f"wall {sb3_wall:.1f} s; {load}",
        )
    ]
    for r in CHUNKS:
        part = params.take(np.arange(r))
        at = cost_line(lambda b, part=part, r=r: train_agents(case, part, "sac", seeds[:r], dev, b))
        (cpu, wall), (cpu_6k, _) = at(full), at(6000)
        per = cpu / r
        out.append(
            Result(
                f"action shapley: batched SAC-PID CPU-s per agent ({r:,} at once, {steps}, "
                f"Kubernetes, {dev.type})",
                per,
                TARGET_CPU_S,
                f"{sb3_cpu / per:.0f}x cheaper than SB3; wall {wall / r:.3f} s per agent "
                f"(one chunk); {cpu_6k / r:.3f} CPU-s at 6,000 steps "
                f"(the budget of the issue's 0.36 s); {load}",
            )
        )
    return out
