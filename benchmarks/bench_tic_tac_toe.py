"""Tic-Tac-Toe (SVERL Sec. 6.4): model build, solve, steady state and the Fig. 2 explanation."""

from __future__ import annotations

from shaprl.domains import tic_tac_toe as t3
from shaprl.mdp import steady_state
from shaprl.sverl import SVERLExplainer

from .harness import Result, timed


def _unmemoised(board: tuple[int, ...], mover: int) -> int:
    """Plain full-tree minimax, as in the authors' code (for comparison only)."""
    best = -2
    for sq in t3.empty_squares(board):
        child = t3.place(board, sq, mover)
        if t3.winner(child) == mover:
            return 1
        score = 0 if t3.EMPTY not in child else -_unmemoised(child, t3.X + t3.O - mover)
        best = max(best, score)
    return best


def run() -> list[Result]:
    out = []

    def build():
        t3._negamax.cache_clear()  # time the minimax search from scratch
        return t3.tic_tac_toe()

    t, mdp = timed(build)
    out.append(Result("build MDP (cold memoised minimax)", t, 5.0, f"{mdp.n_states} boards"))
    empty = (t3.EMPTY,) * 9
    t, _ = timed(lambda: _unmemoised(empty, t3.X))
    out.append(
        Result("unmemoised minimax of the empty board (one query)", t, None, "authors' style")
    )
    t, _ = timed(lambda: (t3._negamax.cache_clear(), t3._negamax(empty, t3.X)))
    out.append(Result("memoised minimax of the empty board (cold)", t, None))
    t, (policy, _, _) = timed(lambda: t3.optimal_policy(mdp), repeats=3)
    out.append(Result("value iteration + greedy policy", t, 1.0))
    t, p_ss = timed(lambda: steady_state(mdp, policy), repeats=3)
    out.append(Result("exact steady state", t, 1.0, f"support {(p_ss > 0).sum()}"))
    e = mdp.index_of(t3.FIG2_STATE)
    t, _ = timed(lambda: SVERLExplainer(mdp, policy, steady_state=p_ss).explain([e]), repeats=3)
    out.append(
        Result("explain Fig. 2 state (behaviour, outcome, prediction)", t, 1.0, "512 coalitions")
    )
    return out
