"""Drawing Mastermind boards and per-feature Shapley values as boards (SVERL Fig. 3).

Boards are drawn with the first guess at the bottom, as in the paper. Each explanation
panel is scaled by its own largest absolute value and annotated to two decimals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from .mastermind import EMPTY, LETTERS, MastermindSpec

LETTER_COLOURS = ("#F2C14E", "#5DA9E9", "#9BC53D", "#E55934", "#B388EB", "#7D8491")
KIND_TITLES = {"behaviour": "behaviour", "outcome": "outcome", "prediction": "prediction"}


def _column_labels(spec: MastermindSpec) -> list[str]:
    return ["mis"] + [f"L{j}" for j in range(1, spec.code_length + 1)] + ["pos"]


def _frame(ax, spec: MastermindSpec) -> None:
    g, w = spec.n_guesses, spec.row_width
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(-0.5, g - 0.5)
    ax.set_xticks(range(w), _column_labels(spec), fontsize=7)
    ax.set_yticks(range(g), [f"guess {i + 1}" for i in range(g)], fontsize=7)
    ax.tick_params(length=0)
    for x in np.arange(-0.5, w, 1.0):
        ax.axvline(x, color="white", lw=1.5)
    for y in np.arange(-0.5, g, 1.0):
        ax.axhline(y, color="white", lw=1.5)
    for side in ax.spines.values():
        side.set_visible(False)


def draw_board(ax, spec: MastermindSpec, features: Sequence[int], *, title: str = ""):
    """One board: letters coloured, clues as numbers, empty cells blank (first guess at bottom)."""
    rows = np.asarray(features).reshape(spec.n_guesses, spec.row_width)
    colours = np.ones((spec.n_guesses, spec.row_width, 3)) * 0.93
    for i, row in enumerate(rows):
        if row[1] == EMPTY:
            continue
        colours[i, [0, -1]] = 0.8
        for j, letter in enumerate(row[1:-1], start=1):
            colours[i, j] = plt.matplotlib.colors.to_rgb(
                LETTER_COLOURS[(letter - 1) % len(LETTER_COLOURS)]
            )
    ax.imshow(colours, origin="lower", aspect="equal")
    for i, row in enumerate(rows):
        if row[1] == EMPTY:
            continue
        for j, v in enumerate(row):
            text = LETTERS[v - 1] if 0 < j < spec.row_width - 1 else str(v)
            ax.text(j, i, text, ha="center", va="center", fontsize=9, fontweight="bold")
    _frame(ax, spec)
    ax.set_title(title, fontsize=9)
    return ax


def scaled_phi(phi: Sequence[float]) -> np.ndarray:
    """Shapley values divided by their largest absolute value and rounded to 2 dp (Fig. 3)."""
    phi = np.asarray(phi, float)
    top = np.abs(phi).max()
    return np.round(phi / top, 2) if top > 1e-12 else np.zeros_like(phi)


def draw_phi_board(ax, spec: MastermindSpec, phi: Sequence[float], *, title: str = ""):
    """Per-feature values laid out as a board, scaled by the panel's max |phi| (blue +, red -)."""
    scaled = scaled_phi(phi).reshape(spec.n_guesses, spec.row_width)
    ax.imshow(scaled, origin="lower", cmap="RdBu", vmin=-1.0, vmax=1.0, aspect="equal")
    for (i, j), v in np.ndenumerate(scaled):
        v = 0.0 if v == 0 else v  # no "-0.00"
        ax.text(
            j,
            i,
            f"{v:.2f}",
            ha="center",
            va="center",
            fontsize=7,
            color="white" if abs(v) > 0.6 else "black",
        )
    _frame(ax, spec)
    ax.set_title(title, fontsize=9)
    return ax


def figure3(
    spec: MastermindSpec,
    boards: np.ndarray,
    actions: Sequence[str],
    phis: Mapping[str, np.ndarray],
):
    """SVERL Fig. 3: one row per state; columns = board, then one panel per explanation kind.

    ``phis[kind]`` is ``(n_states, F)`` (behaviour: for the chosen action). Panel titles give
    the unscaled max |phi| so the scales can be compared.
    """
    kinds = list(phis)
    n = len(boards)
    fig, axes = plt.subplots(
        n, 1 + len(kinds), figsize=(2.3 * (1 + len(kinds)), 2.0 * n), squeeze=False
    )
    for r in range(n):
        draw_board(axes[r, 0], spec, boards[r], title=f"state {r + 1}: agent guesses {actions[r]}")
        for c, kind in enumerate(kinds, start=1):
            phi = np.asarray(phis[kind][r], float)
            label = KIND_TITLES.get(kind, kind) + (
                f" ({actions[r]})" if kind == "behaviour" else ""
            )
            top = np.abs(phi).max()
            top_text = f"{top:.3g}" if top > 1e-12 else "0"
            draw_phi_board(axes[r, c], spec, phi, title=f"{label}\nmax |φ| = {top_text}")
            axes[r, c].tick_params(labelleft=False)  # rows are labelled on the board panel
        if r < n - 1:
            for ax in axes[r]:
                ax.tick_params(labelbottom=False)  # columns are labelled on the bottom row
    fig.tight_layout()
    return fig
