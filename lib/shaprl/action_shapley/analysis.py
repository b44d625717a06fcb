"""Tables, figures and claim checks of the Action Shapley case-study notebooks (20-23).

* :func:`cutoff_cardinalities` -- Algorithm 1's cut-off cardinality ``theta_k`` of every point
  from a full utility table (``epsilon = 1``): scanning sizes ``i = n-1, n-2, ..., 2`` of the
  subsets ``d`` without ``k``, the first size with a null on either side of ``(d, d + k)`` sets
  ``theta_k = i + 1``; ``theta_k = 1`` when there is none. The global cut-off is
  :func:`global_theta`, the one definition used everywhere in the package (Algorithm 1's
  :func:`~.estimators.cutoff.global_cutoff`): the largest ``theta_k`` over the points with
  ``theta_k < n`` (a point with ``theta_k = n`` is indispensable; counting it would make the
  cut-off ``n`` whenever one exists); ``n`` when every point has ``theta_k = n``.
* :func:`values_frame` -- exact Action Shapley (Eq. 1, :func:`~.exact.exact_action_shapley`)
  for every algorithm and seed, indispensable points marked ("ind.", Tables 1 and 3).
* :func:`congruence` -- SAC-PID vs PPO-PID: Spearman rank correlation of the seed-mean values
  of the dispensable points and the largest absolute difference.
* :func:`degeneracy` -- how many distinct utilities the non-null subsets take and how many
  subsets and successful runs sit at the most common one: a game whose successful agents all
  follow one trajectory (Eq. 1 drops null pairs, so equal non-null utilities give value 0 and
  every non-zero value comes from the few subsets off that trajectory).
* :func:`kubernetes_values`, :func:`sample_vs_exact` -- the stratified-sample estimate of
  Eq. 1 (two pairs per point and size) and how far it is from the exact values.
"""

from __future__ import annotations

from math import comb

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from .case_studies import CaseStudy
from .exact import exact_action_shapley, indispensable_points, subset_sizes
from .game import TableGame
from .tables import load_table
from .traces import Traces
from .utility import stratified_estimate, stratified_pairs


def cutoff_cardinalities(table: np.ndarray, n: int) -> np.ndarray:
    """``theta_k`` of Algorithm 1 (``epsilon = 1``) for every point ``k``."""
    sizes = subset_sizes(n)
    masks = np.arange(1 << n)
    theta = np.ones(n, dtype=int)
    for k in range(n):
        without = masks[(masks >> k) & 1 == 0]
        bad = np.isnan(table[without]) | np.isnan(table[without | 1 << k])
        for i in range(n - 1, 1, -1):
            if bad[sizes[without] == i].any():
                theta[k] = i + 1
                break
    return theta


def global_theta(theta: np.ndarray, n: int) -> int:
    """The global cut-off cardinality (module docstring; same as Algorithm 1's)."""
    from .estimators.cutoff import global_cutoff

    return global_cutoff(np.asarray(theta), n)[0]


def p_comp(theta_max: int, n: int) -> float:
    """Eq. 2: the fraction of the power set Algorithm 1 does not need to visit."""
    return 1.0 - 2.0**theta_max / 2.0**n


def values_frame(case: CaseStudy, algos=("sac", "ppo"), seeds=(0,)) -> pd.DataFrame:
    """Tidy exact values: one row per (algorithm, seed, point)."""
    rows = []
    for algo in algos:
        for seed in seeds:
            frame, _ = load_table(case, algo, seed)
            table = frame.sort_values("mask")["utility"].to_numpy()
            game = TableGame(table, case.points)
            phi = exact_action_shapley(game)
            ind = set(indispensable_points(game))
            theta = cutoff_cardinalities(table, case.n)
            g = global_theta(theta, case.n)
            for k, p in enumerate(case.points):
                rows.append(
                    {
                        "algorithm": algo,
                        "seed": seed,
                        "point": p,
                        "value": phi[k],
                        "indispensable": k in ind,
                        "theta_k": int(theta[k]),
                        "global_theta": g,
                        "null_subsets": int(np.isnan(table).sum()),
                        "U(D)": table[-1],
                    }
                )
    return pd.DataFrame(rows)


def degeneracy(
    case: CaseStudy,
    algos=("sac", "ppo"),
    seed: int = 0,
    decimals: int = 2,
    world_model: str = "fixed-basis",
) -> pd.DataFrame:
    """Is the game degenerate? One row per algorithm.

    Counts the distinct non-null utilities (rounded to ``decimals``), the subsets and the
    successful runs at the most common utility / run return, and names the non-null subsets
    off it. Eq. 1 drops every pair with a null side, so a game whose non-null utilities are
    all equal has every value 0: its non-zero values come only from the subsets off the
    common utility.
    """
    rows = []
    for algo in algos:
        frame, _ = load_table(case, algo, seed, world_model=world_model)
        frame = frame.sort_values("mask")
        table = frame["utility"].to_numpy(dtype=float)
        ok = ~np.isnan(table)
        rounded = np.round(table[ok], decimals)
        values, counts = np.unique(rounded, return_counts=True)
        mode = float(values[np.argmax(counts)])
        returns = np.array(
            [float(x) for r in frame["run_returns"] for x in str(r).split(";")], dtype=float
        )
        success = np.array(
            [x.strip() in ("1", "True") for r in frame["run_success"] for x in str(r).split(";")]
        )
        off = frame["subset"].to_numpy()[ok][rounded != mode]
        phi = exact_action_shapley(TableGame(table, case.points))
        rows.append(
            {
                "algorithm": algo,
                "world model": world_model,
                "non-null subsets": int(ok.sum()),
                "distinct non-null utilities": int(len(values)),
                "most common utility": mode,
                "subsets at it": int(counts.max()),
                "subsets off it": " ".join(str(x) for x in off),
                "successful runs": int(success.sum()),
                "successful runs at it": int((np.round(returns[success], decimals) == mode).sum()),
                "max |value|": float(np.nanmax(np.abs(phi))),
            }
        )
    return pd.DataFrame(rows)


def paper_style(values: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Tables 1-4 layout: one row per point, SAC-PID and PPO-PID columns, "ind." marked."""
    one = values[values.seed == seed]
    out = {}
    for algo, name in (("sac", "AS SAC-PID"), ("ppo", "AS PPO-PID")):
        part = one[one.algorithm == algo].set_index("point")
        out[name] = [
            "ind." if part.loc[p, "indispensable"] else f"{part.loc[p, 'value']:.2f}"
            for p in part.index
        ]
    index = pd.Index(one[one.algorithm == "sac"]["point"].to_list(), name="point")
    return pd.DataFrame(out, index=index)


def seed_spread(values: pd.DataFrame) -> pd.DataFrame:
    """Per algorithm and point: mean, std, min and max of the value over seeds, rank range."""
    v = values.copy()
    v["rank"] = v.groupby(["algorithm", "seed"])["value"].rank(ascending=False).astype(int)
    g = v.groupby(["algorithm", "point"], sort=False)
    out = g["value"].agg(["mean", "std", "min", "max"])
    out["ranks"] = g["rank"].agg(lambda r: ",".join(map(str, r)))
    out["ind. in seeds"] = g["indispensable"].sum().astype(int)
    return out.reset_index()


def congruence(values: pd.DataFrame) -> dict:
    """SAC-PID vs PPO-PID on the seed means (dispensable points of both)."""
    mean = values.groupby(["algorithm", "point"], sort=False)["value"].mean().unstack(0)
    ind = values.groupby(["algorithm", "point"], sort=False)["indispensable"].any().unstack(0)
    keep = ~(ind["sac"] | ind["ppo"])
    a, b = mean.loc[keep, "sac"].to_numpy(), mean.loc[keep, "ppo"].to_numpy()
    rho = float(spearmanr(a, b).statistic) if keep.sum() > 2 else float("nan")
    theta = (
        values.groupby(["algorithm", "seed"])["global_theta"].first().groupby("algorithm").agg(set)
    )
    return {
        "spearman": rho,
        "max_abs_diff": float(np.max(np.abs(a - b))) if keep.any() else float("nan"),
        "scale": float(np.max(np.abs(np.concatenate([a, b])))) if keep.any() else float("nan"),
        "same_indispensable": bool((ind["sac"] == ind["ppo"]).all()),
        "cutoffs": {k: sorted(v) for k, v in theta.items()},
    }


def trace_figure(case: CaseStudy, traces: Traces, hours: float = 3.0):
    """Figs. 5 and 9-11: raw metric of every training configuration and its window statistic."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.4))
    n = int(hours * 3600 / case.interval_s)
    t = np.arange(n) * case.interval_s / 3600
    stats = traces.statistics()
    tw = (np.arange(stats.shape[1]) + 1) * case.window * case.interval_s / 3600
    for k, p in enumerate(case.points):
        label = f"{p} {tuple(float(f'{x:g}') for x in traces.configs[k])}"
        ax1.plot(t, traces.values[k, :n], lw=0.8, label=label)
        ax2.plot(tw, stats[k], lw=0.9)
    for ax in (ax1, ax2):
        ax.axhline(case.threshold, color="k", ls="--", lw=0.8)
        ax.set_xlabel("hours")
    ax2.axhspan(*case.band, color="0.85", zorder=0)
    ax1.set_ylabel(f"raw metric ({case.unit})")
    ax2.set_ylabel(f"{case.statistic} per window ({case.unit})")
    ax1.set_title(f"{case.title}: first {hours:g} h (simulated)")
    ax2.set_title(f"aggregated state statistic, window {case.window} samples")
    ax1.legend(fontsize=6, ncol=3 if case.n > 6 else 1, loc="best")
    fig.tight_layout()
    return fig


def kubernetes_values(
    case: CaseStudy, algo: str, per_stratum: int = 1, sample_seeds=(0, 1)
) -> pd.DataFrame:
    """Stratified-sample estimate of Eq. 1 from the (possibly partial) Kubernetes table.

    The independent samples ``sample_seeds`` are pooled (``per_stratum`` pairs per point and
    size each). Only the pairs whose two subsets are both in the committed table are used;
    the returned frame says how many pairs each point's estimate rests on.
    """
    frame, meta = load_table(case, algo, 0)
    util = dict(zip(frame["mask"].astype(int), frame["utility"], strict=True))
    planned = [p for s in sample_seeds for p in stratified_pairs(case.n, per_stratum, s)]
    pairs = [p for p in planned if p[1] in util and p[2] in util]
    phi = stratified_estimate(case.n, pairs, util) if pairs else np.full(case.n, np.nan)
    used = np.bincount([k for k, _, _ in pairs], minlength=case.n)
    total = case.n * per_stratum * len(sample_seeds)
    return pd.DataFrame(
        {
            "algorithm": algo,
            "point": case.points,
            "value": phi,
            "pairs_used": used,
            "pairs_planned": total,
        }
    )


def sample_vs_exact(estimate: pd.DataFrame, values: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The stratified-sample estimate (:func:`kubernetes_values`) beside the exact value."""
    exact = values[values.seed == seed][["algorithm", "point", "value", "indispensable"]]
    out = estimate.rename(columns={"value": "estimate"}).merge(
        exact.rename(columns={"value": "exact"}), on=["algorithm", "point"]
    )
    out["error"] = out["estimate"] - out["exact"]
    return out


def sample_accuracy(frame: pd.DataFrame) -> pd.DataFrame:
    """Per algorithm: Spearman rank correlation, MAE and whether the top point is the same."""
    rows = []
    for algo, part in frame.groupby("algorithm", sort=False):
        rows.append(
            {
                "algorithm": algo,
                "spearman": float(spearmanr(part["estimate"], part["exact"]).statistic),
                "MAE": float(part["error"].abs().mean()),
                "largest |exact|": float(part["exact"].abs().max()),
                "same top point": part.loc[part["estimate"].idxmax(), "point"]
                == part.loc[part["exact"].idxmax(), "point"],
            }
        )
    return pd.DataFrame(rows)


def n_subsets_of_size(n: int, i: int) -> int:
    return comb(n, i)


def spread_figure(values: pd.DataFrame, case: CaseStudy):
    """Exact values per point: one marker per seed and the seed mean, SAC-PID and PPO-PID."""
    fig, ax = plt.subplots(figsize=(1.1 * case.n + 2, 3.2))
    x = np.arange(case.n)
    for j, (algo, colour) in enumerate((("sac", "C0"), ("ppo", "C1"))):
        part = values[values.algorithm == algo]
        off = (j - 0.5) * 0.3
        for _, one in part.groupby("seed"):
            v = one.set_index("point").loc[list(case.points), "value"].to_numpy()
            ax.scatter(x + off, v, s=12, color=colour, alpha=0.6)
        mean = part.groupby("point")["value"].mean().loc[list(case.points)]
        ax.scatter(x + off, mean, marker="_", s=300, color=colour, label=f"{algo.upper()}-PID")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(x, case.points)
    ax.set_ylabel("Action Shapley (exact)")
    ax.set_title(f"{case.title}: value per seed (dots) and seed mean (bar)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def world_model_comparison(
    case: CaseStudy, algos=("sac", "ppo"), seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same game under both world models (issue 17): our fixed basis and the paper's
    per-subset fit, each a full multi-run table (same agent seeds, same episodes).

    Returns ``(summary, values)``: per algorithm, the subsets whose null verdict agrees, the
    Spearman correlation of the exact values, their largest difference and the global
    cut-offs; and the values side by side. Algorithms without a per-subset table are skipped.
    """
    rows, vals = [], []
    for algo in algos:
        try:
            per, _ = load_table(case, algo, seed, world_model="per-subset")
        except FileNotFoundError:
            continue
        fixed, _ = load_table(case, algo, seed)
        tables = {
            "fixed basis": fixed.sort_values("mask")["utility"].to_numpy(float),
            "per subset": per.sort_values("mask")["utility"].to_numpy(float),
        }
        phi = {k: exact_action_shapley(TableGame(t, case.points)) for k, t in tables.items()}
        theta = {
            k: global_theta(cutoff_cardinalities(t, case.n), case.n) for k, t in tables.items()
        }
        null_f, null_p = (np.isnan(t[1:]) for t in tables.values())
        a, b = phi["fixed basis"], phi["per subset"]
        rows.append(
            {
                "algorithm": algo,
                "same null verdict": f"{int((null_f == null_p).sum())}/{null_f.size}",
                "null (fixed / per subset)": f"{int(null_f.sum())} / {int(null_p.sum())}",
                "spearman of values": float(spearmanr(a, b).statistic),
                "max |diff|": float(np.max(np.abs(a - b))),
                "largest |value|": float(np.max(np.abs(np.concatenate([a, b])))),
                "cut-off (fixed / per subset)": f"{theta['fixed basis']} / {theta['per subset']}",
            }
        )
        vals.append(
            pd.DataFrame(
                {"algorithm": algo, "point": case.points, "fixed basis": a, "per subset": b}
            )
        )
    return pd.DataFrame(rows), (pd.concat(vals, ignore_index=True) if vals else pd.DataFrame())


def table_status(case: CaseStudy, algos=("sac", "ppo"), seed: int = 0) -> pd.DataFrame:
    """Which committed table each algorithm of ``case`` is read from (the paper's goal, or a
    legacy band-goal table shown for reference), its size and cost, and how far the tables
    still being built have got: the partial table and the seed samples
    (:func:`~.tables.partial_progress`, :func:`~.seed_spread.sample_progress`)."""
    from .seed_spread import sample_progress
    from .tables import partial_progress

    rows = []
    for a in algos:
        meta = load_table(case, a, seed)[1]
        rows.append(
            {
                "algorithm": a,
                "table": "legacy (old band goal)" if meta["legacy"] else "paper's goal",
                "goal": meta["goal"],
                "runs per subset": meta.get("runs", 1),
                "subsets": meta.get("n_subsets"),
                "partial table (subsets)": partial_progress(case, a, seed),
                "seed samples (subsets so far)": sample_progress(case, a),
                "compute seconds": meta.get("compute_seconds"),
            }
        )
    return pd.DataFrame(rows)
