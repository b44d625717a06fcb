"""The Taxi domain of SVERL App. B (Fig. 10), built from gymnasium's transition table.

Source of every number: gymnasium's ``TaxiEnv`` (Dietterich, 2000), as used by the paper
(OpenAI Gym Taxi-v3) and summarised in ``shared/sverl_domains.md`` ("taxi").

* 5 x 5 grid with walls; landmarks R (0, 0), G (0, 4), Y (4, 0), B (4, 3).
* Features (y = row, x = column, P = passenger location, D = destination) with
  P in {R, G, Y, B, in taxi} = 0..4 and D in {R, G, Y, B} = 0..3: the 500 combinations
  are gymnasium's 500 states, and we keep gymnasium's state order
  (index = ((y * 5 + x) * 5 + P) * 4 + D).
* Actions South, North, East, West, Pickup, Dropoff. Reward -1 per step, -10 for an illegal
  pickup or drop-off, +20 for delivering the passenger, which ends the episode.
* gamma = 1; start uniform over gymnasium's 300 initial states (passenger at a landmark
  other than the destination, taxi anywhere).

gymnasium 1.x registers only ``Taxi-v4``. Its version history says v4 changed only the
optional ``is_rainy`` / ``fickle_passenger`` dynamics; with the defaults (both off) the
transition table is the deterministic Taxi-v3 table the paper used.

Terminal states. Only the delivering drop-off ends an episode, and it is the only way to
enter a state whose passenger location equals its destination (P == D). The model folds
termination into that transition (its row has no successor and reward +20), so P == D
states are never entered from the start states. We still keep them, with gymnasium's
transitions, so that every one of the 500 feature combinations is a state of the MDP: the
marginal characteristic (SVERL Eq. 6) queries the policy at such hybrid combinations.
They have zero start and steady-state probability and do not affect the conditional
explanations. ``keep_unreachable=False`` drops them (400 states).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..mdp.tabular import TabularMDP
from .gym_tabular import gym_tabular, taxi_decoder

ROWS = COLS = 5
N_PASSENGER = 5  # R, G, Y, B, in taxi
N_DESTINATION = 4
IN_TAXI = 4
LOCATIONS = ("R", "G", "Y", "B")
PASSENGER_NAMES = (*LOCATIONS, "in taxi")
LANDMARKS = ((0, 0), (0, 4), (4, 0), (4, 3))
ACTIONS = ("South", "North", "East", "West", "Pickup", "Dropoff")
SOUTH = 0
FEATURES = ("y", "x", "P", "D")
N_STATES = ROWS * COLS * N_PASSENGER * N_DESTINATION

#: The two states explained in Fig. 10: taxi at row 0, column 3.
TOP_STATE = (0, 3, 3, 1)  # passenger waiting at B, destination G
BOTTOM_STATE = (0, 3, 4, 3)  # passenger in the taxi, destination B


def encode(y, x, p, d):
    """gymnasium's state index of (row, column, passenger, destination) (vectorised)."""
    return (
        (np.asarray(y) * COLS + np.asarray(x)) * N_PASSENGER + np.asarray(p)
    ) * N_DESTINATION + np.asarray(d)


def describe(features) -> str:
    """Readable label, e.g. ``taxi (0,3), passenger B, destination G``."""
    y, x, p, d = (int(v) for v in features)
    return f"taxi ({y},{x}), passenger {PASSENGER_NAMES[p]}, destination {LOCATIONS[d]}"


def gym_table() -> tuple[dict, np.ndarray]:
    """gymnasium's transition dict ``P[s][a] = [(prob, s', r, terminated)]`` and start distribution."""
    import gymnasium as gym

    env = gym.make("Taxi-v4").unwrapped
    if getattr(env, "fickle_passenger", False):
        raise RuntimeError("expected the default (non-fickle) Taxi dynamics")
    return env.P, np.asarray(env.initial_state_distrib, float)


def taxi(*, keep_unreachable: bool = True) -> TabularMDP:
    """The Taxi MDP (gamma = 1) in gymnasium's state order; see the module docstring."""
    import gymnasium as gym

    env = gym.make("Taxi-v4")
    if getattr(env.unwrapped, "fickle_passenger", False):
        raise RuntimeError("expected the default (non-fickle) Taxi dynamics")
    grid = np.indices((ROWS, COLS, N_PASSENGER, N_DESTINATION)).reshape(4, -1).T
    if not np.array_equal(encode(*grid.T), np.arange(N_STATES)):
        raise AssertionError("state encoding differs from gymnasium's")
    # P == D states are never entered from the start states: "all" keeps them, "reachable" not.
    keep = "all" if keep_unreachable else "reachable"
    mdp = gym_tabular(
        env, decoder=taxi_decoder, feature_names=FEATURES, action_names=ACTIONS, keep=keep
    ).mdp
    return replace(
        mdp,
        state_labels=tuple(f"({y},{x},{p},{d})" for y, x, p, d in mdp.features),
        name="taxi",
        info={
            "source": "gymnasium Taxi-v4 (default dynamics = Taxi-v3)",
            "keep_unreachable": keep_unreachable,
        },
    )


def _walls() -> list[tuple[int, int]]:
    """(row, col) cells with a wall on their east side, read from gymnasium's map."""
    from gymnasium.envs.toy_text.taxi import MAP

    return [(r, c) for r in range(ROWS) for c in range(COLS - 1) if MAP[1 + r][2 * c + 2] == "|"]


def draw_state(features, *, ax=None, title: str = ""):
    """The Taxi grid with walls, landmarks, taxi, passenger and destination of one state."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    y, x, p, d = (int(v) for v in features)
    colours = ("#C44E52", "#55A868", "#CCB974", "#4C72B0")
    for k, (r, c) in enumerate(LANDMARKS):
        ax.add_patch(plt.Rectangle((c, ROWS - 1 - r), 1, 1, color=colours[k], alpha=0.25))
        ax.text(
            c + 0.08, ROWS - 1 - r + 0.72, LOCATIONS[k], fontsize=8, weight="bold", color=colours[k]
        )
    for i in range(ROWS + 1):
        ax.plot([0, COLS], [i, i], color="0.85", lw=0.6)
        ax.plot([i, i], [0, ROWS], color="0.85", lw=0.6)
    for r, c in _walls():
        ax.plot([c + 1, c + 1], [ROWS - 1 - r, ROWS - r], color="black", lw=3)
    ax.add_patch(plt.Rectangle((0, 0), COLS, ROWS, fill=False, lw=2))
    dr, dc = LANDMARKS[d]
    ax.add_patch(
        plt.Rectangle(
            (dc + 0.06, ROWS - 1 - dr + 0.06), 0.88, 0.88, fill=False, lw=2, ls="--", color="black"
        )
    )
    taxi_colour = "#FFD54F"
    ax.add_patch(
        plt.Rectangle((x + 0.2, ROWS - 1 - y + 0.25), 0.6, 0.45, color=taxi_colour, ec="black")
    )
    if p == IN_TAXI:
        ax.plot(x + 0.5, ROWS - 1 - y + 0.47, "o", color="black", ms=5)
    else:
        pr, pc = LANDMARKS[p]
        ax.plot(pc + 0.5, ROWS - 1 - pr + 0.45, "o", color="black", ms=7)
    ax.set_xlim(-0.05, COLS + 0.05)
    ax.set_ylim(-0.05, ROWS + 0.05)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title or describe(features), fontsize=8)
    return ax


def plot_fig10(explanation, states, features, *, action: str = "South"):
    """Fig. 10: per state, the grid and the behaviour (``action``), outcome and prediction bars."""
    import matplotlib.pyplot as plt

    from ..plots import KIND_COLOURS, phi_bars

    fig, axes = plt.subplots(
        len(states),
        4,
        figsize=(13, 2.9 * len(states)),
        squeeze=False,
        gridspec_kw={"width_ratios": [1, 1.3, 1.3, 1.3]},
    )
    labels = ("y (row)", "x (column)", "P (passenger)", "D (destination)")
    for row, s in zip(axes, states, strict=True):
        draw_state(features[s], ax=row[0])
        for ax, (kind, output, title) in zip(
            row[1:],
            (
                ("behaviour", action, f"behaviour: P({action})"),
                ("outcome", "value", "outcome"),
                ("prediction", "value", "prediction"),
            ),
            strict=True,
        ):
            phi_bars(
                explanation.phi(kind, s)[output],
                labels,
                ax=ax,
                title=title,
                colour=KIND_COLOURS[kind],
            )
    fig.tight_layout()
    return fig
