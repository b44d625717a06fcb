"""Minesweeper 4x4 (SVERL Sec. 7.2): model construction, and exact explanations of one board.

The issue's target: all three exact explanations (behaviour, outcome, prediction) of the
paper's first board in under 10 s. Model, policy and steady state are timed separately
(informative only; the notebook caches the model).
"""

from __future__ import annotations

from shaprl.domains import minesweeper as ms
from shaprl.sverl import SVERLExplainer

from .harness import Result, timed


def run() -> list[Result]:
    out = []
    t, mdp = timed(lambda: ms.build_minesweeper(4, 4, 2))
    out.append(
        Result(
            "minesweeper model build (4x4, 2 mines)",
            t,
            note=f"{mdp.n_states:,} boards, {mdp.transitions.nnz:,} transitions",
        )
    )
    t, (policy, _) = timed(lambda: ms.optimal_policy(mdp))
    out.append(Result("minesweeper value iteration + greedy policy", t))
    t, explainer = timed(lambda: SVERLExplainer(mdp, policy))
    out.append(
        Result(
            "minesweeper explainer setup (steady state + V^pi)",
            t,
            note=f"support {len(explainer.support):,} boards",
        )
    )
    s1 = mdp.index_of(ms.parse_board(ms.PAPER_S1))
    # First call: includes building the policy's chain for the outcome characteristic.
    t, _ = timed(lambda: explainer.explain([s1]))
    out.append(
        Result(
            "minesweeper exact behaviour+outcome+prediction of S1",
            t,
            target_s=10.0,
            note="2^16 coalitions, first call",
        )
    )
    t, _ = timed(lambda: explainer.explain([s1]), repeats=3)
    out.append(Result("minesweeper exact explanations of S1, repeated", t, note="best of 3"))
    return out
