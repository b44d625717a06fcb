"""What budget buys what accuracy: Monte Carlo SVERL against exact values (notebook 09).

One run at a budget (steady-state sample size, permutations, rollouts per action) collects
its own state sample through the simulator, draws the states to explain from that sample
(so they are distributed like the states a user would explain), estimates their Shapley
values, and compares them with a ground truth (the exact engine). Cost is measured as
simulator steps (collection plus rollouts) and wall-clock seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..simulators import PolicyFn, Simulator, collect_states
from .explanation import Explanation
from .monte_carlo import KINDS, MonteCarloSVERL


@dataclass(frozen=True)
class Budget:
    """Sample sizes of one Monte Carlo SVERL run."""

    sample_steps: int  #: decision stages of the steady-state sample
    n_permutations: int  #: feature orders per explained state
    n_rollouts: int  #: outcome rollouts per valid action of each explained state

    def scaled(self, factor: float) -> Budget:
        return Budget(*(max(2, round(v * factor)) for v in asdict(self).values()))


def budget_ladder(first: Budget, levels: int, factor: float = 4.0) -> list[Budget]:
    """``levels`` budgets, each ``factor`` times the previous in every sample size."""
    return [first.scaled(factor**k) for k in range(levels)]


def convergence_study(
    simulator: Simulator,
    policy: PolicyFn,
    truth: Callable[[np.ndarray], Explanation],
    budgets: Sequence[Budget],
    *,
    seeds: Sequence[int],
    n_states: int,
    kinds: Sequence[str] = KINDS,
    progress: bool = True,
    **explainer_kwargs,
) -> pd.DataFrame:
    """Errors of Monte Carlo SVERL against ``truth`` for every budget and seed.

    ``truth(rows)`` returns the exact explanation of the feature rows ``rows``;
    ``explainer_kwargs`` go to :class:`MonteCarloSVERL` (``value_fn``, ``gamma``, names).
    One row per budget, seed and kind: the budget, ``simulator_steps``, ``wall_s``, and over
    all explained states, features and outputs: ``mean_abs_error``, ``rms_error``,
    ``max_abs_error``, ``mean_stderr`` and ``within_2se`` (share of |error| <= 2 stderr; the
    standard errors leave out the state sample's own error, see :mod:`.monte_carlo`).
    """
    records = []
    runs = [(b, s) for b in budgets for s in seeds]
    for level, seed in tqdm(runs, desc="budgets", disable=not progress, leave=False):
        start = time.perf_counter()
        sample = collect_states(simulator, policy, level.sample_steps, seed=seed, progress=False)
        rows = _draw_states(sample.features, n_states, seed)
        mc = MonteCarloSVERL(simulator, policy, sample, **explainer_kwargs)
        est = mc.explain(
            rows,
            kinds,
            n_permutations=level.n_permutations,
            n_rollouts=level.n_rollouts,
            seed=seed,
            n_groups=min(8, level.n_rollouts),
            progress=False,
        )
        wall = time.perf_counter() - start
        ref = truth(rows)
        steps = (
            sample.steps + est.results["outcome"].samples.get("simulator_steps", 0)
            if ("outcome" in est.results)
            else sample.steps
        )
        for kind in kinds:
            err = est.results[kind].phi - ref.results[kind].phi
            se = est.results[kind].stderr
            records.append(
                {
                    **asdict(level),
                    "seed": seed,
                    "kind": kind,
                    "simulator_steps": steps,
                    "wall_s": wall,
                    "mean_abs_error": float(np.abs(err).mean()),
                    "rms_error": float(np.sqrt((err**2).mean())),
                    "max_abs_error": float(np.abs(err).max()),
                    "mean_stderr": float(se.mean()),
                    "within_2se": float((np.abs(err) <= 2 * se + 1e-12).mean()),
                }
            )
    return pd.DataFrame.from_records(records)


def _draw_states(features: np.ndarray, n_states: int, seed: int) -> np.ndarray:
    """Up to ``n_states`` distinct rows, drawn in visiting frequency order from the sample."""
    rng = np.random.default_rng([seed, 9])
    order = rng.permutation(len(features))
    _, first = np.unique(features[order], axis=0, return_index=True)
    picked = np.sort(first)[:n_states]  # the first occurrences in a random order of visits
    return features[order[picked]]


def error_slopes(frame: pd.DataFrame, cost: str = "simulator_steps") -> pd.Series:
    """Least-squares slope of log mean-abs-error against log cost, per kind (seeds averaged).

    Kinds whose error is zero at every budget (nothing to estimate) get NaN.
    """
    mean = frame.groupby(["kind", "sample_steps"], sort=False)[[cost, "mean_abs_error"]].mean()
    out = {}
    for kind, part in mean.groupby(level="kind", sort=False):
        y = part["mean_abs_error"].to_numpy()
        out[kind] = (
            np.nan if (y <= 0).any() else float(np.polyfit(np.log(part[cost]), np.log(y), 1)[0])
        )
    return pd.Series(out, name=f"slope vs {cost}")


COST_LABELS = {"simulator_steps": "simulator steps", "wall_s": "wall time (s)"}


def plot_convergence(
    frames: dict[str, pd.DataFrame],
    *,
    costs: Sequence[str] = ("simulator_steps",),
    colours: dict[str, str] | None = None,
):
    """Error vs cost (log-log): one panel per domain and cost (``simulator_steps``, ``wall_s``).

    Lines are the mean absolute error over seeds (bars: min to max over seeds), dashed
    lines the mean reported standard error; a grey guide shows the 1/sqrt(cost) rate.
    Wall time varies from run to run; simulator steps do not.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(costs), len(frames), figsize=(5.2 * len(frames), 3.8 * len(costs)), squeeze=False
    )
    for col, (domain, frame) in zip(axes.T, frames.items(), strict=True):
        for ax, cost in zip(col, costs, strict=True):
            label = COST_LABELS[cost]
            for kind, part in frame.groupby("kind", sort=False):
                g = part.groupby("sample_steps")
                x, y = g[cost].mean(), g["mean_abs_error"].mean()
                if (y <= 0).all():
                    ax.text(0.98, 0.96, f"{kind}: exactly 0 at every budget", ha="right",
                            va="top", transform=ax.transAxes, fontsize=8,
                            color=(colours or {}).get(kind))  # fmt: skip
                    continue
                c = (colours or {}).get(kind)
                lo, hi = y - g["mean_abs_error"].min(), g["mean_abs_error"].max() - y
                ax.errorbar(x, y, yerr=[lo, hi], marker="o", color=c, label=f"{kind}: |error|")
                ax.plot(x, g["mean_stderr"].mean(), ls="--", color=c, alpha=0.7,
                        label=f"{kind}: reported stderr")  # fmt: skip
            xs = frame.groupby("sample_steps")[cost].mean()
            first = frame[frame["sample_steps"] == frame["sample_steps"].min()]
            ref = first.loc[first["mean_abs_error"] > 0, "mean_abs_error"]
            if len(xs) > 1 and len(ref):
                anchor = float(np.exp(np.log(ref).mean()))  # geometric mean of first errors
                ax.plot(xs, anchor * np.sqrt(xs.iloc[0] / xs), color="0.5", lw=1.2, ls=":",
                        label=r"$\propto 1/\sqrt{\mathrm{cost}}$")  # fmt: skip
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(label)
            ax.set_ylabel("mean |phi_MC - phi_exact|")
            ax.set_title(f"{domain}: error vs {label}", fontsize=10)
            ax.grid(alpha=0.3, which="both")
    legend = {}
    for ax in axes.flat:
        for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(text, handle)
    fig.legend(
        legend.values(), legend.keys(), loc="lower center", ncol=4, fontsize=8, frameon=False
    )
    fig.tight_layout(rect=(0, 0.12 / len(costs), 1, 1))
    return fig
