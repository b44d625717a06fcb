"""FastSVERL single-sample characteristics: the conditional-sampling index at large-Mastermind scale.

A single-sample Shapley update draws, for each of R runs, one coalition C and B states s' that
agree with the batch states on C. With F = 36 features (Mastermind-463) coalitions almost never
repeat, so every update builds R fresh groupings of the buffer. Cases (one CPU thread):

* building the index (distinct rows and counts) over a 300,000-row buffer of Mastermind-463
  boards (synthetic boards: random guesses with clue values, most rows distinct -- the worst
  case for grouping);
* one update's draws: 20 runs x batch 128, a fresh coalition per run (target: 0.5 s, i.e. the
  index never dominates a 20-run update on a 300k-state buffer);
* Shapley-model training on Mastermind-222 (20 runs, 64²): updates/s with single-sample vs exact
  characteristics (informative: the price of sampling in the training loop).
"""

from __future__ import annotations

import numpy as np
import torch

from shaprl.domains import mastermind as mm
from shaprl.fastsverl import TrainConfig, tabular_problem, train_shapley
from shaprl.fastsverl.single_sample import ConditionalIndex, SampledCharacteristic
from shaprl.fastsverl.training import ExactCharacteristic

from .harness import Result, timed


def _boards(n: int, seed: int = 0) -> np.ndarray:
    """``n`` Mastermind-463-shaped rows: 6 guesses x [misplaced, 4 letters, position]."""
    rng = np.random.default_rng(seed)
    used = rng.integers(0, 7, size=n)  # guesses made
    rows = np.full((n, 6, 6), -1.0)
    letters = rng.integers(1, 4, size=(n, 6, 4))
    clue_pos = rng.integers(0, 4, size=(n, 6))
    clue_mis = rng.integers(0, 4 - clue_pos + 1)
    filled = np.arange(6)[None, :] < used[:, None]
    rows[..., 1:5] = np.where(filled[..., None], letters, -1)
    rows[..., 0] = np.where(filled, clue_mis, -1)
    rows[..., 5] = np.where(filled, clue_pos, -1)
    return rows.reshape(n, 36)


def run() -> list[Result]:
    torch.set_num_threads(1)
    out = []
    rows = _boards(300_000)
    t_build, index = timed(lambda: ConditionalIndex(rows))
    out.append(
        Result(
            "MM-463 buffer index (300k rows)",
            t_build,
            note=f"{len(index.states):,} distinct boards",
        )
    )
    rng = np.random.default_rng(1)
    queries = index.states[rng.integers(len(index.states), size=(20, 128))]
    coalitions = rng.random((20, 36)) < 0.5

    def one_update() -> None:
        for r in range(20):  # a fresh coalition per run, as in training at F = 36
            index._cache.clear()
            index.sample(queries[r], coalitions[r], rng)

    t_update, _ = timed(one_update, repeats=3)
    out.append(
        Result(
            "MM-463 draws for one 20-run update (fresh coalitions)",
            t_update,
            target_s=0.5,
            note="20 groupings of 300k boards + 2,560 draws",
        )
    )

    spec = mm.MastermindSpec(2, 2, 2, 2.0)
    policy_fn = mm.first_consistent_policy(spec)
    mdp = mm.build_model(spec)
    prob = tabular_problem(mdp, mm.policy_table(mdp, policy_fn))
    data = prob.data("behaviour")
    cfg = TrainConfig(updates=300, n_runs=20, eval_every=10**9)
    for name, char in (
        ("single-sample", SampledCharacteristic.from_state_data(data)),
        ("exact", ExactCharacteristic(prob.table("behaviour"))),
    ):
        _, curves = train_shapley(data, char, cfg, device="cpu")
        rate = curves.updates_per_second
        out.append(
            Result(
                f"MM-222 Shapley, 20 runs, {name} characteristic: s per 1k updates",
                1000.0 / rate,
                note=f"{rate:,.0f} aggregate updates/s",
            )
        )
    return out
