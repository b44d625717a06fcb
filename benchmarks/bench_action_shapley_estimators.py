"""Action Shapley II: every estimator on all four case studies from the utility tables.

Target (issue "Action Shapley II"): all estimators on all four case studies in under 2
minutes, single core. Each estimator runs once per case study (Algorithm 2 and the hybrid at 8
samples per size, the library baselines at a quarter of the subsets, at most 2,048 distinct
evaluations). Reads the committed SAC-PID tables (seed 0); where no complete table is committed
(e.g. only `make action-shapley-kubernetes-sample`'s stratified sample of Kubernetes' 2^15
subsets) it times a stand-in table of the same size and a similar null structure (said in the
note).
"""

from __future__ import annotations

import time

import numpy as np

from shaprl.action_shapley import TableGame
from shaprl.action_shapley.estimators import study
from shaprl.action_shapley.estimators.summary import CASES, load_case_game
from shaprl.action_shapley.exact import subset_sizes

from .harness import Result

#: n and the size below which every subset fails, for stand-ins of missing tables
_STAND_IN = {"vm_right_sizing": (5, 4), "load_balancing": (5, 3), "database_tuning": (6, 4),
             "kubernetes": (15, 5)}  # fmt: skip


def _stand_in(case: str) -> TableGame:
    n, min_size = _STAND_IN[case]
    rng = np.random.default_rng(0)
    sizes = subset_sizes(n)
    table = rng.normal(-20.0, 5.0, size=1 << n) + sizes
    table[sizes < min_size] = np.nan
    return TableGame(table)


def _game(case: str) -> tuple[TableGame, str]:
    try:
        return load_case_game(case, "sac", seed=0)[0], "committed table"
    except (FileNotFoundError, ImportError, ValueError):  # missing, or a sample only
        return _stand_in(case), "stand-in table (no complete committed table)"


def run() -> list[Result]:
    out, total = [], 0.0
    for case in CASES:
        game, source = _game(case)
        budget = min(2048, (1 << game.n_players) // 4)
        start = time.perf_counter()
        frame = study.estimator_study(
            game, seeds=(0,), samples_per_size=(8,), evaluation_budgets=[budget]
        )
        seconds = time.perf_counter() - start
        total += seconds
        note = f"{len(frame)} runs, {frame['evaluations'].sum():,} evaluations; {source}"
        out.append(
            Result(f"action shapley estimators: {case} (n={game.n_players})", seconds, None, note)
        )
    out.append(Result("action shapley estimators: all four case studies", total, 120.0))
    return out
