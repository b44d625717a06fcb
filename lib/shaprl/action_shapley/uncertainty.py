"""Action Shapley values with uncertainty, from the per-run columns of a schema-2 table.

A committed small-case table holds ``R`` training runs per subset; run ``r`` used the same
agent seed for every subset (common random numbers, :func:`~.utility.run_seed`). Everything
here resamples **whole runs jointly**: a bootstrap replicate draws ``R`` run indices with
replacement and applies the *same* indices to every subset, so each replicate keeps the
common random numbers of the original table, and recomputes ``U`` under the null rule
(:data:`~.utility.NULL_RULE`, ours), the exact values (Eq. 1, null pairs dropped), ``theta_k``,
the global cut-off and the selected training sets.

* :func:`bootstrap` -- replicate values, ``theta_k``, global ``theta`` and selected sets.
* :func:`value_intervals` -- 95 % percentile intervals of every value.
* :func:`theta_frequencies`, :func:`set_frequencies` -- how often each ``theta`` / set is
  chosen over the replicates (frequencies, not intervals: these are discrete choices).
* :func:`split_half` -- Spearman rank correlation of the values computed from two disjoint
  halves of the runs (seeded random splits, averaged): the within-algorithm agreement against
  which SAC-vs-PPO congruence is judged (:func:`congruence_vs_split_half`).

The global cut-off has one definition in the whole package, :func:`global_theta` (=
:func:`~.estimators.cutoff.global_cutoff`): the largest ``theta_k`` over the points with
``theta_k < n``; ``n`` when every point has ``theta_k = n``.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from .analysis import cutoff_cardinalities, global_theta
from .estimators.compare import select_training_set, spearman
from .exact import exact_action_shapley
from .game import TableGame
from .utility import utility_from_runs

N_BOOT = 1000  #: bootstrap replicates (quick and paper profiles)


def values_of(
    returns: np.ndarray, success: np.ndarray, idx: np.ndarray | None, names
) -> tuple[np.ndarray, np.ndarray, int, tuple[int, ...], np.ndarray]:
    """Values, ``theta_k``, global theta, best set and ``U`` of the runs ``idx`` (all: None)."""
    if idx is not None:
        returns, success = returns[:, idx], success[:, idx]
    util, _ = utility_from_runs(returns, success)
    n = len(names)
    phi = exact_action_shapley(TableGame(util, tuple(names)))
    theta = cutoff_cardinalities(util, n)
    g = global_theta(theta, n)
    ind = tuple(int(k) for k in np.flatnonzero(theta == n))
    best = select_training_set(phi, g, ind)
    return phi, theta, g, best, util


def bootstrap(
    returns: np.ndarray, success: np.ndarray, names, n_boot: int = N_BOOT, seed: int = 0
) -> dict[str, np.ndarray | list]:
    """``n_boot`` replicates resampling whole runs jointly (the same indices for all subsets)."""
    rng = np.random.default_rng([int(seed), 4417])
    r = returns.shape[1]
    vals, thetas, gs, sets = [], [], [], []
    for _ in range(n_boot):
        idx = rng.integers(0, r, r)
        phi, theta, g, best, _ = values_of(returns, success, idx, names)
        vals.append(phi)
        thetas.append(theta)
        gs.append(g)
        sets.append(best)
    return {
        "values": np.array(vals),
        "theta_k": np.array(thetas),
        "global_theta": np.array(gs),
        "sets": sets,
    }


def value_intervals(point: np.ndarray, boot: dict, names, level: float = 0.95) -> pd.DataFrame:
    """The value of every point with its bootstrap percentile interval."""
    lo, hi = np.percentile(boot["values"], [50 * (1 - level), 50 * (1 + level)], axis=0)
    return pd.DataFrame(
        {
            "point": list(names),
            "value": point,
            "ci_low": lo,
            "ci_high": hi,
            "boot_sd": boot["values"].std(0),
            "excludes_0": (lo > 0) | (hi < 0),
        }
    )


def theta_frequencies(boot: dict, names) -> pd.DataFrame:
    """Per point, how often each ``theta_k`` is chosen; plus the global theta's frequencies."""
    rows = []
    b = len(boot["global_theta"])
    for k, p in enumerate(names):
        for t, c in sorted(Counter(boot["theta_k"][:, k].tolist()).items()):
            rows.append({"point": p, "theta": int(t), "frequency": c / b})
    for t, c in sorted(Counter(boot["global_theta"].tolist()).items()):
        rows.append({"point": "global", "theta": int(t), "frequency": c / b})
    return pd.DataFrame(rows)


def set_frequencies(boot: dict, names, top: int = 5) -> pd.DataFrame:
    """The ``top`` most frequently selected best training sets over the replicates."""
    b = len(boot["sets"])
    counts = Counter(tuple(s) for s in boot["sets"]).most_common(top)
    return pd.DataFrame(
        {
            "set": ["{" + ", ".join(names[k] for k in s) + "}" for s, _ in counts],
            "frequency": [c / b for _, c in counts],
        }
    )


def split_half(
    returns: np.ndarray, success: np.ndarray, names, n_splits: int = 20, seed: int = 0
) -> dict[str, float]:
    """Spearman of the values from two disjoint halves of the runs, over seeded random splits.

    Returns the mean, min and max over the splits (NaN splits -- a constant half -- left out)
    and the number of splits used.
    """
    rng = np.random.default_rng([int(seed), 9133])
    r = returns.shape[1]
    rhos = []
    for _ in range(n_splits):
        perm = rng.permutation(r)
        a = values_of(returns, success, np.sort(perm[: r // 2]), names)[0]
        b = values_of(returns, success, np.sort(perm[r // 2 : 2 * (r // 2)]), names)[0]
        rhos.append(spearman(a, b))
    rhos = np.array(rhos, dtype=float)
    ok = rhos[~np.isnan(rhos)]
    return {
        "split_half_spearman": float(ok.mean()) if ok.size else float("nan"),
        "min": float(ok.min()) if ok.size else float("nan"),
        "max": float(ok.max()) if ok.size else float("nan"),
        "splits": int(ok.size),
    }


def congruence_vs_split_half(
    sac: np.ndarray, ppo: np.ndarray, half: dict[str, dict[str, float]]
) -> dict[str, float | str]:
    """SAC-vs-PPO Spearman of the full-table values, judged against the split-half agreement.

    Verdict ``congruent`` when the cross-algorithm Spearman reaches the smaller of the two
    split-half means (two algorithms agree as well as one algorithm agrees with itself),
    ``not congruent`` otherwise, ``undetermined`` when either is NaN.
    """
    rho = spearman(sac, ppo)
    ref = min(half["sac"]["split_half_spearman"], half["ppo"]["split_half_spearman"])
    verdict = congruence_verdict(rho, ref)
    return {"sac_vs_ppo_spearman": rho, "within_algorithm_split_half": ref, "verdict": verdict}


def congruence_verdict(cross: float, within: float) -> str:
    """``congruent`` when the cross-algorithm agreement reaches the within-algorithm one,
    ``not congruent`` below it, ``undetermined`` when either is NaN."""
    if np.isnan(cross) or np.isnan(within):
        return "undetermined"
    return "congruent" if cross >= within else "not congruent"


def table_uncertainty(case, algo: str, seed: int = 0, n_boot: int = N_BOOT) -> dict:
    """Everything above for one committed table: intervals, frequencies, split-half."""
    from .tables import load_table, run_arrays

    frame, meta = load_table(case, algo, seed)
    ret, ok = run_arrays(frame, case.n)
    phi, theta, g, best, util = values_of(ret, ok, None, case.points)
    boot = bootstrap(ret, ok, case.points, n_boot, seed)
    iv = value_intervals(phi, boot, case.points)
    iv.insert(0, "algorithm", algo)
    iv["theta_k"] = theta
    return {
        "intervals": iv,
        "theta": theta_frequencies(boot, case.points).assign(algorithm=algo),
        "sets": set_frequencies(boot, case.points).assign(algorithm=algo),
        "split_half": split_half(ret, ok, case.points, seed=seed),
        "global_theta": g,
        "best_set": best,
        "utility": util,
        "null_fraction": float(np.isnan(util[1:]).mean()),
        "failures": frame.set_index("mask")["failures"],
        "convergence": frame.set_index("mask")["convergence"],
        "meta": meta,
        "values": phi,
    }


def case_uncertainty(case, algos=("sac", "ppo"), seed: int = 0, n_boot: int = N_BOOT) -> dict:
    """:func:`table_uncertainty` for both algorithms of a case study, side by side.

    Returns ``intervals``, ``theta`` and ``sets`` (frequencies) frames over both algorithms,
    a ``summary`` frame (per algorithm: runs, null fraction of the non-empty subsets, subsets
    with any failed run, global theta and its bootstrap frequency, the selected set and its
    frequency, U(all data), its failures and median convergence, split-half Spearman), and
    ``congruence`` (:func:`congruence_vs_split_half`) when both algorithms are there.
    """
    per = {a: table_uncertainty(case, a, seed, n_boot) for a in algos}
    rows = []
    full = (1 << case.n) - 1
    for a, u in per.items():
        th = u["theta"]
        g_freq = th[(th.point == "global") & (th.theta == u["global_theta"])]["frequency"]
        sets = u["sets"]
        label = "{" + ", ".join(case.points[k] for k in u["best_set"]) + "}"
        s_freq = sets[sets.set == label]["frequency"]
        rows.append(
            {
                "algorithm": a,
                "runs": int(u["meta"].get("runs", 1)),
                "null fraction": u["null_fraction"],
                "subsets with a failed run": float(
                    (u["failures"].drop(0, errors="ignore") > 0).mean()
                ),
                "global theta": u["global_theta"],
                "theta frequency": float(g_freq.iloc[0]) if len(g_freq) else 0.0,
                "selected set": label,
                "set frequency": float(s_freq.iloc[0]) if len(s_freq) else 0.0,
                "U(all data)": float(u["utility"][full]),
                "failures(all data)": int(u["failures"].get(full, -1)),
                "T(all data), median steps": int(u["convergence"].get(full, -1)),
                **{f"split-half {k}": v for k, v in u["split_half"].items()},
            }
        )
    out = {
        "per_algorithm": per,
        "intervals": pd.concat([u["intervals"] for u in per.values()], ignore_index=True),
        "theta": pd.concat([u["theta"] for u in per.values()], ignore_index=True),
        "sets": pd.concat([u["sets"] for u in per.values()], ignore_index=True),
        "summary": pd.DataFrame(rows),
    }
    if {"sac", "ppo"} <= set(per):
        half = {a: per[a]["split_half"] for a in ("sac", "ppo")}
        out["congruence"] = congruence_vs_split_half(
            per["sac"]["values"], per["ppo"]["values"], half
        )
    return out
