"""Why a case study's game is (or is not) degenerate: the goal's geometry and the action step.

A game is *degenerate* when nearly every non-null subset gets the same utility: Eq. 1 drops the
null pairs, so equal utilities give every point value 0 and the few non-zero values measure
training runs, not data (:func:`.analysis.degeneracy` counts it). Two causes can produce it,
and the two functions below separate them.

* :func:`goal_geometry` -- the simulated system itself. The window statistic ``s(a)`` of every
  configuration ``a`` on a grid over the case's bounds (the median over
  ``windows`` simulated windows, so the noise drops out), and a summary: the statistic's
  range, the share of configurations inside the goal, whether the one-sided threshold can
  be crossed at all (``max s > thr``), and how much each knob moves ``s`` with the other
  held fixed. A knob that never moves ``s`` leaves one effective dimension; if ``s`` is then
  monotone in it, every agent that learns the direction takes the same path at the largest
  step, and the utility cannot separate the subsets.
* :func:`step_sweep` -- the action step (``CaseStudy.max_step``). Every non-empty subset is
  valued at several steps (training runs with common random numbers, the multi-run
  utility's agents); if the subsets share one return at every step, the step is not the
  cause.

Neither changes the committed utility tables: both only explain them.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from .case_studies import CaseStudy

__all__ = ["goal_geometry", "geometry_summary", "step_sweep", "step_sweep_summary"]


def goal_geometry(
    case: CaseStudy, points: int = 31, windows: int = 25, seed: int = 0
) -> pd.DataFrame:
    """The window statistic on a ``points x points`` grid over the case's bounds (one row each).

    Columns: the two knobs (named by ``case.dims``), ``statistic`` (median over ``windows``
    simulated windows with one seeded, shared noise stream) and ``in_goal`` (inside
    ``case.band``). The knobs are continuous inside the RL loop (notebook 20), so the grid is
    too.
    """
    axes = [np.linspace(lo, hi, points) for lo, hi in zip(case.lower, case.upper, strict=True)]
    grid = np.array(np.meshgrid(*axes, indexing="ij")).reshape(2, -1).T
    rng = np.random.default_rng([seed, 104729])
    samples = case.simulate_windows(grid, windows, rng, shared_noise=True)
    stat = np.median(case.aggregate(samples), axis=1)
    lo, hi = case.band
    return pd.DataFrame(
        {
            case.dims[0]: grid[:, 0],
            case.dims[1]: grid[:, 1],
            "statistic": stat,
            "in_goal": (stat >= lo) & (stat <= hi),
        }
    )


def geometry_summary(case: CaseStudy, geometry: pd.DataFrame) -> dict[str, float | bool]:
    """What the grid says about the goal: can the threshold be crossed, which knobs matter.

    ``effect of <knob>`` is the largest change of the statistic along that knob with the
    other knob held at any one grid value (the median statistic, so noise is ~0 here).
    """
    d0, d1 = case.dims
    wide = geometry.pivot(index=d0, columns=d1, values="statistic").to_numpy()
    s = geometry["statistic"]
    return {
        "threshold": case.threshold,
        "goal": f"{case.band[0]:g} <= {case.statistic} <= {case.band[1]:g}",
        "smallest statistic": float(s.min()),
        "largest statistic": float(s.max()),
        "threshold can be crossed": bool(s.max() > case.threshold),
        "configurations in the goal": float(geometry["in_goal"].mean()),
        f"effect of {d0}": float(np.max(wide.max(axis=0) - wide.min(axis=0))),
        f"effect of {d1}": float(np.max(wide.max(axis=1) - wide.min(axis=1))),
    }


def step_sweep(
    case: CaseStudy, algo: str, steps: list[float], runs: int = 3, base_seed: int = 0
) -> pd.DataFrame:
    """Every non-empty subset valued with the action step set to each of ``steps``.

    ``steps`` are physical units per window, applied to both knobs (``max_step = (s, s)``).
    Agents: :func:`~.utility.run_outcomes` (run ``r`` has one agent seed for every subset,
    the shared evaluation episodes). One row per (step, run, subset).
    """
    from .traces import load_traces, traces_path
    from .utility import run_outcomes

    traces = load_traces(traces_path(case), case)
    masks = list(range(1, 1 << case.n))
    rows = []
    for step in steps:
        stepped = replace(case, max_step=(float(step), float(step)))
        out = run_outcomes(stepped, traces, algo, masks, list(range(runs)), base_seed)
        for r in range(runs):
            for m, ret, ok, conv in zip(
                out[r]["mask"],
                out[r]["return"],
                out[r]["success"],
                out[r]["convergence"],
                strict=True,
            ):
                rows.append(
                    {
                        "case": case.key,
                        "algo": algo,
                        "max_step": float(step),
                        "run": r,
                        "mask": int(m),
                        "system_return": float(ret),
                        "success": bool(ok),
                        "convergence": float(conv),
                    }
                )
    return pd.DataFrame(rows)


def step_sweep_summary(sweep: pd.DataFrame, decimals: int = 2) -> pd.DataFrame:
    """Per step: successful (run, subset) cells, distinct returns among them, and the share
    at the most common return (with that return and the all-data convergence time)."""
    rows = []
    for (algo, step), g in sweep.groupby(["algo", "max_step"]):
        ok = g[g["success"]]
        rounded = np.round(ok["system_return"].to_numpy(), decimals)
        values, counts = np.unique(rounded, return_counts=True)
        full = g[g["mask"] == g["mask"].max()]
        rows.append(
            {
                "algo": algo,
                "max step / window": step,
                "successful cells": int(len(ok)),
                "cells": int(len(g)),
                "distinct returns": int(len(values)),
                "most common return": float(values[np.argmax(counts)]) if len(values) else np.nan,
                "share at it": float(counts.max() / len(ok)) if len(ok) else np.nan,
                "all-data convergence (steps)": float(full["convergence"].mean()),
            }
        )
    return pd.DataFrame(rows)
