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
