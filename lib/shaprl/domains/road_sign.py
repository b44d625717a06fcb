"""The road-sign example of SVERL Sec. 3-6 (Fig. 1, Tables 1-6).

The paper gives no code and its numbers were lost, so this MDP is built to be consistent
with every statement of the text:

* features (direction, distance): direction 0 = left, 1 = right; distance in miles.
* S1 = (right, 10 mi); turning right leads to S2 = (left, 2 mi). The text once writes
  "10 miles" for S2, but Agent B's rule ("left if it observes 2 miles") and Sec. 6.3
  ("much closer to the goal") need a different, nearer distance: we use 2.
* Turning left at S1 takes the equally long red route through S3 = (right, 2 mi), a
  junction the agent never visits under its policy (so it is outside the steady state).
* Every turn costs -1; reaching the destination pays +10 on top (reward 9); turning the
  wrong way at S2 or S3 leaves the map and ends the episode (reward -1). gamma = 1.
  Both routes then return 8 from S1, so the outcome at S1 is zero (equal-length routes).
* The agent follows the signs: right at S1, left at S2 (right at S3). Steady state 1/2
  at S1 and S2.
"""

from __future__ import annotations

import numpy as np

from ..mdp.tabular import TabularMDP

LEFT, RIGHT = 0, 1
ACTIONS = ("L", "R")
FEATURES = ("direction", "distance")
STEP_REWARD, GOAL_BONUS = -1.0, 10.0


def road_sign() -> tuple[TabularMDP, np.ndarray]:
    """The MDP and the sign-following policy."""
    features = np.array([[RIGHT, 10], [LEFT, 2], [RIGHT, 2]])
    s1, s2, s3 = 0, 1, 2
    p = np.zeros((3, 2, 3))
    r = np.full((3, 2), STEP_REWARD)
    p[s1, RIGHT, s2] = 1.0  # black route
    p[s1, LEFT, s3] = 1.0  # red route, equally long
    r[s2, LEFT] = r[s3, RIGHT] = STEP_REWARD + GOAL_BONUS  # destination reached
    # s2 RIGHT and s3 LEFT leave the map: terminal, step cost only.
    mdp = TabularMDP.from_dense(
        features,
        p,
        r,
        np.array([1.0, 0.0, 0.0]),
        1.0,
        FEATURES,
        ACTIONS,
        state_labels=("S1 (right, 10 mi)", "S2 (left, 2 mi)", "S3 (right, 2 mi)"),
        name="road_sign",
    )
    policy = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    return mdp, policy


def agent_a(x: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Agent A: follows the sign's direction when it is known, else turns at random."""
    if known[0]:
        return np.eye(2)[int(x[0])]
    return np.full(2, 0.5)


def agent_b(x: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Agent B: right if it sees a right arrow or 10 miles, left if a left arrow or 2 miles."""
    if known[0]:
        return np.eye(2)[int(x[0])]
    if known[1]:
        return np.eye(2)[RIGHT if x[1] == 10 else LEFT]
    return np.full(2, 0.5)


def partial_policy_table(agent, x: np.ndarray) -> np.ndarray:
    """(2**F, A) table of an agent's action probabilities for every set of known features."""
    f = len(x)
    return np.array([agent(x, [(c >> i) & 1 for i in range(f)]) for c in range(1 << f)])


def draw_map(ax=None):
    """Schematic of Fig. 1: the sign-following route (black) and the equal red route."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    start, j1, j2, j3, goal = (0, 0), (0, 1), (1, 1), (-1, 1), (0, 2)
    ax.plot(
        *zip(start, j1, j2, (1, 2), goal, strict=True), color="black", lw=3, label="agent's route"
    )
    ax.plot(
        *zip(j1, j3, (-1, 2), goal, strict=True),
        color="#C44E52",
        lw=2,
        ls="--",
        label="equal-length route",
    )
    # Turning right at S2 (the car arrives heading east, so right is south) leaves the map
    # and ends the episode (SVERL Sec. 5.3); drawn as a dotted turn off the grid.
    ax.plot([1, 1], [1, 0.25], color="grey", lw=2, ls=":")
    ax.annotate("", (1, 0.1), (1, 0.3), arrowprops=dict(arrowstyle="->", color="grey"))
    for (x, y), text in ((j1, "S1\n→ 10 mi"), (j2, "S2\n← 2 mi"), (j3, "S3\n→ 2 mi")):
        ax.scatter([x], [y], s=500, color="#FFD54F", edgecolor="black", zorder=3)
        ax.annotate(
            text, (x, y), xytext=(14, -34), textcoords="offset points", ha="left", fontsize=8
        )
    ax.scatter(*goal, marker="*", s=400, color="#55A868", edgecolor="black", zorder=3)
    ax.annotate(
        "destination", goal, xytext=(0, 12), textcoords="offset points", ha="center", fontsize=8
    )
    ax.annotate(
        "start", start, xytext=(0, -14), textcoords="offset points", ha="center", fontsize=8
    )
    ax.text(1.08, 0.1, "right at S2:\noff the map", va="center", fontsize=8, color="grey")
    ax.set_xlim(-1.7, 2.2)
    ax.set_ylim(-0.5, 2.5)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.legend(loc="upper right", fontsize=7, frameon=False)
    return ax
