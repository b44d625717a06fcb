"""Explaining a continuous-state agent (issue 19): Acrobot, 50 states, behaviour, one core.

The Monte Carlo route with the kernel conditional (SVERL Def. 17 approximated on a sample of
visited states) against the target (<= 4 s for the explanation), beside shap's
KernelExplainer on the same states and model (different semantics: marginal masking with a
background sample, which breaks Acrobot's cos^2 + sin^2 = 1 for most masked inputs).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from shaprl.explain.routes import as_agent
from shaprl.sverl.continuous import (
    ApproximateMonteCarloSVERL,
    ClassicControlSimulator,
    collect_visited,
)

from .harness import Result, timed


def run() -> list[Result]:
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    env = gym.make("Acrobot-v1")
    agent = as_agent(PPO("MlpPolicy", env, seed=0, n_steps=64, batch_size=64), env)
    sim = ClassicControlSimulator(lambda: gym.make("Acrobot-v1").unwrapped)
    t_collect, sample = timed(lambda: collect_visited(sim, agent, 20_000, seed=0, horizon=500))
    states = sample[np.random.default_rng(0).choice(len(sample), 50, replace=False)]
    mc = ApproximateMonteCarloSVERL(agent, sample)
    t_mc, ex = timed(lambda: mc.explain(states, "behaviour", seed=0))
    out = [
        Result(
            "acrobot: collect 20,000 visited states (batched lanes)",
            t_collect,
            None,
            f"{len(sample) / t_collect:,.0f} steps/s",
        ),  # fmt: skip
        Result(
            "acrobot: behaviour of 50 states, Monte Carlo (kernel), 32 bootstrap",
            t_mc,
            4.0,
            f"{ex.results['behaviour'].phi.size} values with standard errors",
        ),  # fmt: skip
    ]
    try:
        import shap
    except ImportError:
        return out
    background = sample[np.random.default_rng(1).choice(len(sample), 50, replace=False)]
    kernel = shap.KernelExplainer(agent.probabilities, background, silent=True)
    t_shap, _ = timed(lambda: kernel.shap_values(states, nsamples=64, silent=True))
    out.append(Result("acrobot: shap KernelExplainer, same 50 states (marginal, 50 background)",
                      t_shap, None, "different semantics: marginal masking"))  # fmt: skip
    return out
