"""Small gridworlds of SVERL App. B: the colour grid (behaviour) and the five-state grid (outcome).

Coordinates are (x, y) with y growing northwards; actions are N, E, S, W. Moving off the
grid or into a blocked cell leaves the agent where it is.
"""

from __future__ import annotations

import numpy as np

from ..mdp.tabular import TabularMDP

ACTIONS = ("N", "E", "S", "W")
_MOVES = {0: (0, 1), 1: (1, 0), 2: (0, -1), 3: (-1, 0)}

GREEN, RED, BLUE = 0, 1, 2
COLOUR_NAMES = {GREEN: "green", RED: "red", BLUE: "blue"}


def colour_grid(gamma: float = 0.9) -> TabularMDP:
    """The 2x2 colour gridworld (SVERL App. B, Fig. 6).

    Features: (index I, colour C). TL = (1, red), TR = (2, blue), BL = (3, green),
    BR = (4, green). Reward +1 for each clockwise move (BL->N, TL->E, TR->S, BR->W), 0
    otherwise. A continuing task started uniformly on the four squares; gamma = 0.9 as in
    the authors' code (it does not affect the clockwise optimal policy).
    """
    cells = {(0, 1): (1, RED), (1, 1): (2, BLUE), (0, 0): (3, GREEN), (1, 0): (4, GREEN)}
    clockwise = {(0, 0): 0, (0, 1): 1, (1, 1): 2, (1, 0): 3}
    coords = list(cells)
    index = {c: k for k, c in enumerate(coords)}
    n, a = len(coords), len(ACTIONS)
    p = np.zeros((n, a, n))
    r = np.zeros((n, a))
    for c in coords:
        for act, (dx, dy) in _MOVES.items():
            nxt = (c[0] + dx, c[1] + dy)
            nxt = nxt if nxt in cells else c
            p[index[c], act, index[nxt]] = 1.0
            r[index[c], act] = 1.0 if clockwise[c] == act else 0.0
    features = np.array([cells[c] for c in coords])
    labels = tuple(f"({i},{COLOUR_NAMES[col][0]})" for i, col in features)
    return TabularMDP.from_dense(
        features,
        p,
        r,
        np.full(n, 1 / n),
        gamma,
        ("I", "C"),
        ACTIONS,
        state_labels=labels,
        name="colour_grid",
        info={"coords": coords},
    )


def five_state_grid() -> TabularMDP:
    """The five-state gridworld of SVERL App. B (Fig. 8); also FastSVERL's Gridworld.

    2 wide x 4 high, cell (0, 1) blocked; states 1..5 = (0,0), (1,0), (1,1), (1,2), (0,2).
    Every move costs -1 (blocked and off-grid moves too); entering row y = 3 ends the
    episode and pays +10 on top (reward 9). Start uniform over states 1 and 2; gamma = 1.
    """
    coords = [(0, 0), (1, 0), (1, 1), (1, 2), (0, 2)]
    index = {c: k for k, c in enumerate(coords)}
    n, a = len(coords), len(ACTIONS)
    p = np.zeros((n, a, n))
    r = np.full((n, a), -1.0)
    for c in coords:
        for act, (dx, dy) in _MOVES.items():
            x, y = c[0] + dx, c[1] + dy
            if y == 3 and 0 <= x < 2:
                r[index[c], act] = 9.0  # goal row: terminal, no successor
                continue
            nxt = (x, y) if (x, y) in index else c
            p[index[c], act, index[nxt]] = 1.0
    start = np.array([0.5, 0.5, 0, 0, 0])
    return TabularMDP.from_dense(
        np.array(coords),
        p,
        r,
        start,
        1.0,
        ("x", "y"),
        ACTIONS,
        state_labels=tuple(str(k + 1) for k in range(n)),
        name="five_state_grid",
        info={"coords": coords, "blocked": [(0, 1)], "height": 4, "width": 2},
    )


_ARROWS = {0: (0, 0.3), 1: (0.3, 0), 2: (0, -0.3), 3: (-0.3, 0)}
_FILL = {GREEN: "#8BC34A", RED: "#E57373", BLUE: "#64B5F6"}


def draw_grid(mdp: TabularMDP, policy: np.ndarray, ax=None, *, title: str = ""):
    """Draw a gridworld of this module with each state's label and its policy's arrows."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    ax = ax or plt.gca()
    coords = mdp.info["coords"]
    width = mdp.info.get("width", max(c[0] for c in coords) + 1)
    height = mdp.info.get("height", max(c[1] for c in coords) + 1)
    for x in range(width):
        for y in range(height):
            blocked = (x, y) in mdp.info.get("blocked", ())
            goal = y == height - 1 and mdp.name == "five_state_grid"
            face = "#555555" if blocked else "#C8E6C9" if goal else "white"
            ax.add_patch(Rectangle((x, y), 1, 1, facecolor=face, edgecolor="black"))
            if goal:
                ax.text(x + 0.5, y + 0.5, "goal", ha="center", va="center", fontsize=8)
    for s, (x, y) in enumerate(coords):
        if mdp.name == "colour_grid":
            ax.add_patch(
                Rectangle((x, y), 1, 1, facecolor=_FILL[int(mdp.features[s, 1])], edgecolor="black")
            )
        ax.text(x + 0.1, y + 0.85, mdp.label(s), fontsize=8, va="top")
        for a, prob in enumerate(policy[s]):
            if prob > 0:
                dx, dy = _ARROWS[a]
                ax.arrow(
                    x + 0.5,
                    y + 0.45,
                    dx,
                    dy,
                    width=0.03 * prob,
                    head_width=0.12,
                    color="black",
                    length_includes_head=True,
                )
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.set_xticks([i + 0.5 for i in range(width)], labels=range(width))
    ax.set_yticks([i + 0.5 for i in range(height)], labels=range(height))
    ax.set_title(title, fontsize=10)
    return ax
