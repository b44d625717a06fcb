"""Figures of the FastSVERL experiments (accuracy curves, scaling bars)."""

from __future__ import annotations

import numpy as np
import pandas as pd

_COLOURS = {"exact": "#1f77b4", "learned": "#d62728"}


def mean_stderr(frame: pd.DataFrame, by: list[str], value: str = "exact_mse") -> pd.DataFrame:
    """Mean and standard error over runs of ``value`` grouped by ``by``."""
    g = frame.groupby(by, sort=False)[value]
    out = g.agg(["mean", "std", "count"]).reset_index()
    out["stderr"] = out["std"].fillna(0.0) / np.sqrt(out["count"])
    return out


def accuracy_figure(curves: pd.DataFrame):
    """Fig. 1 / App. C Fig. 4: exact MSE against updates; columns = domains, rows = models.

    Each panel shows the mean over runs with a ±1 standard-error band; Shapley panels show
    the exact and the learned upstream characteristic.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    domains = list(dict.fromkeys(curves["domain"]))
    panels = list(dict.fromkeys(zip(curves["model"], curves["kind"], strict=True)))
    fig, axes = plt.subplots(
        len(panels), len(domains), figsize=(3.4 * len(domains), 2.3 * len(panels)), squeeze=False
    )
    stats = mean_stderr(curves, ["domain", "model", "kind", "upstream", "update"])
    for j, dom in enumerate(domains):
        for i, (model, kind) in enumerate(panels):
            ax = axes[i, j]
            sel = stats[(stats.domain == dom) & (stats.model == model) & (stats.kind == kind)]
            if sel.empty:
                ax.axis("off")
                continue
            for up, part in sel.groupby("upstream", sort=False):
                label = "exact upstream" if up == "exact" else "learned upstream"
                if model == "characteristic":
                    label = "model"
                ax.plot(part["update"], part["mean"], color=_COLOURS[up], label=label)
                lo = np.maximum(part["mean"] - part["stderr"], 1e-12)
                ax.fill_between(
                    part["update"],
                    lo,
                    part["mean"] + part["stderr"],
                    color=_COLOURS[up],
                    alpha=0.25,
                )
            ax.set_yscale("log")
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.axhline(0.01, color="grey", lw=0.7, ls=":")
            ax.set_title(f"{dom}: {model if kind in model else f'{kind} {model}'}", fontsize=8)
            ax.tick_params(labelsize=7)
            if i == len(panels) - 1:
                ax.set_xlabel("updates", fontsize=8)
            if j == 0:
                ax.set_ylabel("exact MSE", fontsize=8)
            ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def scaling_figure(table: pd.DataFrame, *, value: str = "updates"):
    """Fig. 2 / App. Fig. 5: updates to target against number of states, log-log, per dims."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    models = list(dict.fromkeys(table["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.2), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        part = table[table.model == model]
        for dims, d in part.groupby("dims"):
            d = d.sort_values("states")
            ax.errorbar(
                d["states"],
                d["mean"],
                yerr=d["stderr"],
                marker="o",
                ms=3,
                capsize=2,
                label=f"{dims} features",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ticks = sorted(set(part["states"]))
        ax.set_xticks(ticks, labels=[str(t) for t in ticks], fontsize=7)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(axis="y", labelsize=7)
        ax.set_xlabel("number of states", fontsize=8)
        ax.set_ylabel(f"{value} to target", fontsize=8)
        ax.set_title(model, fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig
