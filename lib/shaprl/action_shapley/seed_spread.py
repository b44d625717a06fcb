"""Kubernetes' seed spread: extra agent seeds by sampling, resumable from committed samples.

An exact Kubernetes table costs 2^15 = 32,768 trained agents per seed and algorithm, so
seeds beyond 0 are estimated (issue 17: seeds 1-4 at <= 4,096 utility evaluations each).
The estimator is the corrected Algorithm 2 (:func:`.estimators.stratified.algorithm2`:
``SAMPLES_PER_SIZE`` uniform subsets ``d`` of ``D \\ {k}`` at every size, ``phi_k = C_f
sum_i mean(U(d + k) - U(d))``, null pairs counted as 0 as Eq. 1 drops them) -- unbiased for
Eq. 1, with a standard error per value from the strata.

**Why not the hybrid.** The issue asked for the hybrid (Algorithm 1 for theta_k, then the
stratified estimator above it). Algorithm 1 stops a point's walk down the levels at its first
null pair (epsilon = 1), and under the paper's goal Kubernetes nulls are rare. If they sit at
the smallest sizes, the walk covers nearly every level (all 32,768 subsets when only U(empty)
is null); if a few sit high up, it stops early and the hybrid drops every level below it,
where nearly every pair is non-null: a bias, not a saving. :func:`hybrid_cost_on_table`
measures which on seed 0's exact table (notebook 23). The hybrid's second stage on every size
is the corrected Algorithm 2, used here.

Every utility is the exact table's (:func:`~.utility.multi_run_outcomes`: one run, agent
seed ``run_seed(seed, 0)`` shared by all subsets, the shared evaluation episodes), so seed 0's
estimate can be checked against its exact values. The subsets asked for are written, after
every batch of ``chunk`` agents, to a committed sample table
``<case>_<algo>_seed<s>_sample.csv`` (schema 2, ``complete: false``); the draws are seeded, so a
re-run asks for the same subsets, finds the recorded ones in the table and trains only the
rest -- a run or session that stops midway loses at most one batch.
"""

from __future__ import annotations

import time
from itertools import combinations, product
from pathlib import Path

import numpy as np
import pandas as pd

from .case_studies import CaseStudy
from .estimators.compare import spearman
from .estimators.result import ActionShapleyResult
from .estimators.stratified import algorithm2, hybrid
from .game import TableGame, ValuationGame
from .uncertainty import congruence_verdict

SAMPLES_PER_SIZE = 12  #: 15 points x 15 sizes x 12 draws x 2 sides: ~3,430 distinct subsets
EXTRA_SEEDS = (1, 2, 3, 4)

__all__ = [
    "EXTRA_SEEDS",
    "SAMPLES_PER_SIZE",
    "SampledAgentGame",
    "hybrid_cost_on_table",
    "sample_path",
    "sample_progress",
    "seed_estimate",
    "seed_congruence",
    "seed_intervals",
    "seed_spread",
]


def sample_path(case: CaseStudy, algo: str, seed: int) -> Path:
    from .tables import tables_dir

    return tables_dir() / f"{case.key}_{algo}_seed{seed}_sample.csv"


def sample_progress(case: CaseStudy, algo: str, seeds=EXTRA_SEEDS) -> str:
    """Subsets recorded so far in each seed's committed sample table
    (:func:`~.tables.recorded_subsets`), e.g. ``"1: 3,441, 2: 1,024, 3: -, 4: -"``; ``-``
    where none is committed."""
    from .tables import recorded_subsets

    counts = {seed: recorded_subsets(sample_path(case, algo, seed)) for seed in seeds}
    return ", ".join(f"{s}: {'-' if n is None else f'{n:,}'}" for s, n in counts.items())


class SampledAgentGame(ValuationGame):
    """``U(d)`` by training agents, recorded in (and replayed from) the committed sample table.

    ``train=False`` replays only: a subset missing from the table raises, naming the make
    target that computes it.
    """

    def __init__(
        self, case: CaseStudy, algo: str, seed: int, chunk: int = 1024, train: bool = True
    ) -> None:
        super().__init__(case.n, case.points)
        self.case, self.algo, self.seed, self.chunk, self.train = case, algo, seed, chunk, train
        self.path = sample_path(case, algo, seed)
        self.frame = self._read() if self.path.exists() else None
        self.seconds = 0.0

    def _read(self) -> pd.DataFrame:
        from ..repro.data import read_table
        from .tables import UTILITY

        frame, meta = read_table(self.path, UTILITY, "delete it to start the sample over")
        want = {"case": self.case.key, "algorithm": self.algo, "seed": self.seed}
        got = {k: meta.get(k) for k in want}
        if got != want:
            raise ValueError(f"{self.path.name} holds {got}, expected {want}")
        return frame

    def _evaluate(self, masks: np.ndarray) -> np.ndarray:
        known = set() if self.frame is None else set(self.frame["mask"].tolist())
        todo = [int(m) for m in masks if int(m) not in known]
        if todo and not self.train:
            raise LookupError(
                f"{len(todo)} subsets are not in {self.path.name} yet: run `make "
                "action-shapley-kubernetes-seeds` (resumable)"
            )
        for start in range(0, len(todo), self.chunk):
            self._train(todo[start : start + self.chunk])
        by_mask = self.frame.set_index("mask")["utility"] if self.frame is not None else {}
        return np.array([by_mask[int(m)] for m in masks], dtype=float)

    def _train(self, masks: list[int]) -> None:
        """Value ``masks`` (one run each) and rewrite the sample table with them
        (:func:`~.tables.grow_table`)."""
        from .tables import grow_table
        from .utility import EPISODES

        t0 = time.perf_counter()
        self.frame = grow_table(self.frame, self.case, self.algo, self.seed, masks, 1,
                                EPISODES, self.path, self.seconds)  # fmt: skip
        self.seconds += time.perf_counter() - t0


def seed_estimate(
    case: CaseStudy,
    algo: str,
    seed: int,
    samples_per_size: int = SAMPLES_PER_SIZE,
    train: bool = True,
) -> ActionShapleyResult:
    """The corrected Algorithm 2 for one agent seed (draws seeded by ``seed``)."""
    game = SampledAgentGame(case, algo, seed, train=train)
    return algorithm2(game, samples_per_size, seed=seed)


def seed_spread(
    case: CaseStudy, algo: str, seeds=EXTRA_SEEDS, samples_per_size: int = SAMPLES_PER_SIZE
) -> pd.DataFrame:
    """Replay the committed samples: one row per (seed, point) with the estimate, its standard
    error and the evaluations; seeds whose sample is not committed are skipped."""
    rows = []
    for seed in seeds:
        if not sample_path(case, algo, seed).exists():
            continue
        try:
            res = seed_estimate(case, algo, seed, samples_per_size, train=False)
        except LookupError:
            continue  # a sample still being computed
        rows += [
            {
                "algorithm": algo,
                "seed": seed,
                "point": p,
                "estimate": float(res.values[k]),
                "stderr": float(res.stderr[k]),
                "evaluations": res.evaluations,
            }
            for k, p in enumerate(case.points)
        ]
    return pd.DataFrame(rows)


def hybrid_cost_on_table(
    table: np.ndarray, names, samples_per_size: int = SAMPLES_PER_SIZE
) -> dict[str, int]:
    """Evaluations the hybrid and the corrected Algorithm 2 need on an exact table (and the
    hybrid's largest |error| against the exact values: its bias when it stops early)."""
    from .exact import exact_action_shapley

    game = TableGame(table, names)
    exact = exact_action_shapley(game)
    game.reset_count()
    h = hybrid(game, samples_per_size, seed=0)
    game.reset_count()
    a = algorithm2(game, samples_per_size, seed=0)
    return {
        "subsets": 1 << len(names),
        "hybrid evaluations": h.evaluations,
        "hybrid max |error|": float(np.max(np.abs(h.values - exact))),
        "algorithm 2 evaluations": a.evaluations,
        "algorithm 2 max |error|": float(np.max(np.abs(a.values - exact))),
        "largest |exact value|": float(np.max(np.abs(exact))),
    }


def seed_intervals(exact: pd.DataFrame, spread: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per (algorithm, point): seed 0's exact value beside the seed mean and its interval.

    ``exact``: :func:`.analysis.values_frame` rows of seed 0; ``spread``: :func:`seed_spread`.
    The seeds are independent training runs of the whole pipeline, so the interval is the
    t-interval of their mean (seed 0 exact, the others estimated: their Monte Carlo standard
    errors are part of the spread between seeds, and their mean is reported beside it).
    """
    from scipy import stats

    base = exact[exact["seed"] == 0]
    allv = _long_values(exact, spread)
    rows = []
    for (algo, point), g in allv.groupby(["algorithm", "point"], sort=False):
        v = g["value"].to_numpy(float)
        k = len(v)
        mean, sd = float(v.mean()), float(v.std(ddof=1)) if k > 1 else float("nan")
        half = float(stats.t.ppf(0.5 + level / 2, k - 1) * sd / np.sqrt(k)) if k > 1 else np.nan
        se = spread[(spread["algorithm"] == algo) & (spread["point"] == point)]["stderr"]
        rows.append(
            {
                "algorithm": algo,
                "point": point,
                "seed 0 (exact)": float(base[(base.algorithm == algo) & (base.point == point)]
                                        ["value"].iloc[0]),
                "seeds": k,
                "mean over seeds": mean,
                "sd over seeds": sd,
                "low": mean - half,
                "high": mean + half,
                "mean Monte Carlo s.e.": float(se.mean()) if len(se) else np.nan,
            }
        )  # fmt: skip
    return pd.DataFrame(rows)


def seed_values(exact: pd.DataFrame, spread: pd.DataFrame) -> pd.DataFrame:
    """One column per (algorithm, seed), one row per point: seed 0's exact value and the other
    seeds' estimates (``exact``: :func:`.analysis.values_frame` rows; ``spread``:
    :func:`seed_spread`)."""
    long = _long_values(exact, spread)
    return long.pivot_table(
        index="point", columns=["algorithm", "seed"], values="value", sort=False
    )


def _long_values(exact: pd.DataFrame, spread: pd.DataFrame) -> pd.DataFrame:
    """(algorithm, seed, point, value) rows: seed 0's exact values, then the estimates."""
    cols = ["algorithm", "seed", "point", "value"]
    base = exact[exact["seed"] == 0].assign(seed=0)[cols]
    others = spread.rename(columns={"estimate": "value"})
    return pd.concat([base, others[cols] if len(others) else None], ignore_index=True)


def seed_congruence(exact: pd.DataFrame, spread: pd.DataFrame) -> dict[str, float | str | int]:
    """SAC-vs-PPO agreement judged against each algorithm's agreement with itself across seeds.

    Kubernetes has one run per subset and seed, so the seeds play the part the runs' split
    halves play for the small case studies (:func:`.uncertainty.congruence_vs_split_half`).
    Every quantity is a Spearman correlation of two *single-seed* value vectors over the
    points: ``within_<algo>`` is the mean over pairs of distinct seeds of one algorithm,
    ``cross`` the mean over every (SAC seed, PPO seed) pair. Seed 0 is exact and the others
    are estimated, so both sides mix the same kinds of vectors (Monte Carlo error included).
    Verdict ``congruent`` when ``cross`` reaches the smaller ``within`` (the two algorithms
    agree as well as one agrees with itself), ``not congruent`` below it, ``undetermined``
    when an algorithm has fewer than two seeds or a correlation is undefined.
    """
    wide = seed_values(exact, spread)
    cols = {a: [c for c in wide.columns if c[0] == a] for a in ("sac", "ppo")}

    def mean_rho(pairs) -> float:
        rhos = [spearman(wide[x].to_numpy(), wide[y].to_numpy()) for x, y in pairs]
        return float(np.mean(rhos)) if rhos else float("nan")

    within = {a: mean_rho(combinations(c, 2)) for a, c in cols.items()}
    cross = mean_rho(product(cols["sac"], cols["ppo"]))
    verdict = congruence_verdict(cross, min(within.values()))
    return {
        "cross": cross,
        "within_sac": within["sac"],
        "within_ppo": within["ppo"],
        "seeds_sac": len(cols["sac"]),
        "seeds_ppo": len(cols["ppo"]),
        "verdict": verdict,
    }
