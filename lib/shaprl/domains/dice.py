"""The two-dice game of SVERL App. B ("Explaining Predictions", Table 7, Fig. 9).

Every number comes from the appendix text and the authors' public code (summarised in
``shared/sverl_domains.md``, "dice"):

* state = (die 1, die 2), faces 1..6, so 36 states; an episode starts with a uniform roll;
* actions 0 keep both, 1 re-roll die 2, 2 re-roll die 1, 3 re-roll both (all always
  available); re-rolled dice take a uniform new face;
* after every action the episode ends with probability 1/2 (the code's ``num_steps=2``);
  it then pays 1 if the post-roll sum is at least 10 and 0 otherwise. Otherwise the game
  goes on from the post-roll dice with reward 0;
* gamma = 1; the agent is the value-iteration optimum with uniform tie-breaking.

Ending is decided after the re-roll, so the end probability and the terminal reward are
folded into the model exactly: p(s'|s, a) = 1/2 q(s'|s, a) over the (non-terminal)
post-roll states, and r(s, a) = 1/2 P(post-roll sum >= 10 | s, a).

The exact steady state (normalised expected visits) gives p(3, 6) = 1/42 and
p(1, 1) = 1/56; the authors sampled 10^6 steps and hard-coded 0.023832 and 0.01813.
"""

from __future__ import annotations

import numpy as np

from ..mdp.tabular import TabularMDP

FACES = 6
END_PROBABILITY = 0.5
WIN_SUM = 10
KEEP, REROLL_DIE2, REROLL_DIE1, REROLL_BOTH = range(4)
ACTIONS = ("keep both", "re-roll die 2", "re-roll die 1", "re-roll both")
FEATURES = ("die 1", "die 2")
#: Which dice each action re-rolls: (die 1, die 2).
REROLLS = {
    KEEP: (False, False),
    REROLL_DIE2: (False, True),
    REROLL_DIE1: (True, False),
    REROLL_BOTH: (True, True),
}


def state_index(d1: np.ndarray | int, d2: np.ndarray | int) -> np.ndarray | int:
    """Index of the state with faces (d1, d2), each in 1..6 (vectorised)."""
    return (np.asarray(d1) - 1) * FACES + (np.asarray(d2) - 1)


def dice(*, end_probability: float = END_PROBABILITY, win_sum: int = WIN_SUM) -> TabularMDP:
    """The dice MDP (36 states, 4 actions, gamma = 1); states ordered by :func:`state_index`."""
    if not 0.0 < end_probability <= 1.0:
        raise ValueError(f"end_probability must lie in (0, 1]; got {end_probability}")
    faces = np.arange(1, FACES + 1)
    features = np.array([(a, b) for a in faces for b in faces])
    n = len(features)
    post = np.zeros((n, len(ACTIONS), n))  # post-roll distribution q(s'|s, a)
    for s, (d1, d2) in enumerate(features):
        for a, (roll1, roll2) in REROLLS.items():
            new1 = faces if roll1 else [d1]
            new2 = faces if roll2 else [d2]
            weight = 1.0 / (len(new1) * len(new2))
            for x in new1:
                for y in new2:
                    post[s, a, state_index(x, y)] += weight
    wins = (features.sum(axis=1) >= win_sum).astype(float)
    rewards = end_probability * (post @ wins)
    return TabularMDP.from_dense(
        features,
        (1.0 - end_probability) * post,
        rewards,
        np.full(n, 1.0 / n),
        1.0,
        FEATURES,
        ACTIONS,
        state_labels=tuple(f"({a},{b})" for a, b in features),
        name="dice",
        info={"end_probability": end_probability, "win_sum": win_sum},
    )


def rerolled(policy: np.ndarray, *, atol: float = 1e-9) -> np.ndarray:
    """(36, 2) probability that the policy re-rolls die 1 / die 2 in each state."""
    policy = np.asarray(policy, float)
    masks = np.array([REROLLS[a] for a in range(len(ACTIONS))], float)  # (A, 2)
    out = policy @ masks
    return np.where(np.abs(out) < atol, 0.0, out)


ACTION_STYLE = {
    KEEP: ("o", "#55A868"),
    REROLL_DIE2: ("^", "#4C72B0"),
    REROLL_DIE1: ("v", "#DD8452"),
    REROLL_BOTH: ("s", "#C44E52"),
}


def plot_quadrants(
    phi: np.ndarray, policy: np.ndarray, features: np.ndarray, *, ax=None, annotate: bool = True
):
    """Fig. 9: (phi_die1, phi_die2) of every state, marker and colour = the optimal action.

    ``phi`` is ``(36, 2)`` prediction Shapley values, ``policy`` the ``(36, 4)`` policy.
    """
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    actions = np.asarray(policy).argmax(axis=1)
    for a, (marker, colour) in ACTION_STYLE.items():
        hit = actions == a
        if hit.any():
            ax.scatter(
                phi[hit, 0],
                phi[hit, 1],
                marker=marker,
                color=colour,
                s=60,
                edgecolor="black",
                lw=0.5,
                label=ACTIONS[a],
                zorder=3,
            )
    if annotate:  # states with identical attributions share one label
        groups: dict[tuple, list[str]] = {}
        for (x, y), (d1, d2) in zip(phi, features, strict=True):
            groups.setdefault((round(float(x), 9), round(float(y), 9)), []).append(f"{d1}{d2}")
        for (x, y), names in groups.items():
            text = " ".join(names)
            if len(names) > 4:
                text = "\n".join(" ".join(names[i : i + 5]) for i in range(0, len(names), 5))
            ax.annotate(
                text, (x, y), xytext=(5, 3), textcoords="offset points", fontsize=6, color="0.3"
            )
    ax.axhline(0, color="black", lw=0.8)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("φ(die 1)  [prediction]")
    ax.set_ylabel("φ(die 2)  [prediction]")
    ax.legend(
        fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.02, 1),
        title="optimal action",
        title_fontsize=8,
    )
    return ax
