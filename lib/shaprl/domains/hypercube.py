"""Hypercube(side, dims): FastSVERL's scaling domain (Sec. 3.3, Fig. 2; App. C Fig. 5).

Sources: the FastSVERL paper (a ``dims``-dimensional gridworld with ``side**dims`` cells and
``dims`` features) and ``/work/shared/fastsverl_notes.md`` (the authors' code):

* coordinates in ``{0, .., side-1}**dims``; the start is the origin ``0**dims``;
* the goal ``(side-1)**dims`` is terminal, so there are ``side**dims - 1`` non-terminal
  states, each described by its ``dims`` coordinates (the features);
* ``2 * dims`` actions: action ``2i`` moves +1 along axis ``i``, action ``2i + 1`` moves -1;
  a move off the cube leaves the agent in place;
* reward -1 per step, except the step that reaches the goal, which pays ``side * dims - 1``;
  gamma = 1.
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp

from ..mdp.tabular import TabularMDP


def _check(side: int, dims: int) -> None:
    if side < 2 or dims < 1:
        raise ValueError(f"Hypercube needs side >= 2 and dims >= 1; got side={side}, dims={dims}")
    if side**dims > 2_000_000:
        raise ValueError(f"Hypercube({side}, {dims}) has {side**dims} cells: too large to tabulate")


def action_names(dims: int) -> tuple[str, ...]:
    """``+x0, -x0, +x1, -x1, ...``: action 2i moves +1 along axis i, 2i+1 moves -1."""
    return tuple(f"{sign}x{i}" for i in range(dims) for sign in "+-")


def hypercube_model(side: int, dims: int) -> TabularMDP:
    """Exact tabular model of Hypercube(side, dims) (see the module docstring)."""
    _check(side, dims)
    cells = np.array(list(itertools.product(range(side), repeat=dims)), dtype=np.int64)
    goal = np.full(dims, side - 1)
    live = ~(cells == goal).all(axis=1)
    states = cells[live]
    n, a = len(states), 2 * dims
    radix = side ** np.arange(dims)[::-1]  # itertools.product order: last axis fastest
    cell_to_state = np.full(side**dims, -1)
    cell_to_state[states @ radix] = np.arange(n)
    rows, cols, rewards = [], [], np.full((n, a), -1.0)
    for act in range(a):
        axis, step = act // 2, 1 if act % 2 == 0 else -1
        nxt = states.copy()
        nxt[:, axis] += step
        off = (nxt[:, axis] < 0) | (nxt[:, axis] >= side)
        nxt[off] = states[off]
        at_goal = (nxt == goal).all(axis=1)
        rewards[at_goal, act] = side * dims - 1.0
        src = np.flatnonzero(~at_goal)
        rows.append(src * a + act)
        cols.append(cell_to_state[nxt[src] @ radix])
    transitions = sp.csr_matrix(
        (np.ones(sum(len(r) for r in rows)), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n * a, n),
    )
    start = np.zeros(n)
    start[0] = 1.0  # the origin is the first cell in product order
    return TabularMDP(
        features=states,
        transitions=transitions,
        rewards=rewards,
        valid_actions=np.ones((n, a), bool),
        start=start,
        gamma=1.0,
        feature_names=tuple(f"x{i}" for i in range(dims)),
        action_names=action_names(dims),
        name=f"Hypercube-{side}^{dims}",
        info={"side": side, "dims": dims},
    )
