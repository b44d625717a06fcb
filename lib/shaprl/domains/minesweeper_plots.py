"""Drawing Minesweeper boards and per-square attributions (SVERL Figs. 4-5).

Boards are drawn with the paper's coordinates: x = col + 1 from the left, y = rows - row
from the bottom, so the top-left square is (1, rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.patches import Rectangle

from .minesweeper import UNOPENED, Board

UNOPENED_COLOUR = "#B0B7C3"
OPENED_COLOUR = "#F4F4F4"
MOVE_COLOUR = "#D62728"


def _grid(ax, board: Board) -> None:
    ax.set_xlim(0.5, board.cols + 0.5)
    ax.set_ylim(0.5, board.rows + 0.5)
    ax.set_aspect("equal")
    ax.set_xticks(range(1, board.cols + 1))
    ax.set_yticks(range(1, board.rows + 1))
    ax.tick_params(length=0, labelsize=8)
    for spine in ax.spines.values():
        spine.set_visible(False)


def _xy(j: int, board: Board) -> tuple[int, int]:
    row, col = divmod(int(j), board.cols)
    return col + 1, board.rows - row


def draw_board(
    ax,
    features: np.ndarray,
    board: Board,
    *,
    move: int | None = None,
    mines: Sequence[int] = (),
    title: str = "",
):
    """The visible board: counts on opened squares, grey unopened squares.

    ``move`` outlines the square the agent opens next; ``mines`` marks the hidden mines
    (drawn as a small dot) so the reader can follow the paper's M1/M2 discussion.
    """
    _grid(ax, board)
    for j, v in enumerate(np.asarray(features)):
        x, y = _xy(j, board)
        face = UNOPENED_COLOUR if v == UNOPENED else OPENED_COLOUR
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor=face, edgecolor="white", lw=2))
        if v != UNOPENED:
            ax.text(x, y, str(int(v)), ha="center", va="center", fontsize=11)
        if j in set(mines):
            ax.plot(x, y, "o", color="black", ms=6)
    if move is not None:
        x, y = _xy(move, board)
        ax.add_patch(
            Rectangle((x - 0.45, y - 0.45), 0.9, 0.9, fill=False, edgecolor=MOVE_COLOUR, lw=2.5)
        )
        ax.text(x, y - 0.3, "open", ha="center", va="center", fontsize=7, color=MOVE_COLOUR)
    ax.set_title(title, fontsize=10)
    return ax


def draw_values(
    ax,
    values: np.ndarray,
    features: np.ndarray,
    board: Board,
    *,
    show: np.ndarray | None = None,
    title: str = "",
    cmap: str = "RdBu",
    fmt: str = "{:+.3f}",
):
    """One number per square on a diverging colour scale, scaled by the panel's max |value|.

    The title states that scale (``colour ±max``): a panel whose values are all tiny is
    shaded as strongly as one with large values, so the reader needs the number.

    ``show`` (boolean per square) hides the squares without a value; the visible board is
    echoed in each square's corner ("u" = unopened) so panels can be read on their own.
    """
    _grid(ax, board)
    values = np.asarray(values, float)
    show = np.ones(len(values), bool) if show is None else np.asarray(show, bool)
    scale = max(float(np.abs(values[show]).max()) if show.any() else 0.0, 1e-12)
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-scale, vmax=scale)
    colours = plt.get_cmap(cmap)
    for j, (v, f) in enumerate(zip(values, np.asarray(features), strict=True)):
        x, y = _xy(j, board)
        level = norm(v) * 0.8 + 0.1
        face = colours(level) if show[j] else "white"
        ink = "white" if show[j] and abs(level - 0.5) > 0.28 else "black"
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor=face, edgecolor="#DDDDDD", lw=1))
        corner = "u" if f == UNOPENED else str(int(f))
        ax.text(x - 0.42, y + 0.42, corner, ha="left", va="top", fontsize=6, color=ink, alpha=0.7)
        if show[j]:
            ax.text(x, y, fmt.format(v), ha="center", va="center", fontsize=7, color=ink)
    ax.set_title(f"{title}\ncolour ±{scale:.2g}" if title else f"colour ±{scale:.2g}", fontsize=10)
    return ax


def figure4(
    boards: Sequence[np.ndarray],
    moves: Sequence[int],
    phis: Sequence[dict[str, np.ndarray]],
    board: Board,
    *,
    mines: Sequence[Sequence[int]] | None = None,
    state_names: Sequence[str] | None = None,
):
    """Fig. 4: one row per state: the board and move, then behaviour, outcome, prediction.

    ``phis[i][kind]`` is the (N,) attribution of each square; ``mines[i]`` the mines to
    mark on state i's board (e.g. those its clues pin down).
    """
    kinds = ("behaviour", "outcome", "prediction")
    names = state_names or [f"S{i + 1}" for i in range(len(boards))]
    mines = mines or [()] * len(boards)
    fig, axes = plt.subplots(len(boards), 4, figsize=(12, 3.3 * len(boards)), squeeze=False)
    rows = zip(boards, moves, phis, names, mines, strict=True)
    for r, (feat, move, phi, name, known) in enumerate(rows):
        draw_board(
            axes[r, 0],
            feat,
            board,
            move=move,
            mines=known,
            title=f"{name}: opens {board.square_name(move)}",
        )
        for c, kind in enumerate(kinds, start=1):
            label = f"{kind} (open {board.square_name(move)})" if kind == "behaviour" else kind
            draw_values(axes[r, c], phi[kind], feat, board, title=label)
    fig.tight_layout()
    return fig


def figure5(
    boards: Sequence[np.ndarray], own: Sequence[np.ndarray], board: Board, *, state_names=None
):
    """Fig. 5: per unopened square j, the Shapley value of feature j for P(open j)."""
    names = state_names or [f"S{i + 1}" for i in range(len(boards))]
    fig, axes = plt.subplots(1, len(boards), figsize=(3.2 * len(boards), 3.5), squeeze=False)
    for ax, feat, vals, name in zip(axes[0], boards, own, names, strict=True):
        draw_values(
            ax,
            vals,
            feat,
            board,
            show=np.asarray(feat) == UNOPENED,
            title=f"{name}: φ_j for P(open j)",
        )
    fig.tight_layout()
    return fig
