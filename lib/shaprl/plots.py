"""Plotting helpers shared by the notebooks (matplotlib, imported lazily by callers)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

KIND_COLOURS = {"behaviour": "#4C72B0", "outcome": "#DD8452", "prediction": "#55A868"}


def phi_bars(
    phi: pd.Series | Sequence[float],
    features: Sequence[str],
    *,
    ax=None,
    title: str = "",
    colour: str = "#4C72B0",
    annotate: bool = True,
):
    """Horizontal bars of one state's Shapley values, one bar per feature."""
    ax = ax or plt.gca()
    values = np.asarray(phi, float)
    y = np.arange(len(features))[::-1]
    ax.barh(y, values, color=[colour if v >= 0 else "#C44E52" for v in values])
    ax.set_yticks(y, labels=list(features))
    ax.axvline(0, color="black", lw=0.8)
    ax.set_title(title, fontsize=10)
    lim = max(1e-9, np.abs(values).max()) * 1.35
    ax.set_xlim(-lim, lim)
    if annotate:
        for yi, v in zip(y, values, strict=True):
            ax.text(v, yi, f" {v:+.3g} ", va="center", ha="left" if v >= 0 else "right", fontsize=8)
    return ax


def table_figure(frame: pd.DataFrame, *, title: str = "", fmt: str = "{:.3g}", width: float = 1.1):
    """Render a small DataFrame as a figure (for paper figures that are tables)."""
    text = [
        [fmt.format(v) if isinstance(v, (int, float, np.floating)) else str(v) for v in row]
        for row in frame.to_numpy()
    ]
    fig, ax = plt.subplots(figsize=(width * (len(frame.columns) + 1), 0.35 * (len(frame) + 2)))
    ax.axis("off")
    tab = ax.table(
        cellText=text,
        rowLabels=[
            " / ".join(map(str, i)) if isinstance(i, tuple) else str(i) for i in frame.index
        ],
        colLabels=[
            " / ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in frame.columns
        ],
        loc="center",
        cellLoc="center",
    )
    tab.auto_set_font_size(False)
    tab.set_fontsize(8)
    tab.scale(1, 1.3)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def mean_abs_bars(
    importance: pd.Series, *, kind: str = "behaviour", ax=None, title: str | None = None
):
    """Global importance: mean |phi| per feature as horizontal bars, largest on top."""
    ax = ax or plt.gca()
    imp = importance.sort_values()
    ax.barh(np.arange(len(imp)), imp.to_numpy(), color=KIND_COLOURS.get(kind, "#4C72B0"))
    ax.set_yticks(np.arange(len(imp)), labels=list(imp.index))
    ax.set_xlabel("mean |phi| over states")
    ax.set_title(title or f"{kind}: global importance", fontsize=10)
    return ax


def beeswarm(
    phi: np.ndarray,
    features: Sequence[str],
    values: np.ndarray | None = None,
    *,
    ax=None,
    title: str = "",
    seed: int = 0,
):
    """Shapley values of many states: one row per feature, one dot per state.

    ``phi`` is ``(n_states, F)``; dots are jittered vertically and coloured by the feature's
    value in that state (``values`` ``(n_states, F)``, scaled per feature) when given.
    Features are ordered by mean |phi|, largest on top.
    """
    ax = ax or plt.gca()
    phi = np.asarray(phi, float)
    order = np.argsort(np.nanmean(np.abs(phi), axis=0))
    rng = np.random.default_rng(seed)
    for row, f in enumerate(order):
        x = phi[:, f]
        jitter = rng.uniform(-0.3, 0.3, len(x))
        colour = None
        if values is not None:
            v = np.asarray(values, float)[:, f]
            span = np.ptp(v)
            colour = (v - v.min()) / span if span > 0 else np.full(len(v), 0.5)
        ax.scatter(x, row + jitter, c=colour, cmap="coolwarm", s=8, vmin=0, vmax=1)
    ax.set_yticks(np.arange(len(order)), labels=[features[f] for f in order])
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("phi (colour: feature value, low blue to high red)")
    ax.set_title(title, fontsize=10)
    return ax
