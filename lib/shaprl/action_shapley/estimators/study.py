"""Every estimator on one game, over budgets and seeds, scored against the exact values.

:func:`estimator_study` returns one row per (estimator, budget, seed) with the distinct
utility evaluations spent and :func:`~.compare.accuracy`'s scores; :func:`summarise` averages
the seeds (mean and standard error). The paper's estimators value Action Shapley itself; the
library baselines value the penalty game (null -> ``penalty``), so their MAE (and
``spearman_own``) is measured against that game's exact Shapley or Banzhaf values, and their
``spearman``/``top_k``/``same_selection`` against exact Action Shapley (ranks only).
``U(selected)`` is the table's utility of the training set each estimate selects (the
agent trained on it), so the selections can be compared by what they deliver.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..game import TableGame, ValuationGame
from . import baselines as bl
from .compare import accuracy, exact_reference, selected_set, spearman
from .cutoff import algorithm1
from .result import ActionShapleyResult
from .stratified import algorithm2, hybrid


@dataclass(frozen=True)
class Estimator:
    """How to run one estimator: ``run(game, budget, seed)``; ``budget`` is its own knob."""

    name: str
    run: Callable[[ValuationGame, int, int], ActionShapleyResult]
    knob: str  #: "samples per size", "evaluations" or "none"
    values_of: str  #: "action shapley", "penalty shapley" or "penalty banzhaf"


def _shapiq(name: str) -> Callable:
    return lambda g, b, s: bl.shapiq_shapley(g, b, seed=s, approximator=name)


ESTIMATORS: dict[str, Estimator] = {
    e.name: e
    for e in (
        Estimator("algorithm 1", lambda g, b, s: algorithm1(g), "none", "action shapley"),
        Estimator(
            "algorithm 1 (shuffled levels)",
            lambda g, b, s: algorithm1(g, order_seed=s),
            "none",
            "action shapley",
        ),
        Estimator(
            "algorithm 2 (corrected)",
            lambda g, b, s: algorithm2(g, b, seed=s),
            "samples per size",
            "action shapley",
        ),
        Estimator(
            "algorithm 2 (printed)",
            lambda g, b, s: algorithm2(g, b, seed=s, variant="printed"),
            "samples per size",
            "action shapley",
        ),
        Estimator(
            "hybrid", lambda g, b, s: hybrid(g, b, seed=s), "samples per size", "action shapley"
        ),
        Estimator(
            "pyDVL TMC Shapley",
            lambda g, b, s: bl.pydvl_tmc_shapley(g, b, seed=s),
            "evaluations",
            "penalty shapley",
        ),
        Estimator(
            "pyDVL stratified Shapley",
            lambda g, b, s: bl.pydvl_stratified_shapley(g, b, seed=s),
            "evaluations",
            "penalty shapley",
        ),
        Estimator(
            "pyDVL MSR Banzhaf",
            lambda g, b, s: bl.pydvl_msr_banzhaf(g, b, seed=s),
            "evaluations",
            "penalty banzhaf",
        ),
        *(
            Estimator(f"shapiq {a}", _shapiq(a), "evaluations", "penalty shapley")
            for a in bl.SHAPIQ_APPROXIMATORS
        ),
    )
}


def game_from_frame(frame: pd.DataFrame, names: Sequence[str] | None = None) -> TableGame:
    """A :class:`TableGame` from a utility table with columns ``mask`` and ``utility``."""
    missing = {"mask", "utility"} - set(frame.columns)
    if missing:
        raise ValueError(f"a utility table needs columns 'mask' and 'utility'; missing {missing}")
    masks = frame["mask"].to_numpy(dtype=np.int64)
    n = int(np.log2(max(len(masks), 1)))
    if len(masks) != 1 << n or not np.array_equal(np.sort(masks), np.arange(1 << n)):
        raise ValueError(
            f"a utility table needs every subset 0..2**n-1 exactly once; got {len(masks)} rows"
        )
    table = np.empty(1 << n)
    table[masks] = frame["utility"].to_numpy(dtype=float)
    return TableGame(table, names)


def default_budgets(
    n: int, fractions: Sequence[float] = (1 / 16, 1 / 8, 1 / 4, 1 / 2)
) -> list[int]:
    """Evaluation budgets for the library baselines: fractions of ``2**n`` (at least n + 1)."""
    return sorted({max(n + 1, int(round(f * (1 << n)))) for f in fractions})


def estimator_study(
    game: ValuationGame,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    samples_per_size: Sequence[int] = (1, 2, 4, 8),
    evaluation_budgets: Sequence[int] | None = None,
    penalty: float | None = None,
    estimators: Sequence[str] | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Run ``estimators`` (default: all) on ``game``; one row per (estimator, budget, seed).

    ``penalty`` defines the baselines' game (default: the worst non-null utility, so a
    failure counts as the worst success).
    """
    names = list(ESTIMATORS) if estimators is None else list(estimators)
    unknown = set(names) - set(ESTIMATORS)
    if unknown:
        raise ValueError(f"unknown estimators {sorted(unknown)}; choose from {list(ESTIMATORS)}")
    reference = exact_reference(game)
    penalty = bl.worst_utility_penalty(game) if penalty is None else float(penalty)
    penalised = bl.PenaltyGame(game, penalty)
    exact_of = {
        "action shapley": reference.values,
        "penalty shapley": bl.exact_penalty_shapley(penalised),
        "penalty banzhaf": bl.exact_banzhaf(penalised),
    }
    if evaluation_budgets is None:
        evaluation_budgets = default_budgets(game.n_players)
    jobs = []
    for name in names:
        est = ESTIMATORS[name]
        grid = {"none": [0], "samples per size": samples_per_size}.get(est.knob, evaluation_budgets)
        seed_list = [0] if name == "algorithm 1" else seeds
        jobs += [(est, b, s) for b in grid for s in seed_list]
    rows = []
    for est, budget, seed in tqdm(jobs, disable=not progress, desc="estimators"):
        target = game if est.values_of == "action shapley" else penalised
        result = est.run(target, int(budget), int(seed))
        own = exact_of[est.values_of]
        scores = accuracy(result, reference, reference_values=own)
        chosen = selected_set(result, reference)
        rows.append(
            {
                "estimator": est.name,
                "game": result.game,
                "knob": est.knob,
                "budget": int(budget),
                "seed": int(seed),
                **scores,
                "spearman_own": spearman(result.values, own),
                "max_abs_error": float(np.max(np.abs(result.values - own))),
                "selected": "{" + ", ".join(game.names[k] for k in chosen) + "}",
                "U(selected)": (u_sel := game.utility(sum(1 << k for k in chosen))),
                "selected null": float(np.isnan(u_sel)),
            }
        )
    return pd.DataFrame(rows)


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard error over seeds, per estimator and budget."""
    metrics = ["evaluations", "spearman", "top_k", "mae", "same_selection", "spearman_own"]
    metrics += ["U(selected)", "selected null"] if "U(selected)" in frame else []
    grouped = frame.groupby(["estimator", "budget"], sort=False)[metrics]
    mean = grouped.mean()
    sem = grouped.sem(ddof=1).fillna(0.0).add_suffix("_se")
    out = mean.join(sem)
    out["seeds"] = grouped.size()
    return out.reset_index()


def cached_study(game: ValuationGame, label: str, **kwargs) -> pd.DataFrame:
    """:func:`estimator_study` cached on disk, keyed by the game's table and the arguments."""
    import hashlib

    from ...repro import cached

    digest = hashlib.sha256(np.ascontiguousarray(game.table()).tobytes()).hexdigest()[:16]
    config = {
        "label": label,
        "table": digest,
        **{k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
    }
    return cached("action_shapley_estimator_study", config, lambda: estimator_study(game, **kwargs))
