"""FastSVERL continual explanation: cost of the explanation updates per DQN update.

Each DQN update is followed by ratio updates of the characteristic and Shapley models at every
ratio (1, 2, 10, 50): 63 model updates per kind. They run as ONE batched group over
(ratio, kind) members; at sub-step k only the prefix of members with ratio > k is evaluated,
so a DQN update costs 50 group sub-steps whatever the number of kinds. Cases (one CPU thread,
Mastermind-222, 2,000 environment steps, learning from step 1,000, a DQN update every 10
steps: 100 DQN updates):

* explanation seconds per DQN update with prediction only, and with behaviour and prediction
  in the same group (informative; before the group was batched, one kind cost about 0.13 s:
  63 separate updates at 2.1 ms).
"""

from __future__ import annotations

import torch

from shaprl.agents import DQNConfig
from shaprl.domains import mastermind as mm
from shaprl.fastsverl import continual as ct
from shaprl.fastsverl import off_policy as op

from .harness import Result


def run() -> list[Result]:
    torch.set_num_threads(1)
    out = []
    dqn = DQNConfig(total_steps=2_000, learning_starts=1_000, train_frequency=10, seed=0)
    for kinds in (("prediction",), ("prediction", "behaviour")):
        env = mm.MastermindEnv(2, 2, 2, conventions="fastsverl")
        cfg = ct.ContinualConfig(kinds=kinds, checkpoint_every=500, seed=0)
        res = ct.continual_run(env, op.domain_model("Mastermind-222"), dqn, cfg)
        n_dqn = res.explanation_updates[1]
        secs = res.seconds["explanation updates"] / n_dqn
        out.append(
            Result(
                f"MM-222 continual, {' + '.join(kinds)}: explanation s per DQN update",
                secs,
                note=f"{1e3 * secs / 50:.2f} ms per group sub-step; {n_dqn} DQN updates",
            )
        )
    return out
